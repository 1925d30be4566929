"""Pure checks of message, batch and receive parameters, raising AWS's errors with AWS's wording.

Each function checks one rule family and raises a `loosely.core.errors` error; none does I/O, so
the service calls them before touching storage and a rejected request changes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from loosely.core.errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    TooManyEntriesInBatchRequest,
)
from loosely.core.queues import limits
from loosely.core.queues.models import MessageAttributeValue

if TYPE_CHECKING:
    from decimal import Decimal

# The characters SQS refuses: every one outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
# Compiled on first use (see `_invalid_char`), and spelled as what is refused rather than as the negation of
# what is allowed: that negated class of nearly all of Unicode took 6-8 ms to compile, this one under 1 ms,
# and it searches text about a third faster. Only text that is not ASCII gets here (`has_only_valid_chars`).
_INVALID_CHAR_CLASS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_INVALID_ASCII = bytes(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D))
_INVALID_CHARS_MESSAGE = (
    "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
    "#xE000 to #xFFFD | #x10000 to #x10FFFF"
)
# Letters and digits of any script (AWS accepts "attr.1øßä"), plus "_", "." and "-"; not "§", "!" or "?".
_ATTRIBUTE_NAME_CHARS = re.compile(r"[\w.\-]+")
_RESERVED_PREFIXES = ("aws.", "amazon.")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BATCH_ID = re.compile(r"[A-Za-z0-9_\-]{1," + str(limits.BATCH_ENTRY_ID_MAX) + "}")
_FIFO_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1," + str(limits.FIFO_ID_MAX) + "}")
_SYSTEM_ATTRIBUTES_FOR_SENDS = ("AWSTraceHeader",)


def invalid_value(value: object, parameter: str, reason: str) -> InvalidParameterValue:
    """AWS's most common wording: ``Value X for parameter P is invalid. Reason: R``."""
    return InvalidParameterValue(f"Value {value} for parameter {parameter} is invalid. Reason: {reason}")


# ---- message body and attributes ----


def check_body(body: str) -> None:
    """A body must be non-empty and use only the XML-safe characters SQS accepts."""
    if not body:
        raise MissingParameter("The request must contain the parameter MessageBody.")
    if not has_only_valid_chars(body):
        raise InvalidMessageContents(_INVALID_CHARS_MESSAGE)


def has_only_valid_chars(text: str) -> bool:
    """Whether every character of ``text`` is one SQS accepts (#x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, ...).

    In ASCII text, most bodies, only the control characters other than tab, LF and CR are invalid, and
    deleting them from the bytes (a table lookup per byte) tells whether there are any, several times
    faster than the character-class search, which costs as much as the rest of SendMessage's checks.
    Any other text takes the exact pattern.
    """
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw.translate(None, _INVALID_ASCII)) == len(raw)
    return _invalid_char().search(text) is None


@functools.cache
def _invalid_char() -> re.Pattern[str]:
    """The pattern of a refused character, compiled once, when text that is not ASCII first needs it."""
    return re.compile(_INVALID_CHAR_CLASS)


def message_size(body: str, attributes: Mapping[str, MessageAttributeValue]) -> int:
    """The size SQS charges against MaximumMessageSize: body plus every attribute's name, type and value."""
    size = len(body.encode("utf-8"))
    for name, value in attributes.items():
        size += len(name.encode("utf-8")) + len(value.data_type.encode("utf-8"))
        if value.string_value is not None:
            size += len(value.string_value.encode("utf-8"))
        if value.binary_value is not None:
            size += len(value.binary_value)
    return size


def check_size(size: int, maximum: int) -> None:
    if size > maximum:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {maximum} bytes."
        )


def check_message_attributes(attributes: Mapping[str, MessageAttributeValue]) -> None:
    """Count, names, types and values of user message attributes, in name order so errors are stable."""
    if len(attributes) > limits.MESSAGE_ATTRIBUTES_MAX:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{limits.MESSAGE_ATTRIBUTES_MAX}]."
        )
    for name in sorted(attributes):
        check_attribute_name(name)
        check_attribute_value(name, attributes[name])


def check_attribute_name(name: str) -> None:
    if len(name.encode("utf-8")) > limits.ATTRIBUTE_NAME_MAX_BYTES:
        raise InvalidParameterValue("Message (user) attribute names must be shorter than 256 Bytes")
    if not _ATTRIBUTE_NAME_CHARS.fullmatch(name):
        raise InvalidParameterValue(
            "Message (user) attributes name can only contain upper and lower score characters, digits, "
            "periods, hyphens and underscores. "
        )
    if name.lower().startswith(_RESERVED_PREFIXES) or name.startswith(".") or name.endswith("."):
        raise InvalidParameterValue(
            "You can't use message attribute names beginning with 'AWS.' or 'Amazon.'. These strings are "
            "reserved for internal use. Additionally, they cannot start or end with '.'."
        )
    if ".." in name:
        raise InvalidParameterValue(f"Message (user) attribute name '{name}' cannot contain successive '.' characters.")


def check_attribute_value(name: str, value: MessageAttributeValue) -> None:
    """The data type is String, Number or Binary (optionally ``.custom``) and the value matches it."""
    base = _base_type(name, value.data_type)
    if base == "Binary":
        if not value.binary_value:
            raise InvalidParameterValue(
                f"Message (user) attribute '{name}' must contain a non-empty value of type 'Binary'."
            )
        return
    if not value.string_value:
        raise InvalidParameterValue(
            f"Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
        )
    if not has_only_valid_chars(value.string_value):
        raise InvalidParameterValue(_INVALID_CHARS_MESSAGE)
    if base == "Number":
        _check_number(name, value.string_value)


def _base_type(name: str, data_type: str) -> str:
    if not data_type:
        raise InvalidParameterValue(f"Message (user) attribute '{name}' must contain a non-empty attribute type.")
    if len(data_type.encode("utf-8")) > limits.ATTRIBUTE_TYPE_MAX_BYTES:
        raise InvalidParameterValue("Message (user) attribute types must be shorter than 256 Bytes")
    base, dot, custom = data_type.partition(".")
    if base not in ("String", "Number", "Binary") or (dot and not custom):
        raise InvalidParameterValue(
            f"The message attribute '{name}' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String."
        )
    return base


def _check_number(name: str, text: str) -> None:
    if not _NUMBER.fullmatch(text):
        raise InvalidParameterValue(f"Can't cast the value of message (user) attribute '{name}' to a number.")
    from decimal import Decimal, InvalidOperation  # on first use: start-up has no other need for decimal

    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal literals
        raise InvalidParameterValue(f"Can't cast the value of message (user) attribute '{name}' to a number.") from None
    low, high = _number_range()
    if not low <= number <= high:
        raise InvalidParameterValue(
            f"Value {text} of message (user) attribute '{name}' should be in range (-10**128..10**126)."
        )


@functools.cache
def _number_range() -> tuple[Decimal, Decimal]:
    """The values a Number attribute may take: -10**128 to 10**126."""
    from decimal import Decimal

    return -(Decimal(10) ** 128), Decimal(10) ** 126


def check_system_attributes(attributes: Mapping[str, MessageAttributeValue]) -> None:
    """Senders may set only AWSTraceHeader, as a String."""
    for name in sorted(attributes):
        value = attributes[name]
        if name not in _SYSTEM_ATTRIBUTES_FOR_SENDS:
            raise InvalidParameterValue(f"Message system attribute name '{name}' is invalid.")
        if value.data_type != "String" or not value.string_value:
            raise InvalidParameterValue(
                f"Message system attribute '{name}' must contain a non-empty value of type 'String'."
            )
        if not has_only_valid_chars(value.string_value):
            raise InvalidParameterValue(_INVALID_CHARS_MESSAGE)


# ---- per-message send parameters ----


def check_delay(delay_s: int | None, fifo: bool) -> None:
    """Per-message DelaySeconds: 0..900 on standard queues; FIFO queues accept only the queue's delay."""
    if delay_s is None:
        return
    if fifo and delay_s != 0:
        raise invalid_value(
            delay_s, "DelaySeconds", "The request include parameter that is not valid for this queue type."
        )
    if not 0 <= delay_s <= limits.DELAY_MAX_S:
        raise invalid_value(delay_s, "DelaySeconds", f"DelaySeconds must be >= 0 and <= {limits.DELAY_MAX_S}.")


def check_fifo_id(value: str | None, parameter: str) -> None:
    """MessageGroupId / MessageDeduplicationId / ReceiveRequestAttemptId: 1..128 ASCII alphanumerics and punctuation."""
    if value is not None and not _FIFO_ID.fullmatch(value):
        raise invalid_value(
            value,
            parameter,
            f"{parameter} can only include alphanumeric and punctuation characters. "
            f"1 to {limits.FIFO_ID_MAX} in length.",
        )


# ---- receive and visibility parameters ----


def check_max_messages(count: int) -> None:
    if not 1 <= count <= limits.RECEIVE_MESSAGES_MAX:
        raise invalid_value(
            count, "MaxNumberOfMessages", f"Must be between 1 and {limits.RECEIVE_MESSAGES_MAX}, if provided."
        )


def check_wait_time(wait_s: int) -> None:
    if not 0 <= wait_s <= limits.WAIT_TIME_MAX_S:
        raise invalid_value(wait_s, "WaitTimeSeconds", f"Must be >= 0 and <= {limits.WAIT_TIME_MAX_S}, if provided.")


def check_visibility_timeout(timeout_s: int) -> None:
    if not 0 <= timeout_s <= limits.VISIBILITY_TIMEOUT_MAX_S:
        raise invalid_value(
            timeout_s, "VisibilityTimeout", f"Must be between 0 and {limits.VISIBILITY_TIMEOUT_MAX_S}, if provided."
        )


# ---- batches ----


def check_batch_ids(ids: Sequence[str], entry_kind: str) -> None:
    """The request-level batch rules: 1..10 entries, ids well-formed and distinct.

    ``entry_kind`` is the action name (``SendMessageBatch``...) used in the empty-batch message.
    """
    if not ids:
        raise EmptyBatchRequest(f"There should be at least one {entry_kind}RequestEntry in the request.")
    if len(ids) > limits.BATCH_ENTRIES_MAX:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {limits.BATCH_ENTRIES_MAX}. You have sent {len(ids)}."
        )
    seen: set[str] = set()
    for entry_id in ids:
        if not _BATCH_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                f"It can be at most {limits.BATCH_ENTRY_ID_MAX} letters long."
            )
        if entry_id in seen:
            raise BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)


# ---- tags ----


def check_tags(tags: Mapping[str, str], queue_name: str, total: int) -> None:
    """Tag keys 1..128 characters, values up to 256, at most 50 tags on the queue after the change."""
    for key, value in tags.items():
        if not 1 <= len(key) <= limits.TAG_KEY_MAX:
            raise InvalidParameterValue(f"Tag keys must be between 1 and {limits.TAG_KEY_MAX} characters in length.")
        if len(value) > limits.TAG_VALUE_MAX:
            raise InvalidParameterValue(f"Tag values may only be up to {limits.TAG_VALUE_MAX} characters in length.")
    if total > limits.TAGS_MAX:
        raise InvalidParameterValue(
            f"Too many tags added for queue {queue_name}. A queue can have at most {limits.TAGS_MAX} tags."
        )
