"""Publish and PublishBatch validation against a live server, with AWS's codes and messages.

Limits and wording follow the SNS API reference and responses recorded from real AWS: 256 KiB
including attributes, Subject rules, MessageStructure=json, attribute names/types/values, FIFO
fields, and PublishBatch, where an invalid entry fails the whole request as it does on AWS.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat

MAX = 262_144


@pytest.fixture
def topic(sns: Any) -> str:
    return str(sns.create_topic(Name=f"pub-{uuid.uuid4().hex[:10]}")["TopicArn"])


@pytest.fixture
def fifo_topic(sns: Any) -> str:
    return str(sns.create_topic(Name=f"pub-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoTopic": "true"})["TopicArn"])


def _both(sns: Any, topic: str, **message: Any) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
    """The error of Publish and of a PublishBatch holding the same message beside a valid one."""
    single = raised(sns.publish, TopicArn=topic, **message)
    batch = raised(
        sns.publish_batch,
        TopicArn=topic,
        PublishBatchRequestEntries=[{"Id": "1", **message}, {"Id": "2", "Message": "valid"}],
    )
    return single, batch


def test_publish_target_errors(sns: Any, topic: str) -> None:
    assert raised(sns.publish, TopicArn="randomstring", Message="m") == (
        "InvalidParameter",
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1",
        400,
    )
    assert raised(sns.publish, TopicArn="randomstring:1", Message="m")[1] == (
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 2"
    )
    assert raised(sns.publish, TopicArn="", Message="m")[1] == (
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1"
    )
    assert raised(sns.publish, TopicArn=topic + "-fake", Message="m") == ("NotFound", "Topic does not exist", 404)
    assert raised(sns.publish_batch, TopicArn=topic + "fake", PublishBatchRequestEntries=[{"Id": "1", "Message": "m"}])[
        :2
    ] == ("NotFound", "Topic does not exist")
    assert sns.publish(TargetArn=topic, Message="by target")["MessageId"]


def test_message_and_subject_rules(sns: Any, topic: str) -> None:
    assert raised(sns.publish, TopicArn=topic, Message="") == (
        "InvalidParameter",
        "Invalid parameter: Empty message",
        400,
    )
    assert raised(sns.publish, TopicArn=topic, Message="m", Subject="") == (
        "InvalidParameter",
        "Invalid parameter: Subject",
        400,
    )
    assert raised(sns.publish, TopicArn=topic, Message="m", Subject="line\nbreak")[1] == "Invalid parameter: Subject"
    assert raised(sns.publish, TopicArn=topic, Message="m", Subject="s" * 100)[1] == "Invalid parameter: Subject"
    assert sns.publish(TopicArn=topic, Message="m", Subject="s" * 99)["MessageId"]
    assert sns.publish(TopicArn=topic, Message='ö§a1"_!?,. £$-')["MessageId"]


def test_size_limit_counts_the_attributes(sns: Any, topic: str) -> None:
    attributes = {"attr1": {"DataType": "Number", "StringValue": "1"}}
    at_limit = "a" * (MAX - len("attr1") - len("Number") - len("1"))

    assert raised(sns.publish, TopicArn=topic, Message="This is a test message" * 12000) == (
        "InvalidParameter",
        "Invalid parameter: Message too long",
        400,
    )
    assert raised(sns.publish, TopicArn=topic, Message=at_limit + "a", MessageAttributes=attributes)[1] == (
        "Invalid parameter: Message too long"
    )
    assert sns.publish(TopicArn=topic, Message=at_limit, MessageAttributes=attributes)["MessageId"]
    assert sns.publish(TopicArn=topic, Message="é" * (MAX // 2))["MessageId"]  # bytes, not characters
    assert (
        raised(sns.publish, TopicArn=topic, Message="é" * (MAX // 2) + "a")[1] == "Invalid parameter: Message too long"
    )


def test_batch_size_limit_is_for_all_entries_together(sns: Any, topic: str) -> None:
    attributes = {"attr1": {"DataType": "Number", "StringValue": "1"}}
    full = "a" * (MAX - len("attr1") - len("Number") - len("1"))
    expected = ("BatchRequestTooLong", "The length of all the messages put together is more than the limit.", 400)

    assert (
        raised(
            sns.publish_batch,
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {"Id": "1", "Message": "a" * (MAX // 2)},
                {"Id": "2", "Message": "b" * (1 + MAX // 2)},
            ],
        )
        == expected
    )
    assert (
        raised(
            sns.publish_batch,
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {"Id": "1", "Message": full, "MessageAttributes": attributes},
                {"Id": "2", "Message": "b"},
            ],
        )
        == expected
    )
    done = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "1", "Message": full[:-1], "MessageAttributes": attributes},
            {"Id": "2", "Message": "b"},
        ],
    )
    assert [e["Id"] for e in done["Successful"]] == ["1", "2"] and done["Failed"] == []


def test_message_structure_json(sns: Any, topic: str) -> None:
    def fails(message: str) -> str:
        return raised(sns.publish, TopicArn=topic, Message=message, MessageStructure="json")[1]

    assert fails(json.dumps({"sqs": "Test message"})) == (
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    )
    assert fails('{"default": "This is a default message"} }') == (
        "Invalid parameter: Message Structure - JSON message body failed to parse"
    )
    assert fails(json.dumps({"default": {"object": "test"}})) == (
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    )
    duplicate_keys = '{"default": "This is a default message", "default": "Duplicate"}'
    assert sns.publish(TopicArn=topic, Message=duplicate_keys, MessageStructure="json")["MessageId"]
    assert raised(sns.publish, TopicArn=topic, Message="{}", MessageStructure="xml")[0] == "InvalidParameter"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"attr1": {"DataType": "String", "StringValue": ""}},
            "The message attribute 'attr1' must contain non-empty message attribute value for message attribute "
            "type 'String'.",
        ),
        (
            {"attr1": {"DataType": "String"}},
            "The message attribute 'attr1' must contain non-empty message attribute value for message attribute "
            "type 'String'.",
        ),
        (
            {"attr1": {"DataType": "Binary", "BinaryValue": b""}},
            "The message attribute 'attr1' must contain non-empty message attribute value for message attribute "
            "type 'Binary'.",
        ),
        (
            {"attr1": {"DataType": "String", "BinaryValue": b"123"}},
            "The message attribute 'attr1' with type 'String' must use field 'String'.",
        ),
        (
            {"attr1": {"DataType": "Number", "BinaryValue": b"123"}},
            "The message attribute 'attr1' with type 'Number' must use field 'String'.",
        ),
        (
            {"attr1": {"DataType": "Binary", "StringValue": "123"}},
            "The message attribute 'attr1' with type 'Binary' must use field 'Binary'.",
        ),
        (
            {"attr1": {"DataType": "InvalidType", "StringValue": "123"}},
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String.",
        ),
        (
            {"attr1": {"DataType": "String.", "StringValue": "x"}},
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String.",
        ),
        (
            {"attr1": {"DataType": "Stringprefixed", "StringValue": "x"}},
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String.",
        ),
        (
            {"a" * 257: {"DataType": "String", "StringValue": "123"}},
            "Length of message attribute name must be less than 256 bytes.",
        ),
        (
            {"": {"DataType": "String", "StringValue": "123"}},
            "The request must contain non-empty message attribute name.",
        ),
        (
            {"a^*?": {"DataType": "String", "StringValue": "123"}},
            "Invalid non-alphanumeric character '#x5E' was found in the message attribute name. Can only include "
            "alphanumeric characters, hyphens, underscores, or dots.",
        ),
        (
            {".abc": {"DataType": "String", "StringValue": "123"}},
            "Invalid message attribute name starting with character '.' was found.",
        ),
        (
            {"abc.": {"DataType": "String", "StringValue": "123"}},
            "Invalid message attribute name ending with character '.' was found.",
        ),
        (
            {"a..bc": {"DataType": "String", "StringValue": "123"}},
            "Message attribute name can not have successive '.' character.",
        ),
    ],
)
def test_invalid_message_attributes_fail_publish_and_the_whole_batch(
    raw_sns: Any, topic: str, attributes: dict[str, Any], message: str
) -> None:
    single, batch = _both(raw_sns, topic, Message="test message", MessageAttributes=attributes)

    assert single == ("ParameterValueInvalid", message, 400)
    assert batch == single


def test_attribute_without_a_data_type_is_a_validation_error(raw_sns: Any, topic: str) -> None:
    single, batch = _both(raw_sns, topic, Message="m", MessageAttributes={"attr1": {"StringValue": "value"}})

    assert single == (
        "ValidationError",
        "1 validation error detected: Value null at 'messageAttributes.attr1.member.dataType' failed to satisfy "
        "constraint: Member must not be null",
        400,
    )
    assert batch[1] == (
        "1 validation error detected: Value null at 'publishBatchRequestEntries.1.member.messageAttributes.attr1."
        "member.dataType' failed to satisfy constraint: Member must not be null"
    )


def test_valid_attribute_types_and_values(sns: Any, topic: str) -> None:
    attributes = {
        "s": {"DataType": "String.prefixed", "StringValue": "prefixed-1"},
        "t": {"DataType": "String.  prefixed.", "StringValue": "prefixed-2"},
        "n": {"DataType": "Number", "StringValue": "-1.5E+3"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        "a": {"DataType": "String.Array", "StringValue": '["x", 1, true, null]'},
        "AWS.SNS.MOBILE.APNS.PRIORITY": {"DataType": "String", "StringValue": "5"},
    }

    assert sns.publish(TopicArn=topic, Message="m", MessageAttributes=attributes)["MessageId"]
    for bad in ("abc", "1e309", "NaN", ""):
        code = raised(
            sns.publish,
            TopicArn=topic,
            Message="m",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": bad}},
        )[0]
        assert code == "ParameterValueInvalid", bad
    code = raised(
        sns.publish,
        TopicArn=topic,
        Message="m",
        MessageAttributes={"a": {"DataType": "String.Array", "StringValue": "[{}]"}},
    )[0]
    assert code == "ParameterValueInvalid"


def test_fifo_fields(sns: Any, topic: str, fifo_topic: str) -> None:
    assert raised(sns.publish, TopicArn=fifo_topic, Message="test") == (
        "InvalidParameter",
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
        400,
    )
    assert raised(sns.publish, TopicArn=fifo_topic, Message="test", MessageGroupId="g") == (
        "InvalidParameter",
        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId "
        "provided explicitly",
        400,
    )
    assert raised(sns.publish, TopicArn=topic, Message="test", MessageDeduplicationId="d") == (
        "InvalidParameter",
        "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that "
        "is not valid for this topic type",
        400,
    )
    assert raised(sns.publish, TopicArn=fifo_topic, Message="m", MessageGroupId="g" * 129, MessageDeduplicationId="d")[
        0
    ] == ("InvalidParameter")
    first = sns.publish(TopicArn=fifo_topic, Message="m", MessageGroupId="g", MessageDeduplicationId="d")
    assert len(first["SequenceNumber"]) == 20 and first["SequenceNumber"].isdigit()
    # A standard topic takes a MessageGroupId (fair queues): no error.
    assert "SequenceNumber" not in sns.publish(TopicArn=topic, Message="m", MessageGroupId="g")


def test_fifo_publish_by_target_arn_with_message_structure(sns: Any) -> None:
    arn = sns.create_topic(
        Name=f"pub-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]

    result = sns.publish(
        TargetArn=arn,
        Message=json.dumps({"default": json.dumps({"foo": "bar"})}),
        MessageStructure="json",
        MessageGroupId="123",
    )

    assert result["MessageId"] and result["SequenceNumber"]


def test_fifo_duplicates_return_the_first_message_id(sns: Any) -> None:
    arn = sns.create_topic(
        Name=f"pub-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    entries = [{"Id": str(i), "Message": f"m{i}", "MessageGroupId": "g"} for i in range(3)]

    first = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)["Successful"]
    again = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)["Successful"]

    assert [e["MessageId"] for e in again] == [e["MessageId"] for e in first]
    assert [e["SequenceNumber"] for e in again] == [e["SequenceNumber"] for e in first]
    assert [int(e["SequenceNumber"]) for e in first] == sorted(int(e["SequenceNumber"]) for e in first)


def test_batch_request_level_errors(sns: Any, fifo_topic: str) -> None:
    def fails(entries: list[dict[str, Any]]) -> tuple[str, str, int]:
        return raised(sns.publish_batch, TopicArn=fifo_topic, PublishBatchRequestEntries=entries)

    assert fails([{"Id": "1", "Message": "no group"}]) == (
        "InvalidParameter",
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
        400,
    )
    assert fails([{"Id": f"Id_{i}", "Message": "m"} for i in range(11)]) == (
        "TooManyEntriesInBatchRequest",
        "The batch request contains more entries than permissible.",
        400,
    )
    assert fails([{"Id": "1", "Message": "same"}, {"Id": "1", "Message": "same"}]) == (
        "BatchEntryIdsNotDistinct",
        "Two or more batch entries in the request have the same Id.",
        400,
    )
    assert fails([{"Id": "1", "Message": "m", "MessageGroupId": "g"}])[1] == (
        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId "
        "provided explicitly"
    )
    assert fails([{"Id": "1", "Message": json.dumps({"sqs": "x"}), "MessageStructure": "json"}])[1] == (
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    )
    assert fails([])[0] == "EmptyBatchRequest"
    assert fails([{"Id": "message.id", "Message": "m"}])[0] == "InvalidBatchEntryId"
    assert fails([{"Id": "a" * 81, "Message": "m"}])[0] == "InvalidBatchEntryId"


def test_batch_results(sns: Any, topic: str) -> None:
    done = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {
                "Id": "1",
                "Message": "with attributes",
                "Subject": "S",
                "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "1"}},
            },
            {"Id": "a" * 80, "Message": "longest id"},
            {"Id": "x-_y", "Message": json.dumps({"default": "d", "sqs": "s"}), "MessageStructure": "json"},
        ],
    )

    assert [e["Id"] for e in done["Successful"]] == ["1", "a" * 80, "x-_y"]
    assert all(set(e) == {"Id", "MessageId"} for e in done["Successful"])
    assert len({e["MessageId"] for e in done["Successful"]}) == 3 and done["Failed"] == []
