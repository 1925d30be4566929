"""Identifiers, injected: message ids, request ids and opaque tokens."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from typing import Protocol

_POOL_BYTES = 4096
_POOL_HEX = 2 * _POOL_BYTES
# The RFC 4122 variant keeps the two high bits of the 17th hex digit at 0b10: 0-f becomes 8, 9, a, b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


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
    (``os.urandom``) 4 KiB at a time, kept as hex text, and each id is cut from that text with its
    version digit set to 4 and its variant digit mapped into 8..b: no integer arithmetic per id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ""
        self._next = _POOL_HEX

    def uuid(self) -> str:
        with self._lock:
            start = self._next
            if start >= _POOL_HEX:
                self._pool = os.urandom(_POOL_BYTES).hex()
                start = 0
            self._next = start + 32
            h = self._pool[start : start + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

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
