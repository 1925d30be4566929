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
import threading
from dataclasses import dataclass

from loosely.core.errors import ReceiptHandleIsInvalid
from loosely.core.queues.models import MessageRef

_VERSION = 1
_HEADER = struct.Struct(">BQQIQ")  # version, queue id, row id, receive count, received at (ms)
_TOTAL_BYTES = 96
_CHECKSUM_BYTES = 8
_FILLER_BYTES = _TOTAL_BYTES - _HEADER.size - _CHECKSUM_BYTES
_DOMAIN = b"loosely-receipt-handle"
_ENCODED_LENGTH = 128
_CHECKSUM_BASE = hashlib.sha256(_DOMAIN)  # copied per handle: cheaper than hashing the domain again
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_POOL_BYTES = _FILLER_BYTES * 64


class _Filler:
    """Random filler, drawn from ``os.urandom`` a few KiB at a time rather than hashed per handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._next = _POOL_BYTES

    def take(self) -> bytes:
        with self._lock:
            start = self._next
            if start >= _POOL_BYTES:
                self._pool = os.urandom(_POOL_BYTES)
                start = 0
            self._next = start + _FILLER_BYTES
            return self._pool[start : start + _FILLER_BYTES]


_FILLER = _Filler()


@dataclass(frozen=True, slots=True)
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
    if raw is None:
        raise invalid(handle)
    body, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if checksum != _checksum(body):
        raise invalid(handle)
    version, handle_queue_id, row_id, receive_count, received_ms = _HEADER.unpack_from(body)
    if version != _VERSION:
        raise invalid(handle)
    if handle_queue_id != queue_id:
        # A real handle of another queue: AWS words this case differently.
        raise ReceiptHandleIsInvalid(f'The receipt handle "{handle}" is not valid for this queue.')
    return Receipt(ref=MessageRef(row_id=row_id, receive_count=receive_count), received_ms=received_ms)


def invalid(handle: str) -> ReceiptHandleIsInvalid:
    return ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')


def _raw_bytes(handle: str) -> bytes | None:
    """The 96 bytes of a handle made of exactly 128 url-safe base64 characters, else None.

    Strict decoding rejects every character outside the standard alphabet and misplaced padding
    (padding at the end leaves fewer than 96 bytes); the standard alphabet's own ``+`` and ``/``
    are rejected first, since only ``-`` and ``_`` are url-safe.
    """
    if len(handle) != _ENCODED_LENGTH or not handle.isascii():
        return None
    encoded = handle.encode("ascii")
    if b"+" in encoded or b"/" in encoded:
        return None
    try:
        raw = binascii.a2b_base64(encoded.translate(_FROM_URLSAFE), strict_mode=True)
    except binascii.Error:
        return None
    return raw if len(raw) == _TOTAL_BYTES else None


def _checksum(body: bytes) -> bytes:
    digest = _CHECKSUM_BASE.copy()
    digest.update(body)
    return digest.digest()[-_CHECKSUM_BYTES:]
