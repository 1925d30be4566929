"""boto3 against a live server, under both wire protocols SQS has spoken: AWS JSON 1.0 and Query.

Expectations come from AWS's documentation and botocore's service models, not from loosely's code:
these tests say what an SDK user sees.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError
from compat_helpers import unique

pytestmark = pytest.mark.compat

ACCOUNT = "000000000000"


def new_queue(sqs: Any, fifo: bool = False, **attributes: str) -> str:
    name = unique() + (".fifo" if fifo else "")
    if fifo:
        attributes.setdefault("FifoQueue", "true")
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5OfMessageAttributes as SQS defines it (and as the Java, .NET and Go SDKs check it)."""

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    digest = hashlib.md5()  # SQS's own digest, not a security measure
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        digest.update(field(name.encode()) + field(data_type.encode()))
        if "BinaryValue" in value:
            digest.update(b"\x02" + field(value["BinaryValue"]))
        else:
            digest.update(b"\x01" + field(value["StringValue"].encode()))
    return digest.hexdigest()


def receive_all(sqs: Any, url: str, expected: int, deadline_s: float = 10, **kwargs: Any) -> list[dict[str, Any]]:
    """Receive until ``expected`` messages arrived or the deadline passed (long polls, no sleeps)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + deadline_s
    while len(got) < expected and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kwargs)
        got.extend(response.get("Messages", []))
    return got


# ---- queues ----


def test_create_get_list_delete_queue(sqs: Any, loosely: Any) -> None:
    name = unique("life")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url == f"{loosely.endpoint}/{ACCOUNT}/{name}"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


def test_create_queue_is_idempotent_but_not_with_other_attributes(sqs: Any) -> None:
    name = unique()
    first = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"] == first
    with pytest.raises(sqs.exceptions.QueueNameExists) as info:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "41"})
    assert error_code(info) == "QueueAlreadyExists"


def test_missing_queue_is_typed_error_with_query_code(sqs: Any) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.get_queue_url(QueueName=unique("missing"))
    assert error_code(info) == "AWS.SimpleQueueService.NonExistentQueue"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invalid_queue_name_is_rejected(sqs: Any) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName="bad name!")
    assert error_code(info) == "InvalidParameterValue"


def test_default_attributes(sqs: Any) -> None:
    url = new_queue(sqs)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{url.rsplit('/', 1)[1]}"
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["MessageRetentionPeriod"] == "345600"
    assert attributes["DelaySeconds"] == "0"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert int(attributes["CreatedTimestamp"]) > 1_600_000_000


def test_set_attributes_and_reject_out_of_range(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert got == {"VisibilityTimeout": "45"}
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert error_code(info) in {"InvalidAttributeValue", "InvalidParameterValue"}


def test_tags(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.tag_queue(QueueUrl=url, Tags={"team": "core", "env": "test"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "core"}


def test_purge_then_purge_again_too_soon(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as info:
        sqs.purge_queue(QueueUrl=url)
    assert error_code(info) == "AWS.SimpleQueueService.PurgeQueueInProgress"


# ---- messages ----


def test_send_receive_delete_with_digests(sqs: Any) -> None:
    url = new_queue(sqs)
    body = "héllo\n\t wörld \U0001f600"
    attributes = {
        "colour": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)

    [message] = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(message["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000

    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    attributes_after = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes_after == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_in_flight_message_is_hidden_until_visibility_changes(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="once")
    [first] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, WaitTimeSeconds=1)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    [again] = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=1)[
        "Messages"
    ]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]


def test_long_poll_returns_as_soon_as_a_message_arrives(sqs: Any, loosely: Any) -> None:
    url = new_queue(sqs)
    sender = loosely.boto3_client("sqs")
    timer = threading.Timer(0.3, lambda: sender.send_message(QueueUrl=url, MessageBody="late"))
    started = time.monotonic()
    timer.start()
    try:
        response = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    finally:
        timer.join()
        sender.close()
    assert [m["Body"] for m in response["Messages"]] == ["late"]
    assert time.monotonic() - started < 3


def test_message_over_one_mebibyte_is_rejected(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_576)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_577)
    assert error_code(info) == "InvalidParameterValue"


def test_invalid_characters_are_rejected(sqs: Any) -> None:
    url = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="bell \x07")
    assert error_code(info) == "InvalidMessageContents"


def test_delayed_message_is_not_received_at_once(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert counts["Attributes"] == {"ApproximateNumberOfMessagesDelayed": "1"}


# ---- batches ----


def test_send_batch_and_partial_delete_failure(sqs: Any) -> None:
    url = new_queue(sqs)
    sent = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "one"}, {"Id": "b-2_", "MessageBody": "two"}]
    )
    assert sorted(e["Id"] for e in sent["Successful"]) == ["a", "b-2_"]
    assert not sent.get("Failed")
    received = receive_all(sqs, url, 2)
    assert sorted(m["Body"] for m in received) == ["one", "two"]

    result = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "ok", "ReceiptHandle": received[0]["ReceiptHandle"]}, {"Id": "bad", "ReceiptHandle": "nope"}],
    )
    assert [e["Id"] for e in result["Successful"]] == ["ok"]
    [failed] = result["Failed"]
    assert failed["Id"] == "bad"
    assert failed["SenderFault"] is True
    assert failed["Code"] == "ReceiptHandleIsInvalid"


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([{"Id": "same", "MessageBody": "1"}, {"Id": "same", "MessageBody": "2"}], "BatchEntryIdsNotDistinct"),
        ([{"Id": str(i), "MessageBody": "m"} for i in range(11)], "TooManyEntriesInBatchRequest"),
        ([], "EmptyBatchRequest"),
        ([{"Id": "bad id!", "MessageBody": "m"}], "InvalidBatchEntryId"),
    ],
)
def test_send_batch_request_errors(sqs: Any, entries: list[dict[str, str]], code: str) -> None:
    url = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert error_code(info) == f"AWS.SimpleQueueService.{code}"
    assert isinstance(info.value, getattr(sqs.exceptions, code))


# ---- FIFO ----


def test_fifo_order_dedup_and_sequence_numbers(sqs: Any) -> None:
    url = new_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    sent = [sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g") for i in range(3)]
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="m0", MessageGroupId="g")
    assert duplicate["MessageId"] == sent[0]["MessageId"]
    sequences = [int(s["SequenceNumber"]) for s in sent]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3

    received = receive_all(sqs, url, 3, AttributeNames=["All"])
    assert [m["Body"] for m in received] == ["m0", "m1", "m2"]
    assert received[0]["Attributes"]["MessageGroupId"] == "g"
    assert received[0]["Attributes"]["SequenceNumber"] == sent[0]["SequenceNumber"]


def test_fifo_group_is_blocked_while_a_message_is_in_flight(sqs: Any) -> None:
    url = new_queue(sqs, fifo=True)
    for i in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="a", MessageDeduplicationId=f"a{i}")
    sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="b", MessageDeduplicationId="b0")

    [first] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    assert first["Body"] == "a0"
    rest = receive_all(sqs, url, 1, deadline_s=3)
    assert [m["Body"] for m in rest] == ["b0"]  # a1 waits behind a0, which is in flight
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["a1"]


def test_fifo_requires_group_id_and_rejects_message_delay(sqs: Any) -> None:
    url = new_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    with pytest.raises(ClientError) as missing:
        sqs.send_message(QueueUrl=url, MessageBody="m")
    assert error_code(missing) == "MissingParameter"
    with pytest.raises(ClientError) as delayed:
        sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g", DelaySeconds=5)
    assert error_code(delayed) == "InvalidParameterValue"


# ---- dead letters ----


def test_message_over_max_receive_count_moves_to_dead_letter_queue(sqs: Any) -> None:
    dlq = new_queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = new_queue(sqs, RedrivePolicy=policy)
    sqs.send_message(QueueUrl=source, MessageBody="poison")

    [first] = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1)["Messages"]
    sqs.change_message_visibility(QueueUrl=source, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1)

    [dead] = receive_all(sqs, dlq, 1, AttributeNames=["All"])
    assert dead["MessageId"] == first["MessageId"]
    assert dead["Body"] == "poison"
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
