"""Queue names and queue attributes: which exist, which may be set, their ranges and canonical form.

Attributes are stored as the strings GetQueueAttributes returns. Values are canonicalised on the
way in (booleans lower-case, JSON policies compact) so that CreateQueue's "same attributes?"
comparison and GetQueueAttributes both see one spelling per value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from loosely.core.errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue
from loosely.core.frozen import record
from loosely.core.queues import limits
from loosely.core.queues.models import QueueKey

ALL = "All"
COMPUTED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
SETTABLE = (
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "SqsManagedSseEnabled",
)
NAMES = frozenset((*COMPUTED, *SETTABLE))
_FIFO_ONLY_UNKNOWN = ("FifoQueue", "ContentBasedDeduplication")
_FIFO_ONLY_EXPLAINED = ("DeduplicationScope", "FifoThroughputLimit")
_REMOVABLE = ("Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId")
_INTEGER = re.compile(r"-?\d{1,12}")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_\-]{1,%s}" % limits.QUEUE_NAME_MAX)  # noqa: UP031 - a regex quantifier
_SSE_CONFLICT = (
    "You can use one type of server-side encryption (SSE) at one time. You can either enable KMS SSE or SQS SSE."
)


@record
class RedrivePolicy:
    dead_letter_target_arn: str
    max_receive_count: int


@record
class RedriveAllowPolicy:
    permission: str  # allowAll | denyAll | byQueue
    source_queue_arns: tuple[str, ...] = ()

    def allows(self, source_arn: str) -> bool:
        """Whether a queue of this ARN may name the policy's queue as its dead-letter queue."""
        if self.permission == "byQueue":
            return source_arn in self.source_queue_arns
        return self.permission == "allowAll"


# ---- names ----


def validate_queue_name(name: str, fifo: bool) -> None:
    """Standard: 1..80 of ``[A-Za-z0-9_-]``. FIFO: the same, ending in ``.fifo`` (counted in the 80)."""
    if fifo:
        stem = name.removesuffix(limits.FIFO_SUFFIX)
        if not name.endswith(limits.FIFO_SUFFIX) or not stem or not _QUEUE_NAME.fullmatch(stem + "_fifo"):
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, "
                "must end with .fifo suffix and be 1 to 80 in length"
            )
    elif not _QUEUE_NAME.fullmatch(name):
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )


def requests_fifo(attributes: Mapping[str, str]) -> bool:
    """Whether CreateQueue's attributes ask for a FIFO queue (``FifoQueue=true``, any case)."""
    value = attributes.get("FifoQueue")
    if value is None:
        return False
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        # AWS rejects FifoQueue=false as if standard queues had no such attribute.
        raise InvalidAttributeName("Unknown Attribute FifoQueue.")
    raise InvalidAttributeValue("Invalid value for the parameter FifoQueue.")


def check_names(names: Mapping[str, str], fifo: bool, creating: bool) -> None:
    """Reject attribute names that do not exist or may not be set on this kind of queue."""
    for name in names:
        if name not in SETTABLE:
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
        if not fifo and name in _FIFO_ONLY_UNKNOWN:
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
        if not fifo and name in _FIFO_ONLY_EXPLAINED:
            raise InvalidAttributeName(f"You can specify the {name} only when FifoQueue is set to true.")
        if name == "FifoQueue" and not creating and names[name].lower() != "true":
            raise InvalidAttributeValue(
                "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
            )


# ---- values ----


def _int_range(low: int, high: int) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if not _INTEGER.fullmatch(value.strip()) or not low <= int(value) <= high:
            raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
        return str(int(value))

    return check


def _boolean(name: str, value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return value.lower()


def _one_of(*choices: str) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if value not in choices:
            raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
        return value

    return check


def _policy(name: str, value: str) -> str:
    if value == "":
        return value
    try:
        document = json.loads(value)
    except ValueError:
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.") from None
    if not isinstance(document, dict):
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return value


def _any_string(name: str, value: str) -> str:
    return value


def _redrive_policy(name: str, value: str) -> str:
    if value == "":
        return value
    policy = parse_redrive_policy(value)
    return json.dumps(
        {"deadLetterTargetArn": policy.dead_letter_target_arn, "maxReceiveCount": policy.max_receive_count},
        separators=(",", ":"),
    )


def _redrive_allow_policy(name: str, value: str) -> str:
    if value == "":
        return value
    policy = parse_redrive_allow_policy(value)
    document: dict[str, object] = {"redrivePermission": policy.permission}
    if policy.permission == "byQueue":
        document["sourceQueueArns"] = list(policy.source_queue_arns)
    return json.dumps(document, separators=(",", ":"))


_VALIDATORS: dict[str, Callable[[str, str], str]] = {
    "Policy": _policy,
    "VisibilityTimeout": _int_range(0, limits.VISIBILITY_TIMEOUT_MAX_S),
    "MaximumMessageSize": _int_range(limits.MESSAGE_SIZE_MIN, limits.MESSAGE_SIZE_MAX),
    "MessageRetentionPeriod": _int_range(limits.RETENTION_MIN_S, limits.RETENTION_MAX_S),
    "DelaySeconds": _int_range(0, limits.DELAY_MAX_S),
    "ReceiveMessageWaitTimeSeconds": _int_range(0, limits.WAIT_TIME_MAX_S),
    "RedrivePolicy": _redrive_policy,
    "FifoQueue": _boolean,
    "ContentBasedDeduplication": _boolean,
    "KmsMasterKeyId": _any_string,
    "KmsDataKeyReusePeriodSeconds": _int_range(limits.KMS_REUSE_MIN_S, limits.KMS_REUSE_MAX_S),
    "DeduplicationScope": _one_of("queue", "messageGroup"),
    "FifoThroughputLimit": _one_of("perQueue", "perMessageGroupId"),
    "RedriveAllowPolicy": _redrive_allow_policy,
    "SqsManagedSseEnabled": _boolean,
}


def canonicalize(attributes: Mapping[str, str], fifo: bool, creating: bool) -> dict[str, str]:
    """Validate names then values; return each value in its canonical spelling ("" = remove)."""
    check_names(attributes, fifo, creating)
    return {name: _VALIDATORS[name](name, value) for name, value in attributes.items()}


def defaults(fifo: bool) -> dict[str, str]:
    """The attributes of a new queue before the caller's are applied (SSE-SQS on by default)."""
    values = {
        "VisibilityTimeout": str(limits.DEFAULT_VISIBILITY_TIMEOUT_S),
        "MaximumMessageSize": str(limits.DEFAULT_MAXIMUM_MESSAGE_SIZE),
        "MessageRetentionPeriod": str(limits.DEFAULT_RETENTION_S),
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
    }
    if fifo:
        values |= {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "DeduplicationScope": "queue",
            "FifoThroughputLimit": "perQueue",
        }
    return values


def merge(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """Apply canonical ``changes`` to ``current``: empty values remove, and SSE-KMS and SSE-SQS exclude each other."""
    kms_key = changes.get("KmsMasterKeyId")
    if kms_key and changes.get("SqsManagedSseEnabled") == "true":
        raise InvalidAttributeName(_SSE_CONFLICT)
    result = dict(current)
    for name, value in changes.items():
        if value == "" and name in _REMOVABLE:
            result.pop(name, None)
        else:
            result[name] = value
    if kms_key:
        result["SqsManagedSseEnabled"] = "false"
        result.setdefault("KmsDataKeyReusePeriodSeconds", str(limits.DEFAULT_KMS_REUSE_S))
    elif kms_key == "" or changes.get("SqsManagedSseEnabled") == "true":
        result.pop("KmsMasterKeyId", None)
        result.pop("KmsDataKeyReusePeriodSeconds", None)
    _check_throughput(result)
    return result


def _check_throughput(attributes: Mapping[str, str]) -> None:
    if attributes.get("FifoThroughputLimit") == "perMessageGroupId" and attributes.get("DeduplicationScope") == "queue":
        raise InvalidAttributeValue(
            "Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId is only available "
            "when DeduplicationScope is messageGroup."
        )


def first_difference(existing: Mapping[str, str], requested: Mapping[str, str], fifo: bool) -> str | None:
    """The first requested attribute whose value differs from the existing queue's (CreateQueue idempotence).

    Only attributes the request names are compared; an attribute the queue does not store compares
    as its default, or as absent ("") for removable ones such as Policy.
    """
    baseline = defaults(fifo)
    for name, value in requested.items():
        stored = existing.get(name, baseline.get(name, ""))
        if stored != value:
            return name
    return None


# ---- redrive policies ----


def parse_redrive_policy(text: str) -> RedrivePolicy:
    """Parse and check a RedrivePolicy document, raising AWS's InvalidParameterValue wording."""

    def invalid(reason: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Value {text} for parameter RedrivePolicy is invalid. Reason: {reason}")

    document = _json_object(text, invalid("Redrive policy is not a valid JSON map."))
    for key in ("deadLetterTargetArn", "maxReceiveCount"):
        if key not in document:
            raise invalid(f"Redrive policy does not contain mandatory attribute: {key}.")
    extra = sorted(set(document) - {"deadLetterTargetArn", "maxReceiveCount"})
    if extra:
        raise invalid(
            f"Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount]. Found {extra[0]}."
        )
    arn = document["deadLetterTargetArn"]
    if not isinstance(arn, str) or QueueKey.from_arn(arn) is None:
        raise invalid("Invalid value for deadLetterTargetArn.")
    count = document["maxReceiveCount"]
    parsed = _as_int(count)
    if parsed is None or not limits.MAX_RECEIVE_COUNT_MIN <= parsed <= limits.MAX_RECEIVE_COUNT_MAX:
        raise invalid(
            f"Invalid value for maxReceiveCount: {count}, valid values are from {limits.MAX_RECEIVE_COUNT_MIN} "
            f"to {limits.MAX_RECEIVE_COUNT_MAX} both inclusive."
        )
    return RedrivePolicy(dead_letter_target_arn=arn, max_receive_count=parsed)


def parse_redrive_allow_policy(text: str) -> RedriveAllowPolicy:
    def invalid(reason: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Value {text} for parameter RedriveAllowPolicy is invalid. Reason: {reason}")

    document = _json_object(text, invalid("Redrive allow policy is not a valid JSON map."))
    permission = document.get("redrivePermission")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise invalid("Invalid value for redrivePermission.")
    arns = document.get("sourceQueueArns")
    if permission != "byQueue":
        if arns is not None:
            raise invalid("sourceQueueArns can be specified only when redrivePermission is byQueue.")
        return RedriveAllowPolicy(permission=permission)
    if (
        not isinstance(arns, list)
        or not 1 <= len(arns) <= limits.REDRIVE_ALLOW_SOURCES_MAX
        or not all(isinstance(arn, str) and QueueKey.from_arn(arn) for arn in arns)
    ):
        raise invalid(
            f"sourceQueueArns must list 1 to {limits.REDRIVE_ALLOW_SOURCES_MAX} queue ARNs when redrivePermission "
            "is byQueue."
        )
    return RedriveAllowPolicy(permission=permission, source_queue_arns=tuple(arns))


# Parsed stored policies by their text: every receive on a queue with a dead-letter queue reads it.
_STORED_REDRIVE: dict[str, RedrivePolicy] = {}
_STORED_REDRIVE_MAX = 1_024


def stored_redrive_policy(attributes: Mapping[str, str]) -> RedrivePolicy | None:
    """The queue's redrive policy, or None (stored values were checked when they were set)."""
    text = attributes.get("RedrivePolicy")
    if not text:
        return None
    policy = _STORED_REDRIVE.get(text)
    if policy is None:
        policy = parse_redrive_policy(text)
        if len(_STORED_REDRIVE) >= _STORED_REDRIVE_MAX:
            _STORED_REDRIVE.clear()
        _STORED_REDRIVE[text] = policy
    return policy


def stored_redrive_allow_policy(attributes: Mapping[str, str]) -> RedriveAllowPolicy:
    text = attributes.get("RedriveAllowPolicy")
    return parse_redrive_allow_policy(text) if text else RedriveAllowPolicy(permission="allowAll")


def _json_object(text: str, error: InvalidParameterValue) -> dict[str, object]:
    try:
        document = json.loads(text)
    except ValueError:
        raise error from None
    if not isinstance(document, dict):
        raise error
    return document


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None
