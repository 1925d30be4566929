"""Rules of the document store and the outbox that both backends share (no I/O here).

Keeping them in one place means the SQLite and PostgreSQL stores cannot drift apart on what a
compare-and-set accepts or on which keys a prefix listing covers.
"""

from __future__ import annotations

from loosely.core.documents import DeliveryState
from loosely.core.errors import ConcurrentUpdate

DEAD_LETTER_DEDUP_WINDOW_MS = 300_000
"""SQS's deduplication interval, applied to a dead-lettered delivery sent to a FIFO queue."""

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix`` (None: no bound).

    Lets a prefix listing be the index range ``prefix <= key < bound`` in code point order, which
    is SQLite's BINARY order of UTF-8 text and PostgreSQL's ``COLLATE "C"`` order; a ``LIKE`` scan
    would need escaping and, on SQLite, case-sensitivity settings to use the index at all.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < _MAX_CODE_POINT:
            nxt = last + 1
            if nxt in _SURROGATES:  # not encodable: skip to the first code point after them
                nxt = _SURROGATES.stop
            return "".join(chars) + chr(nxt)
    return None


def next_version(current: int | None, if_absent: bool, expected_version: int | None) -> int | None:
    """The version a `put_document` writes, or None when ``if_absent`` finds a document and nothing is written.

    ``expected_version`` must equal the stored version; 0 stands for "no document yet", so a caller
    can create with compare-and-set too. A mismatch raises ``ConcurrentUpdate``.
    """
    if if_absent and current is not None:
        return None
    if expected_version is not None and expected_version != (current or 0):
        raise ConcurrentUpdate("The document was changed by another request; read it again and retry.")
    return (current or 0) + 1


def check_finished_state(state: DeliveryState, dead_letter: object | None) -> None:
    """A finished delivery is never PENDING, and only a dead-lettered one carries a dead-letter message."""
    if state is DeliveryState.PENDING:
        raise ValueError("finish_delivery needs a final state, not PENDING")
    if dead_letter is not None and state is not DeliveryState.DEAD_LETTERED:
        raise ValueError(f"a dead-letter message needs state DEAD_LETTERED, not {state.name}")
