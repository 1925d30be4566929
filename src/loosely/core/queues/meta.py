"""The message ``meta`` document and the per-receive views built from it.

Storage keeps ``meta`` as opaque JSON text next to the body. It holds what SendMessage accepted
(message and system attributes, the sender, the deduplication id actually used) and the digests
computed once at send time, so receives never re-validate or re-hash what did not change.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from json.encoder import encode_basestring

from loosely.core.errors import InvalidParameterValue
from loosely.core.frozen import record
from loosely.core.queues.digests import md5_of_attributes, md5_of_body
from loosely.core.queues.models import MessageAttributeValue, StoredMessage
from loosely.core.queues.validation import check_attribute_name

_VERSION = 1
_json_string: Callable[[str], str] = encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str
_OPENING = f'{{"v":{_VERSION},"md5":"'
_MD5_START = len(_OPENING)
_MD5_END = _MD5_START + 32
# The scanner behind json.loads, called directly: it returns (value, end) for text that starts with JSON.
_scan_json: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_ALL_ATTRIBUTES = frozenset(("All", "*", ".*"))
SYSTEM_ATTRIBUTE_NAMES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


@record
class MessageMeta:
    md5_of_body: str
    sender_id: str
    message_attributes: Mapping[str, MessageAttributeValue] = field(default_factory=dict)
    system_attributes: Mapping[str, MessageAttributeValue] = field(default_factory=dict)
    md5_of_message_attributes: str | None = None
    md5_of_system_attributes: str | None = None
    deduplication_id: str | None = None


def build_meta(
    body: str,
    sender_id: str,
    message_attributes: Mapping[str, MessageAttributeValue],
    system_attributes: Mapping[str, MessageAttributeValue],
    deduplication_id: str | None,
) -> MessageMeta:
    return MessageMeta(
        md5_of_body=md5_of_body(body),
        sender_id=sender_id,
        message_attributes=dict(message_attributes),
        system_attributes=dict(system_attributes),
        md5_of_message_attributes=md5_of_attributes(message_attributes),
        md5_of_system_attributes=md5_of_attributes(system_attributes),
        deduplication_id=deduplication_id,
    )


def encode_meta(meta: MessageMeta) -> str:
    return encode_meta_fields(
        meta.md5_of_body,
        meta.sender_id,
        meta.message_attributes,
        meta.system_attributes,
        meta.md5_of_message_attributes,
        meta.md5_of_system_attributes,
        meta.deduplication_id,
    )


def encode_meta_fields(
    md5_of_body: str,
    sender_id: str,
    message_attributes: Mapping[str, MessageAttributeValue],
    system_attributes: Mapping[str, MessageAttributeValue],
    md5_of_message_attributes: str | None,
    md5_of_system_attributes: str | None,
    deduplication_id: str | None,
) -> str:
    """The meta document of a message being sent, from its parts (SendMessage skips `MessageMeta`).

    A message without attributes or deduplication id, the common case, is written by hand: the same
    text ``json.dumps`` gives (the digest is hex, the sender is escaped by json's own string encoder).
    """
    if not message_attributes and not system_attributes and deduplication_id is None:
        return f'{{"v":{_VERSION},"md5":"{md5_of_body}","sender":{_json_string(sender_id)}}}'
    document: dict[str, object] = {"v": _VERSION, "md5": md5_of_body, "sender": sender_id}
    if message_attributes:
        document["attrs"] = _encode_attributes(message_attributes)
        document["md5_attrs"] = md5_of_message_attributes
    if system_attributes:
        document["sys"] = _encode_attributes(system_attributes)
        document["md5_sys"] = md5_of_system_attributes
    if deduplication_id is not None:
        document["dedup"] = deduplication_id
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def stored_md5_of_body(text: str, body: str) -> str:
    """``decode_meta(text, body).md5_of_body`` without decoding the rest (a receive that asks for no attributes).

    A document this module wrote opens with the version and the 32-digit hex digest, so the digest is
    cut out of the text; any other text (older, re-serialised by a database, unreadable) is parsed.
    """
    if text.startswith(_OPENING) and text[_MD5_END : _MD5_END + 2] == '",':
        md5 = text[_MD5_START:_MD5_END]
        if '"' not in md5 and "\\" not in md5:
            return md5
    return decode_meta(text, body).md5_of_body


def decode_meta(text: str, body: str) -> MessageMeta:
    """The meta of a stored message; a missing or unreadable document yields a bare one for ``body``."""
    document = _load(text)
    if not isinstance(document, dict):
        return MessageMeta(md5_of_body=md5_of_body(body), sender_id="")
    return MessageMeta(
        md5_of_body=str(document.get("md5") or md5_of_body(body)),
        sender_id=str(document.get("sender", "")),
        message_attributes=_decode_attributes(document.get("attrs")),
        system_attributes=_decode_attributes(document.get("sys")),
        md5_of_message_attributes=document.get("md5_attrs"),
        md5_of_system_attributes=document.get("md5_sys"),
        deduplication_id=document.get("dedup"),
    )


def sequence_number(sequence: int) -> str:
    """A FIFO SequenceNumber: a 20-digit decimal string that grows with storage's send order."""
    return f"{sequence:020d}"


def system_attributes(message: StoredMessage, meta: MessageMeta, names: Sequence[str], fifo: bool) -> dict[str, str]:
    """The system attributes a receive asked for (``All`` or names), those that exist for this message."""
    wanted = set(SYSTEM_ATTRIBUTE_NAMES) if "All" in names else set(names)
    if not wanted:
        return {}
    available: dict[str, str | None] = {
        "SenderId": meta.sender_id,
        "SentTimestamp": str(message.sent_ms),
        "ApproximateReceiveCount": str(message.receive_count),
        "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
        "SequenceNumber": sequence_number(message.row_id) if fifo else None,
        "MessageDeduplicationId": meta.deduplication_id if fifo else None,
        "MessageGroupId": message.group_id,
        "AWSTraceHeader": _string_of(meta.system_attributes.get("AWSTraceHeader")),
        "DeadLetterQueueSourceArn": message.dead_letter_source_arn,
    }
    return {name: value for name, value in available.items() if name in wanted and value is not None}


def select_message_attributes(
    attributes: Mapping[str, MessageAttributeValue], names: Sequence[str]
) -> dict[str, MessageAttributeValue]:
    """The message attributes a receive asked for: ``All``, ``*`` or ``.*`` for every one, ``Hel.*`` for
    every name starting ``Hel`` (AWS returns ``Hello`` and ``Help.Me`` for it), or exact names."""
    if not names or not attributes:
        return {}
    if not _ALL_ATTRIBUTES.isdisjoint(names):
        return dict(attributes)
    exact = {name for name in names if not name.endswith(".*")}
    prefixes = tuple(name[:-2] for name in names if name.endswith(".*"))  # AWS: "Hel.*" matches "Hello"
    return {
        name: value for name, value in attributes.items() if name in exact or (prefixes and name.startswith(prefixes))
    }


def filters_attributes(names: Sequence[str]) -> bool:
    """Whether a receive's MessageAttributeNames can select anything: AWS ignores a name no attribute
    may have (``AWS.``, ``..foo``), and with only such names answers as if none were given, while
    valid names that match none of a message's attributes give an empty ``MessageAttributes``."""
    return any(_can_name_attributes(name) for name in names)


def _can_name_attributes(name: str) -> bool:
    if name in _ALL_ATTRIBUTES:
        return True
    try:
        check_attribute_name(name[:-2] if name.endswith(".*") else name)
    except InvalidParameterValue:
        return False
    return True


def _load(text: str) -> object:
    """``json.loads(text)``, or None where it raises; a compact document skips json's whitespace wrappers."""
    try:
        document, end = _scan_json(text, 0)
    except (StopIteration, ValueError):
        document, end = None, -1
    if end == len(text):
        return document
    try:
        return json.loads(text)
    except ValueError:
        return None


def _string_of(value: MessageAttributeValue | None) -> str | None:
    return value.string_value if value is not None else None


def _encode_attributes(attributes: Mapping[str, MessageAttributeValue]) -> dict[str, dict[str, str]]:
    encoded: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        entry = {"t": value.data_type}
        if value.string_value is not None:
            entry["s"] = value.string_value
        if value.binary_value is not None:
            entry["b"] = base64.b64encode(value.binary_value).decode("ascii")
        encoded[name] = entry
    return encoded


def _decode_attributes(encoded: object) -> dict[str, MessageAttributeValue]:
    if not isinstance(encoded, dict):
        return {}
    decoded: dict[str, MessageAttributeValue] = {}
    for name, entry in encoded.items():
        if not isinstance(entry, dict):
            continue
        binary = entry.get("b")
        decoded[name] = MessageAttributeValue(
            data_type=str(entry.get("t", "String")),
            string_value=entry.get("s"),
            binary_value=base64.b64decode(binary) if isinstance(binary, str) else None,
        )
    return decoded
