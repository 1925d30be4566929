"""Identifiers, injected: message ids, request ids and opaque tokens."""

from __future__ import annotations

import binascii
import itertools
import os
import secrets
from typing import Protocol

_BATCH = 256  # ids formatted at once
_TEXT = 36  # characters of a UUID
_HEX = 32  # hex digits drawn per UUID
# Where each hex digit drawn goes in the text: 8-4-4-4-12 groups; digit 12 is replaced by the version (4)
# and digit 16 by the variant (0b10xx, mapped into 8..b below).
_DIGIT_PLACES = tuple(
    zip(
        [*range(8), *range(9, 13), *range(15, 18), *range(20, 23), *range(24, 36)],
        [*range(8), *range(8, 12), *range(13, 16), *range(17, 20), *range(20, 32)],
        strict=True,
    )
)
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab" * 4)
_DASHES = b"-" * _BATCH
_VERSION = b"4" * _BATCH


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

    Every message and every request needs a UUID. ``uuid.uuid4()`` makes a system call for its 16
    random bytes and builds a `uuid.UUID` object only to format it. Here the bytes come from the same
    source (``os.urandom``) for 256 ids at a time, and the ids are laid out together by strided slice
    copies (one per character position, each in C over all 256 ids), so an id costs about a fifth of a
    microsecond. Handing one out is a ``list.pop``, which is atomic, so threads need no lock: two that
    refill at once just each draw a fresh batch.
    """

    def __init__(self) -> None:
        self._ready: list[str] = []

    def uuid(self) -> str:
        try:
            return self._ready.pop()
        except IndexError:
            self._ready = _fresh_uuids()
            return self.uuid()

    def token(self, nbytes: int) -> str:
        return secrets.token_urlsafe(nbytes)


def _fresh_uuids() -> list[str]:
    """`_BATCH` random version-4 UUIDs in canonical lowercase text."""
    digits = binascii.hexlify(os.urandom(_BATCH * _HEX // 2))
    text = bytearray(_BATCH * _TEXT)
    for place, digit in _DIGIT_PLACES:
        text[place::_TEXT] = digits[digit::_HEX]
    for dash in (8, 13, 18, 23):
        text[dash::_TEXT] = _DASHES
    text[14::_TEXT] = _VERSION
    text[19::_TEXT] = digits[16::_HEX].translate(_VARIANT)
    joined = text.decode("ascii")
    return [joined[i : i + _TEXT] for i in range(0, len(joined), _TEXT)]


class SequentialIds:
    """Predictable ids for tests: UUID-shaped strings counting up from 1."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def uuid(self) -> str:
        n = next(self._counter)
        return f"00000000-0000-4000-8000-{n:012d}"

    def token(self, nbytes: int) -> str:
        return f"tok{next(self._counter):0{max(nbytes, 4)}d}"
