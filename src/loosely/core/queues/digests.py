"""The MD5 digests SQS returns so clients can check what the server received.

SDKs for Java, .NET and Go recompute these digests and fail the call when they differ, so the
encoding must be byte-exact. For message attributes (and system attributes, with the same rule)
SQS hashes, per attribute in ascending name order: the name, the data type and the value, each as
a 4-byte big-endian length followed by its UTF-8 (or raw binary) bytes, with a one-byte transport
marker (1 = String/Number, 2 = Binary) between the data type and the value.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

from loosely.core.queues.models import MessageAttributeValue

_STRING_TRANSPORT = b"\x01"
_BINARY_TRANSPORT = b"\x02"


def md5_of_body(body: str) -> str:
    """MD5OfMessageBody / MD5OfBody: the hex MD5 of the body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def md5_of_body_bytes(body: bytes) -> str:
    """`md5_of_body` of a body already encoded as UTF-8 (SendMessage encodes it once, for size and digest)."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Mapping[str, MessageAttributeValue]) -> str | None:
    """MD5OfMessageAttributes (or MD5OfMessageSystemAttributes); None when there are none.

    AWS omits the digest entirely when no attributes are sent or returned, so None, not the MD5 of
    the empty string, is the faithful answer.
    """
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        digest.update(_length_prefixed(name.encode("utf-8")))
        digest.update(_length_prefixed(value.data_type.encode("utf-8")))
        if is_binary_type(value.data_type):
            digest.update(_BINARY_TRANSPORT)
            digest.update(_length_prefixed(value.binary_value or b""))
        else:
            digest.update(_STRING_TRANSPORT)
            digest.update(_length_prefixed((value.string_value or "").encode("utf-8")))
    return digest.hexdigest()


def is_binary_type(data_type: str) -> bool:
    """Whether a data type (``Binary`` or ``Binary.<custom>``) carries bytes rather than text."""
    return data_type == "Binary" or data_type.startswith("Binary.")


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data
