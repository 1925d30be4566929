"""Identifiers, injected: message ids, request ids and opaque tokens."""

from __future__ import annotations

import itertools
import secrets
import uuid
from typing import Protocol


class IdGenerator(Protocol):
    """A source of unique identifiers."""

    def uuid(self) -> str:
        """A new lowercase UUID string (message ids, request ids, task handles)."""
        ...

    def token(self, nbytes: int) -> str:
        """A new random url-safe token of about ``nbytes`` bytes of entropy."""
        ...


class RandomIds:
    """Production ids: random UUIDv4 and cryptographically random tokens."""

    def uuid(self) -> str:
        return str(uuid.uuid4())

    def token(self, nbytes: int) -> str:
        return secrets.token_urlsafe(nbytes)


class SequentialIds:
    """Predictable ids for tests: UUID-shaped strings counting up from 1."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def uuid(self) -> str:
        n = next(self._counter)
        return f"00000000-0000-4000-8000-{n:012d}"

    def token(self, nbytes: int) -> str:
        return f"tok{next(self._counter):0{max(nbytes, 4)}d}"
