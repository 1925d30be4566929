"""SQS messages as AWS answers them, over boto3 in both wire protocols (JSON and Query).

Digests marked "AWS" are values AWS returned for the same input (recorded by other projects' test
suites against real SQS), so they check loosely's encoding byte for byte.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.compat

MIB = 1_048_576
STANDARD_SYSTEM_ATTRIBUTES = {
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
}


@pytest.fixture(params=["json", "query"])
def sqs(request: pytest.FixtureRequest, loosely: Any) -> Iterator[Any]:
    client = loosely.boto3_client("sqs", protocol=request.param)
    yield client
    client.close()


@pytest.fixture
def sqs_json(loosely: Any) -> Iterator[Any]:
    client = loosely.boto3_client("sqs", protocol="json")
    yield client
    client.close()


def new_queue(sqs: Any, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=f"m-{uuid.uuid4().hex[:12]}", Attributes=attributes)["QueueUrl"])


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def receive_one(sqs: Any, url: str, **kwargs: Any) -> dict[str, Any]:
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, **kwargs)["Messages"]
    return dict(message)


# ---- digests ----


def test_md5_of_attributes_matches_aws_for_string_filters(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="0")
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="msg",
        MessageAttributes={
            "Help.Me": {"DataType": "String", "StringValue": "Me"},
            "Hello": {"DataType": "String", "StringValue": "There"},
            "General": {"DataType": "String", "StringValue": "Kenobi"},
        },
    )
    assert (sent["MD5OfMessageBody"], sent["MD5OfMessageAttributes"]) == (
        "6e2baaf3b97dbeef01c0043275f9a0e7",  # AWS
        "4c360f3fdafd970e05fae2f149d997f5",  # AWS
    )
    expected = {
        ("All",): ({"General", "Hello", "Help.Me"}, "4c360f3fdafd970e05fae2f149d997f5"),
        ("*",): ({"General", "Hello", "Help.Me"}, "4c360f3fdafd970e05fae2f149d997f5"),
        (".*",): ({"General", "Hello", "Help.Me"}, "4c360f3fdafd970e05fae2f149d997f5"),
        ("Hello", "General"): ({"General", "Hello"}, "fca026605781cb4126a1e9044df24232"),
        ("Foo", "Hello"): ({"Hello"}, "a311262e065454b75da111d535b8dacd"),
        ("Hel.*",): ({"Hello", "Help.Me"}, "83fee93c1bcd8b9a5a923ffacdc636c7"),
    }
    for names, (attribute_names, digest) in expected.items():
        message = receive_one(sqs, url, MessageAttributeNames=list(names))
        assert set(message.get("MessageAttributes", {})) == attribute_names, names
        assert message["MD5OfMessageAttributes"] == digest, names
    for names in ([], ["Foo", "Help"]):
        message = receive_one(sqs, url, MessageAttributeNames=names)
        assert not message.get("MessageAttributes")
        assert "MD5OfMessageAttributes" not in message


def test_md5_of_binary_and_number_attributes_matches_aws(sqs: Any) -> None:
    url = new_queue(sqs)
    binary = {
        "attr1": {
            "BinaryValue": b"traceparent\x1e00-774062d6c37081a5a0b9b5b88e30627c-2d2482211f6489da-01",
            "DataType": "Binary",
        }
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="test", MessageAttributes=binary)
    assert sent["MD5OfMessageAttributes"] == "8cbe4db156db8a94db8b801b7addb984"  # AWS
    message = receive_one(sqs, url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == binary
    assert message["MD5OfMessageAttributes"] == "8cbe4db156db8a94db8b801b7addb984"


def test_system_attribute_digest_matches_aws_and_leaves_user_digest_alone(sqs: Any) -> None:
    url = new_queue(sqs)
    attributes = {"timestamp": {"StringValue": "1493147359900", "DataType": "Number"}}
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    plain = sqs.send_message(QueueUrl=url, MessageBody="test", MessageAttributes=attributes)
    traced = sqs.send_message(
        QueueUrl=url,
        MessageBody="test",
        MessageAttributes=attributes,
        MessageSystemAttributes={"AWSTraceHeader": {"StringValue": trace, "DataType": "String"}},
    )
    assert plain["MD5OfMessageAttributes"] == traced["MD5OfMessageAttributes"]
    assert "MD5OfMessageSystemAttributes" not in plain
    assert traced["MD5OfMessageSystemAttributes"] == "5ae4d5d7636402d80f4eb6d213245a88"  # AWS
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["AWSTraceHeader"], WaitTimeSeconds=1
    )
    traces = [m.get("Attributes", {}).get("AWSTraceHeader") for m in got["Messages"]]
    assert trace in traces


def test_custom_attribute_types_round_trip(sqs: Any) -> None:
    url = new_queue(sqs)
    attributes = {
        "price": {"DataType": "Number.float", "StringValue": "-1.5e3"},
        "label": {"DataType": "String.custom", "StringValue": "naïve \U0001f600"},
        "blob": {"DataType": "Binary.gif", "BinaryValue": b"\x00GIF\xff"},
        "attr.1øßä": {"DataType": "String", "StringValue": "letters of any script are allowed"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attributes)
    message = receive_one(sqs, url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]


# ---- bodies ----


@pytest.mark.parametrize(
    "body",
    [
        '"&quot;&quot;\r',
        '{\r\n"machineID" : "d357006e26ff47439e1ef894225d4307"}',
        "tab\t\U0001f600\U0010ffff\ue000\ufffd",
    ],
)
def test_body_characters_round_trip_with_digest(sqs: Any, body: str) -> None:
    url = new_queue(sqs)
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    message = receive_one(sqs, url)
    assert message["Body"] == body
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]


@pytest.mark.parametrize("bad", ["\x00", "\x08", "\x13", "\uffff", "\ufffe"])
def test_body_with_invalid_character_is_invalid_message_contents(sqs: Any, bad: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=new_queue(sqs), MessageBody=f"Invalid-{bad}")
    assert error_of(info)[0] == "InvalidMessageContents"


def test_empty_body_is_missing_parameter(sqs: Any) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=new_queue(sqs), MessageBody="")
    assert error_of(info) == ("MissingParameter", "The request must contain the parameter MessageBody.", 400)


def test_body_limit_is_one_mebibyte_including_attributes(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x" * MIB)
    attributes = {"k": {"DataType": "String", "StringValue": "x"}}
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="x" * (MIB - 8 + 1), MessageAttributes=attributes)
    assert error_of(info) == (
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.",
        400,
    )
    small = new_queue(sqs, MaximumMessageSize="1024")
    sqs.send_message(QueueUrl=small, MessageBody="a" * 1024)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=small, MessageBody="a" * 1025)
    assert "Message must be shorter than 1024 bytes." in error_of(info)[1]


# ---- message attributes ----


def test_empty_string_attribute_is_rejected_with_aws_message(sqs: Any) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(
            QueueUrl=new_queue(sqs),
            MessageBody="test",
            MessageAttributes={"ErrorDetails": {"StringValue": "", "DataType": "String"}},
        )
    assert error_of(info) == (
        "InvalidParameterValue",
        "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'.",
        400,
    )


@pytest.mark.parametrize(
    ("name", "value", "data_type"),
    [
        ("aWs.reserved", "v", "String"),
        ("AMAZON.reserved", "v", "String"),
        (".leading", "v", "String"),
        ("trailing.", "v", "String"),
        ("double..dot", "v", "String"),
        ("Invalid-§-attr", "v", "String"),
        ("Invalid-!-attr", "v", "String"),
        ("L" * 257, "v", "String"),
        ("attr", "v", "Invalid"),
        ("attr", "v", "Number." + "L" * 256),
        ("attr", "not a number", "Number"),
        ("attr", "Invalid-\x08,\x0b", "String"),
    ],
)
def test_invalid_message_attribute_is_invalid_parameter_value(sqs: Any, name: str, value: str, data_type: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(
            QueueUrl=new_queue(sqs),
            MessageBody="test",
            MessageAttributes={name: {"StringValue": value, "DataType": data_type}},
        )
    assert error_of(info)[0] == "InvalidParameterValue"


def test_more_than_ten_attributes_are_rejected(sqs: Any) -> None:
    attributes = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=new_queue(sqs), MessageBody="x", MessageAttributes=attributes)
    assert error_of(info)[0] == "InvalidParameterValue"


# ---- receive ----


def test_receive_system_attribute_names(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="0")
    sqs.send_message(QueueUrl=url, MessageBody="msg")
    assert set(receive_one(sqs, url, AttributeNames=["All"])["Attributes"]) == STANDARD_SYSTEM_ATTRIBUTES
    assert set(receive_one(sqs, url, AttributeNames=["SenderId", "SequenceNumber"])["Attributes"]) == {"SenderId"}
    assert "Attributes" not in receive_one(sqs, url)
    stamps = receive_one(sqs, url, AttributeNames=["All"])["Attributes"]
    assert stamps["ApproximateReceiveCount"] == "4"
    assert 0 <= int(stamps["ApproximateFirstReceiveTimestamp"]) - int(stamps["SentTimestamp"]) < 60_000


def test_receive_message_system_attribute_names_parameter(sqs_json: Any) -> None:
    url = new_queue(sqs_json)
    sqs_json.send_message(QueueUrl=url, MessageBody="msg")
    message = receive_one(sqs_json, url, MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"])
    assert set(message["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"MaxNumberOfMessages": 11},
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            {"MaxNumberOfMessages": 0},
            "Value 0 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            {"WaitTimeSeconds": 21},
            "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        ),
    ],
)
def test_receive_parameter_out_of_range(sqs: Any, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.receive_message(QueueUrl=new_queue(sqs), **kwargs)
    assert error_of(info) == ("InvalidParameterValue", message, 400)


def test_long_poll_with_queue_wait_time_returns_when_message_arrives(sqs: Any, loosely: Any) -> None:
    url = new_queue(sqs, ReceiveMessageWaitTimeSeconds="10")
    sender = loosely.boto3_client("sqs")
    started = time.monotonic()
    timer = threading.Timer(0.5, lambda: sender.send_message(QueueUrl=url, MessageBody="late"))
    timer.start()
    try:
        response = sqs.receive_message(QueueUrl=url)
    finally:
        timer.join()
        sender.close()
    assert [m["Body"] for m in response["Messages"]] == ["late"]
    assert time.monotonic() - started < 5


def test_empty_receive_has_no_messages_key(sqs: Any) -> None:
    assert "Messages" not in sqs.receive_message(QueueUrl=new_queue(sqs))


# ---- delay and visibility ----


def test_message_and_queue_delay(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert receive_one(sqs, url)["Body"] == "later"
    delayed = new_queue(sqs, DelaySeconds="1")
    sqs.send_message(QueueUrl=delayed, MessageBody="queue delay")
    counts = sqs.get_queue_attributes(QueueUrl=delayed, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert counts["Attributes"] == {"ApproximateNumberOfMessagesDelayed": "1"}
    sqs.send_message(QueueUrl=delayed, MessageBody="override", DelaySeconds=0)
    assert receive_one(sqs, delayed)["Body"] == "override"
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert error_of(info)[0] == "InvalidParameterValue"


def test_visibility_timeout_zero_and_expiry(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="1")
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = receive_one(sqs, url, VisibilityTimeout=0)
    second = receive_one(sqs, url)
    assert first["ReceiptHandle"] != second["ReceiptHandle"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    third = receive_one(sqs, url, AttributeNames=["ApproximateReceiveCount"])  # after the 1 s timeout
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"


def test_change_visibility_edge_cases(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="foo")
    handle = receive_one(sqs, url)["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=42)
    with pytest.raises(ClientError) as info:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=43_201)
    assert error_of(info)[0] == "InvalidParameterValue"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    with pytest.raises(ClientError) as info:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=42)
    assert error_of(info) == (
        "InvalidParameterValue",
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not "
        "available for visibility timeout change.",
        400,
    )
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as info:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="INVALID", VisibilityTimeout=60)
    assert error_of(info)[0] == "ReceiptHandleIsInvalid"


def test_change_visibility_after_timeout_expired_extends_it(sqs_json: Any) -> None:
    url = new_queue(sqs_json, VisibilityTimeout="1")
    sqs_json.send_message(QueueUrl=url, MessageBody="test")
    handle = receive_one(sqs_json, url)["ReceiptHandle"]
    time.sleep(1.2)
    sqs_json.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=30)
    assert "Messages" not in sqs_json.receive_message(QueueUrl=url)


def test_delete_is_idempotent_and_garbage_handle_is_invalid(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="0")
    sqs.send_message(QueueUrl=url, MessageBody="foo")
    old = receive_one(sqs, url)["ReceiptHandle"]
    current = receive_one(sqs, url)["ReceiptHandle"]
    # AWS: an outdated receipt "succeeds, but the message will not be deleted"; the latest one deletes.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=old)
    assert receive_one(sqs, url)["Body"] == "foo"
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "1"}
    del current
    latest = receive_one(sqs, url)["ReceiptHandle"]
    for _ in range(3):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=latest)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0"}
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as info:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    # Status 404: recorded AWS response, yavosh/pail test/diff/testdata/golden/sqs-visibility.json,
    # step delete-garbage-handle (JSON), and a Query-era capture in spulec/PyQS issue #24.
    assert error_of(info) == (
        "ReceiptHandleIsInvalid",
        'The input receipt handle "garbage" is not a valid receipt handle.',
        404,
    )


def test_delete_with_receipt_whose_timeout_expired_deletes(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="test")
    handle = receive_one(sqs, url, VisibilityTimeout=1)["ReceiptHandle"]
    time.sleep(1.1)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


# ---- batches ----


def test_send_batch_partial_failure_and_no_sequence_numbers(sqs: Any) -> None:
    url = new_queue(sqs)
    entries = [{"Id": str(i), "MessageBody": str(i)} for i in range(9)] + [{"Id": "9", "MessageBody": "\x01"}]
    result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    [failed] = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == ("9", "InvalidMessageContents", True)
    assert sorted(e["Id"] for e in result["Successful"]) == [str(i) for i in range(9)]
    assert all("SequenceNumber" not in e for e in result["Successful"])


def test_send_batch_without_failures_omits_failed_in_json(sqs_json: Any) -> None:
    result = sqs_json.send_message_batch(QueueUrl=new_queue(sqs_json), Entries=[{"Id": "a", "MessageBody": "x"}])
    assert "Failed" not in result  # AWS leaves the empty list out; Java's hasFailed() depends on it
    assert [e["Id"] for e in result["Successful"]] == ["a"]


@pytest.mark.parametrize("operation", ["send", "delete", "change"])
def test_batch_of_twenty_is_too_many_entries(sqs: Any, operation: str) -> None:
    url = new_queue(sqs)
    calls = {
        "send": lambda: sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": f"m-{i}", "MessageBody": "b"} for i in range(20)]
        ),
        "delete": lambda: sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": f"m-{i}", "ReceiptHandle": "h"} for i in range(20)]
        ),
        "change": lambda: sqs.change_message_visibility_batch(
            QueueUrl=url, Entries=[{"Id": f"m-{i}", "ReceiptHandle": "h", "VisibilityTimeout": 1} for i in range(20)]
        ),
    }
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest) as info:
        calls[operation]()
    assert error_of(info) == (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "Maximum number of entries per request are 10. You have sent 20.",
        400,
    )


@pytest.mark.parametrize("entry_id", ["", "testLongId" * 10, "invalid:id"])
def test_delete_batch_invalid_entry_id(sqs: Any, entry_id: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.delete_message_batch(QueueUrl=new_queue(sqs), Entries=[{"Id": entry_id, "ReceiptHandle": "h"}])
    assert error_of(info) == (
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 "
        "letters long.",
        400,
    )


def test_send_batch_total_size_limit(sqs: Any) -> None:
    url = new_queue(sqs)
    attributes = {"k": {"DataType": "String", "StringValue": "x"}}
    entries = [
        {"Id": "1", "MessageBody": "a" * (MIB - 8), "MessageAttributes": attributes},
        {"Id": "2", "MessageBody": "a"},
    ]
    with pytest.raises(sqs.exceptions.BatchRequestTooLong) as info:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert error_of(info) == (
        "AWS.SimpleQueueService.BatchRequestTooLong",
        f"Batch requests cannot be longer than {MIB} bytes. You have sent {MIB + 1} bytes.",
        400,
    )


def test_send_batch_is_not_limited_by_queue_maximum_message_size(sqs: Any) -> None:
    url = new_queue(sqs, MaximumMessageSize="2048")
    attributes = {"k": {"DataType": "String", "StringValue": "x"}}
    result = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "a" * (2048 - 8), "MessageAttributes": attributes},
            {"Id": "2", "MessageBody": "a"},
        ],
    )
    assert sorted(e["Id"] for e in result["Successful"]) == ["1", "2"]
    assert result["Successful"][0]["MD5OfMessageAttributes"] == "a45daa70926828a2f0a1db3418e6feb4"  # AWS


def test_delete_and_change_visibility_batches(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(3)])
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    while len(messages) < 3:
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for m in messages]
        + [{"Id": "bad", "ReceiptHandle": "nope", "VisibilityTimeout": 0}],
    )
    assert len(changed["Successful"]) == 3
    assert [(f["Id"], f["Code"]) for f in changed["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in again]
    )
    assert len(deleted["Successful"]) == len(again)


def test_fair_queue_accepts_group_id_on_standard_queue(sqs_json: Any) -> None:
    url = new_queue(sqs_json)
    sent = sqs_json.send_message(QueueUrl=url, MessageBody="tenant", MessageGroupId="tenant-1")
    assert "SequenceNumber" not in sent
    message = receive_one(sqs_json, url, AttributeNames=["MessageGroupId"])
    assert message["Attributes"] == {"MessageGroupId": "tenant-1"}
