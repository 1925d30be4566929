"""Receipt handles: opaque, url-safe tokens naming one receive of one message of one queue.

A handle packs the queue's storage id, the message's row id, the receive count of the receive
that handed it out and that receive's instant (needed for the 12-hour visibility ceiling), then
random filler, then a checksum of all that, so it is 96 bytes, as long as AWS's (128 characters of
url-safe base64). Anything that is not exactly that, fails its checksum or names another queue is
invalid (a handle of another queue with AWS's own wording for that case). The filler is never read
back: handles of earlier versions, whose filler was a hash of the header, decode the same way.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import struct

from loosely.core.errors import ReceiptHandleIsInvalid
from loosely.core.frozen import record
from loosely.core.queues.models import MessageRef

_VERSION = 1
_HEADER = struct.Struct(">BQQIQ")  # version, queue id, row id, receive count, received at (ms)
_TOTAL_BYTES = 96
_CHECKSUM_BYTES = 8
_FILLER_BYTES = _TOTAL_BYTES - _HEADER.size - _CHECKSUM_BYTES
_DOMAIN = b"loosely-receipt-handle"
_ENCODED_LENGTH = 128
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Url-safe to standard base64; the standard alphabet's own "+" and "/" become "!", which strict
# decoding rejects like any other character outside the alphabet.
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")
_POOL_CHUNKS = 64
_CHECKSUM_BASE = hashlib.sha256(_DOMAIN)  # copied per handle: fewer instructions than a fresh hash


class _Filler:
    """Random filler, drawn from ``os.urandom`` a few KiB at a time rather than per handle.

    ``list.pop`` hands out each chunk once without a lock; two threads refilling at the same
    time only means one of the fresh lists is dropped unused.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def take(self) -> bytes:
        try:
            return self._chunks.pop()
        except IndexError:
            pool = os.urandom(_FILLER_BYTES * _POOL_CHUNKS)
            chunks = [pool[start : start + _FILLER_BYTES] for start in range(0, len(pool), _FILLER_BYTES)]
            chunk = chunks.pop()
            self._chunks = chunks
            return chunk


_FILLER = _Filler()


@record
class Receipt:
    """What a valid handle says: which message and receive, and when that receive happened."""

    ref: MessageRef
    received_ms: int


def encode(queue_id: int, ref: MessageRef, received_ms: int) -> str:
    return encode_parts(queue_id, ref.row_id, ref.receive_count, received_ms)


def encode_parts(queue_id: int, row_id: int, receive_count: int, received_ms: int) -> str:
    """`encode` without a `MessageRef`: ReceiveMessage makes one handle per message returned."""
    body = _HEADER.pack(_VERSION, queue_id, row_id, receive_count, received_ms) + _FILLER.take()
    raw = body + _checksum(body)
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")


def decode(handle: str, queue_id: int) -> Receipt:
    """The receipt a handle names, or ``ReceiptHandleIsInvalid`` for anything else."""
    raw = _raw_bytes(handle)
    if raw is None or raw[-_CHECKSUM_BYTES:] != _checksum(raw[:-_CHECKSUM_BYTES]):
        raise invalid(handle)
    version, handle_queue_id, row_id, receive_count, received_ms = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise invalid(handle)
    if handle_queue_id != queue_id:
        # A real handle of another queue: AWS words this case differently.
        raise ReceiptHandleIsInvalid(f'The receipt handle "{handle}" is not valid for this queue.')
    return Receipt(MessageRef(row_id, receive_count), received_ms)


def invalid(handle: str) -> ReceiptHandleIsInvalid:
    return ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')


def _raw_bytes(handle: str) -> bytes | None:
    """The 96 bytes of a handle made of exactly 128 url-safe base64 characters, else None.

    Strict decoding rejects every character outside the standard alphabet (the standard
    alphabet's own ``+`` and ``/`` are translated out of it first, since only ``-`` and ``_``
    are url-safe) and misplaced padding (padding at the end leaves fewer than 96 bytes).
    """
    if len(handle) != _ENCODED_LENGTH or not handle.isascii():
        return None
    try:
        raw = binascii.a2b_base64(handle.encode("ascii").translate(_FROM_URLSAFE), strict_mode=True)
    except binascii.Error:
        return None
    return raw if len(raw) == _TOTAL_BYTES else None


def _checksum(body: bytes) -> bytes:
    digest = _CHECKSUM_BASE.copy()
    digest.update(body)
    return digest.digest()[-_CHECKSUM_BYTES:]
