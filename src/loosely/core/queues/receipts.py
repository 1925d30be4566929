"""Receipt handles: opaque, url-safe tokens naming one receive of one message of one queue.

A handle packs the queue's storage id, the message's row id, the receive count of the receive
that handed it out and that receive's instant (needed for the 12-hour visibility ceiling), then a
checksum, and pads to 96 bytes so it is as long as AWS's (128 characters of url-safe base64).
Anything that does not decode exactly, fails its checksum or names another queue is invalid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
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


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a valid handle says: which message and receive, and when that receive happened."""

    ref: MessageRef
    received_ms: int


def encode(queue_id: int, ref: MessageRef, received_ms: int) -> str:
    header = _HEADER.pack(_VERSION, queue_id, ref.row_id, ref.receive_count, received_ms)
    filler = hashlib.sha512(_DOMAIN + header).digest()[:_FILLER_BYTES]
    body = header + filler
    return base64.urlsafe_b64encode(body + _checksum(body)).decode("ascii")


def decode(handle: str, queue_id: int) -> Receipt:
    """The receipt a handle names, or ``ReceiptHandleIsInvalid`` for anything else."""
    raw = _raw_bytes(handle)
    if raw is None:
        raise invalid(handle)
    body, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if checksum != _checksum(body):
        raise invalid(handle)
    version, handle_queue_id, row_id, receive_count, received_ms = _HEADER.unpack_from(body)
    if version != _VERSION or handle_queue_id != queue_id:
        raise invalid(handle)
    return Receipt(ref=MessageRef(row_id=row_id, receive_count=receive_count), received_ms=received_ms)


def invalid(handle: str) -> ReceiptHandleIsInvalid:
    return ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')


def _raw_bytes(handle: str) -> bytes | None:
    if len(handle) != _ENCODED_LENGTH or not handle.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(handle.encode("ascii"))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _TOTAL_BYTES or base64.urlsafe_b64encode(raw).decode("ascii") != handle:
        return None
    return raw


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + body).digest()[-_CHECKSUM_BYTES:]
