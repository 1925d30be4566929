"""Identifiers, injected: message ids, request ids and opaque tokens."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from typing import Protocol

_POOL_BYTES = 4096
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version nibble and variant bits
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


class IdGenerator(Protocol):
    """A source of unique identifiers."""

    def uuid(self) -> str:
        """A new lowercase UUID string (message ids, request ids, task handles)."""
        ...

    def token(self, nbytes: int) -> str:
        """A new random url-safe token of about ``nbytes`` bytes of entropy."""
        ...


class RandomIds:
    """Production ids: random UUIDv4 and cryptographically random tokens.

    Every message needs a UUID. ``uuid.uuid4()`` makes a system call for its 16 random bytes and
    builds a `uuid.UUID` object only to format it; here the bytes come from the same source
    (``os.urandom``) 4 KiB at a time and are formatted directly, which halves the cost per id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0

    def uuid(self) -> str:
        with self._lock:
            start = self._next
            if start >= len(self._pool):
                self._pool = os.urandom(_POOL_BYTES)
                start = 0
            self._next = start + 16
            n = int.from_bytes(self._pool[start : start + 16], "big")
        h = f"{(n & _UUID_CLEAR) | _UUID_SET:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

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
