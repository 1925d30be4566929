"""Queue names and queue attributes: names, ranges, canonical values, SSE and redrive policies."""

from __future__ import annotations

import json

import pytest

from loosely.core.errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue
from loosely.core.queues import attributes as attrs

ARN = "arn:aws:sqs:us-east-1:000000000000:dlq"


@pytest.mark.parametrize(
    ("name", "fifo", "ok"),
    [
        ("q", False, True),
        ("a" * 80, False, True),
        ("a" * 81, False, False),
        ("with.dot", False, False),
        ("x.fifo", False, False),
        ("", False, False),
        ("q.fifo", True, True),
        ("a" * 75 + ".fifo", True, True),
        ("a" * 76 + ".fifo", True, False),
        ("q", True, False),
        (".fifo", True, False),
    ],
)
def test_validate_queue_name(name: str, fifo: bool, ok: bool) -> None:
    if ok:
        attrs.validate_queue_name(name, fifo)
    else:
        with pytest.raises(InvalidParameterValue, match="1 to 80 in length"):
            attrs.validate_queue_name(name, fifo)


def test_requests_fifo_values() -> None:
    assert attrs.requests_fifo({"FifoQueue": "TRUE"})
    assert not attrs.requests_fifo({})
    with pytest.raises(InvalidAttributeName, match=r"^Unknown Attribute FifoQueue\.$"):
        attrs.requests_fifo({"FifoQueue": "false"})
    with pytest.raises(InvalidAttributeValue):
        attrs.requests_fifo({"FifoQueue": "yes"})


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("VisibilityTimeout", 0, 43200),
        ("MaximumMessageSize", 1024, 1048576),
        ("MessageRetentionPeriod", 60, 1209600),
        ("DelaySeconds", 0, 900),
        ("ReceiveMessageWaitTimeSeconds", 0, 20),
        ("KmsDataKeyReusePeriodSeconds", 60, 86400),
    ],
)
def test_canonicalize_integer_ranges(name: str, low: int, high: int) -> None:
    assert attrs.canonicalize({name: str(low)}, fifo=False, creating=True) == {name: str(low)}
    assert attrs.canonicalize({name: str(high)}, fifo=False, creating=True) == {name: str(high)}
    for bad in (str(low - 1), str(high + 1), "abc", "", "1.5"):
        with pytest.raises(InvalidAttributeValue) as caught:
            attrs.canonicalize({name: bad}, fifo=False, creating=True)
        assert caught.value.message == f"Invalid value for the parameter {name}."


def test_canonicalize_unknown_and_read_only_names() -> None:
    for name in ("Nope", "All", "QueueArn", "ApproximateNumberOfMessages"):
        with pytest.raises(InvalidAttributeName) as caught:
            attrs.canonicalize({name: "1"}, fifo=False, creating=True)
        assert caught.value.message == f"Unknown Attribute {name}."


def test_canonicalize_fifo_only_attributes_on_standard() -> None:
    with pytest.raises(InvalidAttributeName, match=r"^Unknown Attribute ContentBasedDeduplication\.$"):
        attrs.canonicalize({"ContentBasedDeduplication": "true"}, fifo=False, creating=True)
    with pytest.raises(InvalidAttributeName, match="You can specify the DeduplicationScope only when FifoQueue"):
        attrs.canonicalize({"DeduplicationScope": "queue"}, fifo=False, creating=True)


def test_canonicalize_fifo_queue_cannot_change_type() -> None:
    with pytest.raises(InvalidAttributeValue, match="Modifying queue type is not supported"):
        attrs.canonicalize({"FifoQueue": "false"}, fifo=True, creating=False)
    assert attrs.canonicalize({"FifoQueue": "True"}, fifo=True, creating=False) == {"FifoQueue": "true"}


def test_canonicalize_booleans_and_choices() -> None:
    result = attrs.canonicalize(
        {"ContentBasedDeduplication": "TRUE", "DeduplicationScope": "messageGroup"}, fifo=True, creating=True
    )
    assert result == {"ContentBasedDeduplication": "true", "DeduplicationScope": "messageGroup"}
    with pytest.raises(InvalidAttributeValue):
        attrs.canonicalize({"FifoThroughputLimit": "perGroup"}, fifo=True, creating=True)


def test_canonicalize_policy_must_be_json_object() -> None:
    assert attrs.canonicalize({"Policy": ""}, fifo=False, creating=True) == {"Policy": ""}
    for bad in ("not json", "[1]"):
        with pytest.raises(InvalidAttributeValue, match="parameter Policy"):
            attrs.canonicalize({"Policy": bad}, fifo=False, creating=True)


def test_redrive_policy_canonical_form() -> None:
    text = json.dumps({"maxReceiveCount": "5", "deadLetterTargetArn": ARN})
    result = attrs.canonicalize({"RedrivePolicy": text}, fifo=False, creating=True)
    assert result["RedrivePolicy"] == '{"deadLetterTargetArn":"' + ARN + '","maxReceiveCount":5}'


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"deadLetterTargetArn": "dummy", "maxReceiveCount": 42}', "Invalid value for deadLetterTargetArn."),
        ('{"maxReceiveCount": 4}', "Redrive policy does not contain mandatory attribute: deadLetterTargetArn."),
        (
            '{"deadLetterTargetArn": "' + ARN + '"}',
            "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
        ),
        (
            '{"deadLetterTargetArn": "' + ARN + '", "maxReceiveCount": 0}',
            "Invalid value for maxReceiveCount: 0, valid values are from 1 to 1000 both inclusive.",
        ),
        ('{"deadLetterTargetArn": "' + ARN + '", "maxReceiveCount": 1001}', "Invalid value for maxReceiveCount: 1001"),
        ("[]", "Redrive policy is not a valid JSON map."),
    ],
)
def test_redrive_policy_errors(document: str, reason: str) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        attrs.parse_redrive_policy(document)
    assert caught.value.message.startswith(f"Value {document} for parameter RedrivePolicy is invalid. Reason: {reason}")


def test_redrive_allow_policy_forms() -> None:
    by_queue = attrs.parse_redrive_allow_policy(json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [ARN]}))
    assert by_queue.allows(ARN)
    assert not by_queue.allows(ARN + "x")
    assert not attrs.parse_redrive_allow_policy('{"redrivePermission": "denyAll"}').allows(ARN)
    assert attrs.stored_redrive_allow_policy({}).allows(ARN)
    for bad in (
        '{"redrivePermission": "byQueue"}',
        '{"redrivePermission": "allowAll", "sourceQueueArns": []}',
        '{"redrivePermission": "maybe"}',
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [ARN] * 11}),
    ):
        with pytest.raises(InvalidParameterValue, match="parameter RedriveAllowPolicy is invalid"):
            attrs.parse_redrive_allow_policy(bad)


def test_defaults_standard_and_fifo() -> None:
    standard = attrs.defaults(fifo=False)
    assert standard == {
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
    }
    fifo = attrs.defaults(fifo=True)
    assert fifo["FifoQueue"] == "true"
    assert fifo["DeduplicationScope"] == "queue"
    assert fifo["FifoThroughputLimit"] == "perQueue"
    assert fifo["ContentBasedDeduplication"] == "false"


def test_merge_kms_turns_sqs_sse_off_and_back() -> None:
    with_kms = attrs.merge(attrs.defaults(False), {"KmsMasterKeyId": "alias/aws/sqs"})
    assert with_kms["SqsManagedSseEnabled"] == "false"
    assert with_kms["KmsDataKeyReusePeriodSeconds"] == "300"
    back = attrs.merge(with_kms, {"SqsManagedSseEnabled": "true"})
    assert "KmsMasterKeyId" not in back
    assert back["SqsManagedSseEnabled"] == "true"


def test_merge_both_sse_kinds_rejected() -> None:
    with pytest.raises(InvalidAttributeName, match="one type of server-side encryption"):
        attrs.merge({}, {"KmsMasterKeyId": "k", "SqsManagedSseEnabled": "true"})


def test_merge_empty_removes_policy() -> None:
    assert "Policy" not in attrs.merge({"Policy": "{}"}, {"Policy": ""})


def test_merge_per_group_throughput_needs_group_scope() -> None:
    base = attrs.defaults(fifo=True)
    attrs.merge(base, {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"})
    with pytest.raises(InvalidAttributeValue, match="FifoThroughputLimit"):
        attrs.merge(base, {"FifoThroughputLimit": "perMessageGroupId"})


def test_first_difference_compares_only_requested() -> None:
    existing = attrs.merge(attrs.defaults(False), {"DelaySeconds": "5"})
    assert attrs.first_difference(existing, {}, fifo=False) is None
    assert attrs.first_difference(existing, {"DelaySeconds": "5", "VisibilityTimeout": "30"}, fifo=False) is None
    assert attrs.first_difference(existing, {"DelaySeconds": "6"}, fifo=False) == "DelaySeconds"
    assert attrs.first_difference(existing, {"Policy": ""}, fifo=False) is None
