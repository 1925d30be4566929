"""Pure SNS checks: names, ARNs, topic and subscription attributes, endpoints, messages, tags.

Every function either returns a canonical value or raises the `loosely.core.errors` /
`loosely.core.topics.errors` error AWS returns, worded as AWS words it (``Invalid parameter: X``
for most). Nothing here does I/O, so the service checks a request whole before touching storage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from loosely.core.errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameter,
    InvalidParameterValue,
    TooManyEntriesInBatchRequest,
)
from loosely.core.topics._policy_json import unparsable_json
from loosely.core.topics.archive import check_archive_policy, parse_replay_policy
from loosely.core.topics.delivery_policy import parse_subscription_delivery_policy
from loosely.core.topics.errors import TagLimitExceeded
from loosely.core.topics.filter_policy import check_scope, parse_filter_policy
from loosely.core.topics.values import AttributeValue

MAX_MESSAGE_BYTES = 262_144
MAX_SUBJECT_CHARS = 100
MAX_TAGS = 50
MAX_BATCH_ENTRIES = 10
MAX_FIFO_ID_CHARS = 128

_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_FIFO_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,251}\.fifo")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SMS_ENDPOINT = re.compile(r"\+[0-9]+(?:[-./][0-9]+)*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL_HOST = re.compile(r"https?://[^/\s?#]+.*", re.DOTALL)
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]+")
_FIFO_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ATTRIBUTE_TYPE = re.compile(r"(String|Number|Binary)(\..+)?")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PROTOCOLS = frozenset({"http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"})
NOT_SERVED_PROTOCOLS = frozenset({"lambda", "firehose"})
RAW_DELIVERY_PROTOCOLS = frozenset({"http", "https", "sqs", "firehose"})

_FEEDBACK = tuple(
    f"{p}{suffix}"
    for p in ("Application", "HTTP", "Lambda", "SQS", "Firehose")
    for suffix in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")
)
TOPIC_SETTABLE = frozenset(
    {
        "DeliveryPolicy",
        "DisplayName",
        "Policy",
        "TracingConfig",
        "KmsMasterKeyId",
        "SignatureVersion",
        "ContentBasedDeduplication",
        "FifoThroughputScope",
        "ArchivePolicy",
        *_FEEDBACK,
    }
)
TOPIC_CREATE_ONLY = frozenset({"FifoTopic"})
_FIFO_ONLY = frozenset({"ContentBasedDeduplication", "FifoThroughputScope", "ArchivePolicy"})
SUBSCRIPTION_SETTABLE = frozenset(
    {
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "ReplayPolicy",
        "SubscriptionRoleArn",
    }
)

DEFAULT_POLICY_ACTIONS = (
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
    "SNS:Subscribe",
    "SNS:ListSubscriptionsByTopic",
    "SNS:Publish",
)
PERMISSION_ACTIONS = frozenset(a.removeprefix("SNS:") for a in DEFAULT_POLICY_ACTIONS) | {"Receive"}


def invalid(reason: str) -> InvalidParameter:
    """SNS's ``Invalid parameter: <reason>``."""
    return InvalidParameter(f"Invalid parameter: {reason}")


def compact_json(value: Any) -> str:
    """JSON as AWS returns policies: no spaces."""
    return json.dumps(value, separators=(",", ":"))


# ---- names and ARNs ----


def check_topic_name(name: str, fifo: bool) -> None:
    if fifo:
        if not _FIFO_TOPIC_NAME.fullmatch(name):
            raise InvalidParameter(
                "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII "
                "letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."
            )
    elif not _TOPIC_NAME.fullmatch(name):
        raise invalid("Topic Name")


def split_arn(arn: str, parameter: str) -> list[str]:
    """The six fields of an ARN (the resource keeps its colons), or AWS's complaint about their count."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise invalid(f"{parameter} Reason: An ARN must have at least 6 elements, not {len(arn.split(':'))}")
    return parts


def check_phone_number(number: str, parameter: str = "PhoneNumber") -> None:
    if not _E164.fullmatch(number):
        raise invalid(f"{parameter} Reason: input incorrectly formatted")


def is_phone_number(number: str) -> bool:
    return _E164.fullmatch(number) is not None


# ---- topic attributes ----


def default_policy(topic_arn: str, owner: str) -> str:
    """The access policy AWS gives every new topic: the owner's account may do everything."""
    return compact_json(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": list(DEFAULT_POLICY_ACTIONS),
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": owner}},
                }
            ],
        }
    )


def topic_defaults(topic_arn: str, owner: str, fifo: bool) -> dict[str, str]:
    """The stored attributes of a new topic before the requested ones apply."""
    attributes = {"DisplayName": "", "Policy": default_policy(topic_arn, owner)}
    if fifo:
        attributes.update({"FifoTopic": "true", "ContentBasedDeduplication": "false", "FifoThroughputScope": "Topic"})
    return attributes


def requests_fifo(attributes: Mapping[str, str]) -> bool:
    value = attributes.get("FifoTopic")
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid("Attributes Reason: FifoTopic must be true or false")
    return value.lower() == "true"


def canonical_topic_attributes(attributes: Mapping[str, str], fifo: bool, creating: bool) -> dict[str, str]:
    """Validate topic attributes; return them with canonical values (booleans in lower case)."""
    out: dict[str, str] = {}
    for name in sorted(attributes):
        value = attributes[name]
        if name in TOPIC_CREATE_ONLY:
            if not creating:
                raise invalid("AttributeName")
            out[name] = value.lower()
            continue
        if name not in TOPIC_SETTABLE:
            raise invalid("AttributeName")
        out[name] = _topic_attribute(name, value, fifo, creating)
    if not fifo:
        out.pop("FifoTopic", None)  # AWS keeps no explicit "false"
    return out


def _topic_attribute(name: str, value: str, fifo: bool, creating: bool) -> str:
    if name in _FIFO_ONLY and not fifo:
        if name == "ContentBasedDeduplication":
            raise invalid(
                "ContentBasedDeduplication Reason: Content based deduplication can only be set for FIFO topics"
            )
        raise invalid(f"{name} Reason: {name} can only be set for FIFO topics")
    checker = _TOPIC_CHECKS.get(name)
    return checker(name, value, fifo, creating) if checker else value


def _check_boolean(name: str, value: str, fifo: bool, creating: bool) -> str:
    if value.lower() not in ("true", "false"):
        raise invalid(f"{name}")
    return value.lower()


def _check_display_name(name: str, value: str, fifo: bool, creating: bool) -> str:
    if len(value) > 100:
        raise invalid("DisplayName")
    return value


def _check_policy(name: str, value: str, fifo: bool, creating: bool) -> str:
    try:
        document = json.loads(value)
    except ValueError:
        raise invalid("Policy Error: failed to parse JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("Statement", []), list | dict):
        raise invalid("Policy Error: null")
    return value


def _check_delivery_policy(name: str, value: str, fifo: bool, creating: bool) -> str:
    from loosely.core.topics.delivery_policy import parse_topic_delivery_policy

    if not value:
        return value
    parse_topic_delivery_policy(value, in_attributes=creating)
    return stored_topic_delivery_policy(value)


# The order AWS writes a retry policy's members in when it echoes a DeliveryPolicy back.
_RETRY_ORDER = (
    "minDelayTarget",
    "maxDelayTarget",
    "numRetries",
    "numMaxDelayRetries",
    "numNoDelayRetries",
    "numMinDelayRetries",
    "backoffFunction",
)
_TOPIC_HTTP_ORDER = (
    "defaultHealthyRetryPolicy",
    "defaultSicklyRetryPolicy",
    "defaultThrottlePolicy",
    "disableSubscriptionOverrides",
    "defaultRequestPolicy",
)
_SUBSCRIPTION_ORDER = ("healthyRetryPolicy", "sicklyRetryPolicy", "throttlePolicy", "requestPolicy", "guaranteed")


def stored_topic_delivery_policy(text: str) -> str:
    """A valid topic DeliveryPolicy as AWS keeps and returns it.

    AWS re-serializes the document: compact, members in its own order, ``null`` members dropped and
    ``disableSubscriptionOverrides`` (false) always present in the ``http`` section.
    """
    document = json.loads(text)
    http = document.get("http")
    if isinstance(http, dict):
        present = {k: v for k, v in http.items() if v is not None}
        present.setdefault("disableSubscriptionOverrides", False)
        document["http"] = {k: _retry_in_order(k, v) for k, v in _in_order(present, _TOPIC_HTTP_ORDER).items()}
    return compact_json(document)


def stored_subscription_delivery_policy(text: str) -> str:
    """A valid subscription DeliveryPolicy as AWS keeps and returns it: every section, ``null`` if not given."""
    document = json.loads(text)
    stored: dict[str, Any] = {name: document.get(name) for name in _SUBSCRIPTION_ORDER}
    if stored["guaranteed"] is None:
        stored["guaranteed"] = False
    for name, value in document.items():
        stored.setdefault(name, value)
    return compact_json({k: _retry_in_order(k, v) for k, v in stored.items()})


def _in_order(members: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    ranked = sorted(members, key=lambda k: order.index(k) if k in order else len(order))
    return {k: members[k] for k in ranked}


def _retry_in_order(name: str, value: Any) -> Any:
    if name.endswith(("RetryPolicy", "retryPolicy")) and isinstance(value, dict):
        return _in_order(value, _RETRY_ORDER)
    return value


def _one_of(*allowed: str) -> Any:
    def check(name: str, value: str, fifo: bool, creating: bool) -> str:
        if value not in allowed:
            raise invalid(f"{name}")
        return value

    return check


def _check_tracing(name: str, value: str, fifo: bool, creating: bool) -> str:
    if value not in ("PassThrough", "Active"):
        raise invalid("TracingConfig")
    if value == "Active" and fifo:
        raise invalid("TracingConfig Reason: Active tracing is not supported for FIFO topics")
    return value


def _check_archive_policy(name: str, value: str, fifo: bool, creating: bool) -> str:
    return check_archive_policy(value)


def _check_sample_rate(name: str, value: str, fifo: bool, creating: bool) -> str:
    if not _int_in(value, 0, 100):
        raise invalid(f"{name}")
    return value


def _int_in(value: object, low: int, high: int) -> bool:
    try:
        number = int(str(value))
    except ValueError:
        return False
    return low <= number <= high and not isinstance(value, bool)


_TOPIC_CHECKS: dict[str, Any] = {
    "ContentBasedDeduplication": _check_boolean,
    "DisplayName": _check_display_name,
    "Policy": _check_policy,
    "DeliveryPolicy": _check_delivery_policy,
    "SignatureVersion": _one_of("1", "2"),
    "FifoThroughputScope": _one_of("Topic", "MessageGroup"),
    "TracingConfig": _check_tracing,
    "ArchivePolicy": _check_archive_policy,
    **{name: _check_sample_rate for name in _FEEDBACK if name.endswith("SampleRate")},
}


def same_attribute_value(name: str, a: str | None, b: str | None) -> bool:
    """Whether two values of one attribute mean the same (JSON documents compare by content)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    if name in ("Policy", "DeliveryPolicy", "ArchivePolicy", "FilterPolicy", "RedrivePolicy"):
        try:
            return bool(json.loads(a) == json.loads(b))
        except ValueError:
            return False
    return False


# ---- subscriptions ----


def check_protocol_endpoint(protocol: str, endpoint: str | None, topic_fifo: bool) -> str:
    """Validate a Subscribe's protocol and endpoint; return the endpoint."""
    if protocol not in PROTOCOLS:
        raise invalid(f"Amazon SNS does not support this protocol string: {protocol}")
    if protocol in NOT_SERVED_PROTOCOLS:
        raise invalid(f"Protocol Reason: {protocol} subscriptions are not served by this server yet")
    if not endpoint:
        raise invalid("Endpoint Reason: no value for required parameter")
    if topic_fifo and protocol != "sqs":
        raise invalid(f"Invalid protocol type: {protocol}")
    _ENDPOINT_CHECKS[protocol](endpoint, topic_fifo)
    return endpoint


def _check_http(endpoint: str, topic_fifo: bool) -> None:
    if not _URL_HOST.fullmatch(endpoint):
        raise invalid("Endpoint must match the specified protocol")


def _check_https(endpoint: str, topic_fifo: bool) -> None:
    if not endpoint.startswith("https://"):
        raise invalid("Endpoint must match the specified protocol")
    _check_http(endpoint, topic_fifo)


def _check_http_only(endpoint: str, topic_fifo: bool) -> None:
    if not endpoint.startswith("http://"):
        raise invalid("Endpoint must match the specified protocol")
    _check_http(endpoint, topic_fifo)


def _check_email(endpoint: str, topic_fifo: bool) -> None:
    if not _EMAIL.fullmatch(endpoint):
        raise invalid("Email address")


def _check_sms(endpoint: str, topic_fifo: bool) -> None:
    """An E.164 number, whose digits may be grouped by single ``-``, ``.`` or ``/`` (AWS takes ``+12/34-567.890``).

    Recorded AWS responses: localstack's test_sns.snapshot.json, test_subscribe_sms_obscure_phone_number
    (accepted) and test_subscribe_bad_sms (``Invalid SMS endpoint: ...``).
    """
    if not (_SMS_ENDPOINT.fullmatch(endpoint) and _E164.fullmatch("+" + re.sub(r"[^0-9]", "", endpoint))):
        raise InvalidParameter(f"Invalid SMS endpoint: {endpoint}")


def _check_sqs(endpoint: str, topic_fifo: bool) -> None:
    parts = endpoint.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise invalid("SQS endpoint ARN")
    if parts[5].endswith(".fifo") and not topic_fifo:
        raise invalid(
            "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics"
        )


def _check_application(endpoint: str, topic_fifo: bool) -> None:
    parts = endpoint.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5].startswith("endpoint/"):
        raise invalid("ApplicationEndpoint ARN")


_ENDPOINT_CHECKS = {
    "http": _check_http_only,
    "https": _check_https,
    "email": _check_email,
    "email-json": _check_email,
    "sms": _check_sms,
    "sqs": _check_sqs,
    "application": _check_application,
}


def canonical_subscription_attributes(
    attributes: Mapping[str, str], protocol: str, current: Mapping[str, str], subscribing: bool
) -> dict[str, str]:
    """Validate subscription attributes against the subscription's protocol and its other attributes.

    ``current`` holds the stored attributes (empty on Subscribe); a FilterPolicy is checked against the
    scope it will have once ``attributes`` apply, and a scope change re-checks the stored policy.
    """
    prefix = "Attributes Reason: " if subscribing else ""
    out: dict[str, str] = {}
    for name in sorted(attributes):
        if name not in SUBSCRIPTION_SETTABLE:
            raise invalid(f"{prefix}AttributeName")
        out[name] = _subscription_attribute(name, attributes[name], protocol, prefix)
    merged = {**current, **out}
    if "FilterPolicy" in out or "FilterPolicyScope" in out:
        _check_filter_policy(merged, subscribing)
    if out.get("DeliveryPolicy"):
        parse_subscription_delivery_policy(out["DeliveryPolicy"], in_attributes=subscribing)
        out["DeliveryPolicy"] = stored_subscription_delivery_policy(out["DeliveryPolicy"])
    return out


def check_fifo_dead_letter_queue(redrive_policy: str, topic_fifo: bool, endpoint: str) -> None:
    """A FIFO queue subscribed to a FIFO topic needs a FIFO dead-letter queue (a standard queue may have any)."""
    if not (redrive_policy and topic_fifo and endpoint.endswith(".fifo")):
        return
    target = str(json.loads(redrive_policy).get("deadLetterTargetArn", ""))
    if not target.endswith(".fifo"):
        raise invalid("RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a FIFO Topic.")


def _subscription_attribute(name: str, value: str, protocol: str, prefix: str) -> str:
    if name == "RawMessageDelivery":
        if value.lower() not in ("true", "false"):
            raise invalid(f"{prefix}RawMessageDelivery: Invalid value [{value}]. Must be true or false.")
        if value.lower() == "true" and protocol not in RAW_DELIVERY_PROTOCOLS:
            raise invalid(f"Delivery protocol [{protocol}] does not support raw message delivery.")
        return value.lower()
    if name == "FilterPolicyScope":
        try:
            return check_scope(value)
        except InvalidParameter as exc:
            raise invalid(prefix + exc.message.removeprefix("Invalid parameter: ")) from None
    if name == "RedrivePolicy" and value:
        _check_redrive_policy(value, prefix)
    if name == "ReplayPolicy":
        parse_replay_policy(value)  # its shape; the topic's archive and the clock are checked by the caller
    return value


def _check_filter_policy(merged: Mapping[str, str], subscribing: bool) -> None:
    from loosely.core.topics.filter_policy import InvalidFilterPolicy

    scope = check_scope(merged.get("FilterPolicyScope", "MessageAttributes"))
    try:
        parse_filter_policy(merged.get("FilterPolicy", ""), scope)
    except InvalidFilterPolicy as exc:
        raise (exc.in_attributes() if subscribing else exc) from None


def _check_redrive_policy(value: str, prefix: str) -> None:
    try:
        document = json.loads(value)
    except ValueError:
        raise invalid(prefix + unparsable_json("RedrivePolicy", value)) from None
    target = document.get("deadLetterTargetArn") if isinstance(document, dict) else None
    parts = target.split(":") if isinstance(target, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise invalid(f"{prefix}RedrivePolicy: deadLetterTargetArn is an invalid arn")


# ---- messages ----


def check_subject(subject: str | None) -> None:
    if subject is None:
        return
    if not subject or len(subject) >= MAX_SUBJECT_CHARS or _CONTROL.search(subject):
        raise invalid("Subject")


def check_message(message: str) -> None:
    if not message:
        raise invalid("Empty message")


def check_message_structure(structure: str | None, message: str, needs_default: bool = True) -> dict[str, str] | None:
    """With ``MessageStructure=json``: the per-protocol messages (string members only), else None."""
    if structure is None:
        return None
    if structure != "json":
        raise invalid("MessageStructure")
    try:
        document = json.loads(message)
    except ValueError:
        raise invalid("Message Structure - JSON message body failed to parse") from None
    if not isinstance(document, dict):
        raise invalid("Message Structure - JSON message body failed to parse")
    messages = {k: v for k, v in document.items() if isinstance(v, str)}
    if needs_default and "default" not in messages:
        raise invalid("Message Structure - No default entry in JSON message body")
    return messages


def check_message_attributes(attributes: Mapping[str, AttributeValue]) -> None:
    """Names, types and values, in name order so that the first error is stable."""
    for name in sorted(attributes):
        _check_attribute_name(name)
        _check_attribute_value(name, attributes[name])


def _check_attribute_name(name: str) -> None:
    if not name:
        raise InvalidParameterValue("The request must contain non-empty message attribute name.")
    if len(name.encode("utf-8")) > 256:
        raise InvalidParameterValue("Length of message attribute name must be less than 256 bytes.")
    if name.startswith("."):
        raise InvalidParameterValue("Invalid message attribute name starting with character '.' was found.")
    if name.endswith("."):
        raise InvalidParameterValue("Invalid message attribute name ending with character '.' was found.")
    if not _ATTRIBUTE_NAME.fullmatch(name):
        bad = next(c for c in name if not _ATTRIBUTE_NAME.fullmatch(c))
        raise InvalidParameterValue(
            f"Invalid non-alphanumeric character '#x{ord(bad):X}' was found in the message attribute name. "
            "Can only include alphanumeric characters, hyphens, underscores, or dots."
        )
    if ".." in name:
        raise InvalidParameterValue("Message attribute name can not have successive '.' character.")


def _check_attribute_value(name: str, value: AttributeValue) -> None:
    data_type = value.data_type
    if not _ATTRIBUTE_TYPE.fullmatch(data_type):
        raise InvalidParameterValue(
            f"The message attribute '{name}' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String."
        )
    binary = data_type.startswith("Binary")
    given = value.binary_value if binary else value.string_value
    other = value.string_value if binary else value.binary_value
    if given is None and other is not None:
        field = "Binary" if binary else "String"
        raise InvalidParameterValue(f"The message attribute '{name}' with type '{data_type}' must use field '{field}'.")
    if not given:
        raise InvalidParameterValue(
            f"The message attribute '{name}' must contain non-empty message attribute value for message attribute "
            f"type '{data_type}'."
        )
    if data_type.startswith("Number"):
        _check_number(name, str(given))
    elif data_type == "String.Array":
        _check_string_array(name, str(given))


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text.strip()) if _NUMBER.fullmatch(text.strip()) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or abs(number) > Decimal(10) ** 126:
        raise InvalidParameterValue(f"Could not cast message attribute '{name}' value to number.")


def _check_string_array(name: str, text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    valid = isinstance(document, list) and all(
        item is None or isinstance(item, str | int | float | bool) for item in document
    )
    if not valid:
        raise InvalidParameterValue(
            f"The message attribute '{name}' with type 'String.Array' has an invalid value. It must be a JSON "
            "array of strings, numbers, booleans or nulls."
        )


def message_size(message: str, attributes: Mapping[str, AttributeValue]) -> int:
    """What counts against the 256 KB limit: the message and every attribute's name, type and value."""
    size = len(message.encode("utf-8", "surrogatepass"))
    for name, value in attributes.items():
        size += len(name.encode("utf-8")) + len(value.data_type.encode("utf-8"))
        if value.string_value is not None:
            size += len(value.string_value.encode("utf-8", "surrogatepass"))
        if value.binary_value is not None:
            size += len(value.binary_value)
    return size


def check_message_size(message: str, attributes: Mapping[str, AttributeValue]) -> None:
    if message_size(message, attributes) > MAX_MESSAGE_BYTES:
        raise invalid("Message too long")


def check_fifo_id(value: str | None, parameter: str) -> None:
    if value is not None and not _FIFO_ID.fullmatch(value):
        raise invalid(
            f"{parameter} Reason: {parameter} can only include alphanumeric and punctuation characters. "
            "1 to 128 in length."
        )


# ---- batches and tags ----


def check_batch_ids(ids: Sequence[str]) -> None:
    if not ids:
        raise EmptyBatchRequest("The batch request doesn't contain any entries.")
    if len(ids) > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest("The batch request contains more entries than permissible.")
    if len(set(ids)) != len(ids):
        raise BatchEntryIdsNotDistinct("Two or more batch entries in the request have the same Id.")
    for entry_id in ids:
        if len(entry_id) > 80:
            raise InvalidBatchEntryId(f"The Id of a batch entry in the batch request is too long: {entry_id}")
        if not _BATCH_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                f"The Id of a batch entry in the batch request contains an impermissible character: {entry_id}"
            )


def check_tags(tags: Sequence[tuple[str, str]], existing: Mapping[str, str]) -> dict[str, str]:
    """Validate tags to add; return the resource's tags once they are added."""
    keys = [key for key, _ in tags]
    if len(set(keys)) != len(keys):
        raise invalid("Duplicated keys are not allowed.")
    for key, value in tags:
        if not 1 <= len(key) <= 128:
            raise invalid("Tags Reason: Tag keys must be between 1 and 128 characters in length.")
        if len(value) > 256:
            raise invalid("Tags Reason: Tag values must be between 0 and 256 characters in length.")
        if key.lower().startswith("aws:"):
            raise invalid("Tags Reason: Tag keys must not start with 'aws:'.")
    merged = {**existing, **dict(tags)}
    if len(merged) > MAX_TAGS:
        raise TagLimitExceeded("Could not complete request: tag quota of per resource exceeded")
    return merged
