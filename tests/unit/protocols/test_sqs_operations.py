"""Every SQS action, through botocore's own serializers and parsers, over JSON and Query.

Each test checks both directions: what the handler passed to the queue service (so decoding
and mapping are right) and what botocore parsed from our response (so encoding is right).
"""

from __future__ import annotations

import botocore.session
import pytest

from loosely.core.errors import InvalidBatchEntryId, ReceiptHandleIsInvalid
from loosely.core.queues.models import BatchFailure, BatchResult, MoveTaskView, QueueKey, ReceivedMessage, SentMessage
from loosely.protocols.sqs import SQS

from ._support import Bridge, attr, record

URL = "http://localhost:9324/123456789012/orders"
KEY = QueueKey("123456789012", "eu-west-1", "orders")


def test_operations_table_covers_every_sqs_action_in_botocore() -> None:
    botocore_ops = set(botocore.session.get_session().get_service_model("sqs").operation_names)
    assert {op.name for op in SQS.operations} == botocore_ops
    assert len(SQS.operations) == 23


def test_create_queue_passes_attributes_and_tags_and_returns_url(bridge: Bridge) -> None:
    out = bridge.client.create_queue(QueueName="orders", Attributes={"DelaySeconds": "5"}, tags={"team": "a"})
    assert out["QueueUrl"] == "http://localhost:9324/000000000000/orders"
    key, attributes, tags = bridge.queues.last("create_queue")
    assert key == QueueKey("000000000000", "eu-west-1", "orders")
    assert attributes == {"DelaySeconds": "5"}
    assert tags == {"team": "a"}


def test_get_queue_url_uses_owner_account_when_given(bridge: Bridge) -> None:
    out = bridge.client.get_queue_url(QueueName="orders", QueueOwnerAWSAccountId="123456789012")
    assert out["QueueUrl"] == URL
    assert bridge.queues.last("get_queue") == (KEY,)


def test_delete_queue_names_queue_from_url(bridge: Bridge) -> None:
    bridge.client.delete_queue(QueueUrl=URL)
    assert bridge.queues.last("delete_queue") == (KEY,)


def test_list_queues_passes_paging_and_returns_urls(bridge: Bridge) -> None:
    bridge.queues.results["list_queues"] = ([record(KEY)], "next-page")
    out = bridge.client.list_queues(QueueNamePrefix="or", MaxResults=5, NextToken="tok")
    assert out["QueueUrls"] == [URL]
    assert out["NextToken"] == "next-page"
    assert bridge.queues.last("list_queues") == ("000000000000", "eu-west-1", "or", 5, "tok")


def test_list_queues_empty_has_no_urls(bridge: Bridge) -> None:
    out = bridge.client.list_queues()
    assert "QueueUrls" not in out


def test_get_queue_attributes_round_trips_names_and_values(bridge: Bridge) -> None:
    bridge.queues.results["get_queue_attributes"] = {"VisibilityTimeout": "30", "QueueArn": "arn:x"}
    out = bridge.client.get_queue_attributes(QueueUrl=URL, AttributeNames=["VisibilityTimeout", "QueueArn"])
    assert out["Attributes"] == {"VisibilityTimeout": "30", "QueueArn": "arn:x"}
    assert bridge.queues.last("get_queue_attributes") == (KEY, ["VisibilityTimeout", "QueueArn"])


def test_set_queue_attributes_passes_map(bridge: Bridge) -> None:
    bridge.client.set_queue_attributes(QueueUrl=URL, Attributes={"Policy": '{"a": "<&>"}', "DelaySeconds": "1"})
    assert bridge.queues.last("set_queue_attributes") == (KEY, {"Policy": '{"a": "<&>"}', "DelaySeconds": "1"})


def test_purge_queue(bridge: Bridge) -> None:
    bridge.client.purge_queue(QueueUrl=URL)
    assert bridge.queues.last("purge_queue") == (KEY,)


def test_tag_untag_list_tags(bridge: Bridge) -> None:
    bridge.client.tag_queue(QueueUrl=URL, Tags={"k1": "v1", "k2": ""})
    bridge.client.untag_queue(QueueUrl=URL, TagKeys=["k1", "k2"])
    bridge.queues.results["list_queue_tags"] = {"k3": "v3"}
    out = bridge.client.list_queue_tags(QueueUrl=URL)
    assert bridge.queues.last("tag_queue") == (KEY, {"k1": "v1", "k2": ""})
    assert bridge.queues.last("untag_queue") == (KEY, ["k1", "k2"])
    assert out["Tags"] == {"k3": "v3"}


def test_add_and_remove_permission(bridge: Bridge) -> None:
    bridge.client.add_permission(
        QueueUrl=URL, Label="l1", AWSAccountIds=["111111111111", "222222222222"], Actions=["SendMessage", "*"]
    )
    bridge.client.remove_permission(QueueUrl=URL, Label="l1")
    assert bridge.queues.last("add_permission") == (KEY, "l1", ["111111111111", "222222222222"], ["SendMessage", "*"])
    assert bridge.queues.last("remove_permission") == (KEY, "l1")


def test_list_dead_letter_source_queues_returns_lowercase_member(bridge: Bridge) -> None:
    bridge.queues.results["list_dead_letter_source_queues"] = ([record(KEY)], None)
    out = bridge.client.list_dead_letter_source_queues(QueueUrl=URL, MaxResults=3)
    assert out["queueUrls"] == [URL]
    assert bridge.queues.last("list_dead_letter_source_queues") == (KEY, 3, None)


def test_send_message_converts_attributes_and_returns_digests(bridge: Bridge) -> None:
    bridge.queues.results["send_message"] = SentMessage(
        message_id="id-1", md5_of_body="a" * 32, md5_of_message_attributes="b" * 32, sequence_number="100"
    )
    out = bridge.client.send_message(
        QueueUrl=URL,
        MessageBody="hello\r\nworld",
        DelaySeconds=3,
        MessageAttributes={
            "s": {"DataType": "String", "StringValue": "x"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
            "n": {"DataType": "Number.int", "StringValue": "12"},
        },
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}},
        MessageGroupId="g",
        MessageDeduplicationId="d",
    )
    key, request, sender = bridge.queues.last("send_message")
    assert key == KEY
    assert request.body == "hello\r\nworld"
    assert request.delay_s == 3
    assert request.message_attributes == {
        "s": attr("String", "x"),
        "b": attr("Binary", binary=b"\x00\xff"),
        "n": attr("Number.int", "12"),
    }
    assert request.system_attributes == {"AWSTraceHeader": attr("String", "Root=1")}
    assert (request.group_id, request.deduplication_id) == ("g", "d")
    assert sender == "AKIDEXAMPLE"
    assert out["MessageId"] == "id-1"
    assert out["MD5OfMessageAttributes"] == "b" * 32
    assert out["SequenceNumber"] == "100"


def test_send_message_batch_reports_success_and_failure(bridge: Bridge) -> None:
    bridge.queues.results["send_message_batch"] = BatchResult(
        successful=[("a", SentMessage("m-a", "c" * 32))],
        failed=[BatchFailure("b", InvalidBatchEntryId("bad id"))],
    )
    out = bridge.client.send_message_batch(
        QueueUrl=URL,
        Entries=[
            {"Id": "a", "MessageBody": "one", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 2},
        ],
    )
    _, entries, _ = bridge.queues.last("send_message_batch")
    assert [e[0] for e in entries] == ["a", "b"]
    assert entries[0][1].message_attributes == {"k": attr("String", "v")}
    assert entries[1][1].delay_s == 2
    assert out["Successful"] == [{"Id": "a", "MessageId": "m-a", "MD5OfMessageBody": "c" * 32}]
    assert out["Failed"] == [
        {"Id": "b", "SenderFault": True, "Code": "AWS.SimpleQueueService.InvalidBatchEntryId", "Message": "bad id"}
    ]


def test_receive_message_maps_request_and_messages(bridge: Bridge) -> None:
    bridge.queues.results["receive_message"] = [
        ReceivedMessage(
            message_id="m1",
            receipt_handle="rh1",
            body="<b>&\r",
            md5_of_body="d" * 32,
            attributes={"SentTimestamp": "1", "ApproximateReceiveCount": "2"},
            message_attributes={"bin": attr("Binary", binary=b"\x01"), "s": attr("String", "é")},
            md5_of_message_attributes="e" * 32,
        ),
        ReceivedMessage(message_id="m2", receipt_handle="rh2", body="x", md5_of_body="f" * 32),
    ]
    # The Query-era model predates MessageSystemAttributeNames: send both names there the old way.
    names = {"MessageSystemAttributeNames": ["ApproximateReceiveCount"]}
    if (
        "MessageSystemAttributeNames"
        not in bridge.client.meta.service_model.operation_model("ReceiveMessage").input_shape.members
    ):
        names = {}
    out = bridge.client.receive_message(
        QueueUrl=URL,
        AttributeNames=["SentTimestamp"] + ([] if names else ["ApproximateReceiveCount"]),
        **names,
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        WaitTimeSeconds=20,
    )
    _, request = bridge.queues.last("receive_message")
    assert request.max_messages == 10
    assert (request.visibility_timeout_s, request.wait_time_s) == (0, 20)
    assert set(request.attribute_names) == {"SentTimestamp", "ApproximateReceiveCount"}
    assert request.message_attribute_names == ("All",)
    first, second = out["Messages"]
    assert first["Body"] == "<b>&\r"
    assert first["Attributes"] == {"SentTimestamp": "1", "ApproximateReceiveCount": "2"}
    assert first["MessageAttributes"] == {
        "bin": {"DataType": "Binary", "BinaryValue": b"\x01"},
        "s": {"DataType": "String", "StringValue": "é"},
    }
    assert second == {"MessageId": "m2", "ReceiptHandle": "rh2", "MD5OfBody": "f" * 32, "Body": "x"}


def test_receive_message_defaults_to_one_message_and_empty_result(bridge: Bridge) -> None:
    out = bridge.client.receive_message(QueueUrl=URL)
    assert "Messages" not in out
    assert bridge.queues.last("receive_message")[1].max_messages == 1


def test_delete_message_and_batch(bridge: Bridge) -> None:
    bridge.client.delete_message(QueueUrl=URL, ReceiptHandle="rh")
    bridge.queues.results["delete_message_batch"] = BatchResult(
        successful=[("1", None)], failed=[BatchFailure("2", ReceiptHandleIsInvalid("gone"))]
    )
    out = bridge.client.delete_message_batch(
        QueueUrl=URL, Entries=[{"Id": "1", "ReceiptHandle": "a"}, {"Id": "2", "ReceiptHandle": "b"}]
    )
    assert bridge.queues.last("delete_message") == (KEY, "rh")
    assert bridge.queues.last("delete_message_batch") == (KEY, [("1", "a"), ("2", "b")])
    assert out["Successful"] == [{"Id": "1"}]
    assert out["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"


def test_delete_message_batch_all_successful_still_parses_failed_as_empty(bridge: Bridge) -> None:
    out = bridge.client.delete_message_batch(QueueUrl=URL, Entries=[{"Id": "1", "ReceiptHandle": "a"}])
    assert out["Successful"] == [{"Id": "1"}]
    assert out.get("Failed", []) == []


def test_change_message_visibility_and_batch(bridge: Bridge) -> None:
    bridge.client.change_message_visibility(QueueUrl=URL, ReceiptHandle="rh", VisibilityTimeout=0)
    out = bridge.client.change_message_visibility_batch(
        QueueUrl=URL, Entries=[{"Id": "1", "ReceiptHandle": "a", "VisibilityTimeout": 60}]
    )
    assert bridge.queues.last("change_message_visibility") == (KEY, "rh", 0)
    assert bridge.queues.last("change_message_visibility_batch") == (KEY, [("1", "a", 60)])
    assert out["Successful"] == [{"Id": "1"}]


def test_message_move_tasks(bridge: Bridge) -> None:
    dlq = "arn:aws:sqs:eu-west-1:123456789012:dlq"
    handle = bridge.client.start_message_move_task(SourceArn=dlq, MaxNumberOfMessagesPerSecond=5)["TaskHandle"]
    bridge.queues.results["cancel_message_move_task"] = 7
    moved = bridge.client.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    bridge.queues.results["list_message_move_tasks"] = [
        MoveTaskView(None, "COMPLETED", dlq, None, None, 9, 9, 1_700_000_000_000)
    ]
    listed = bridge.client.list_message_move_tasks(SourceArn=dlq, MaxResults=10)["Results"]
    assert bridge.queues.last("start_message_move_task") == ("000000000000", dlq, None, 5)
    assert (handle, moved) == ("h", 7)
    assert listed == [
        {
            "Status": "COMPLETED",
            "SourceArn": dlq,
            "ApproximateNumberOfMessagesMoved": 9,
            "ApproximateNumberOfMessagesToMove": 9,
            "StartedTimestamp": 1_700_000_000_000,
        }
    ]


@pytest.mark.parametrize("access_key", ["123456789012"])
def test_twelve_digit_access_key_names_the_account(protocol: str, access_key: str, bridge_factory) -> None:
    bridge = bridge_factory(protocol, access_key=access_key)
    out = bridge.client.create_queue(QueueName="q")
    assert out["QueueUrl"] == "http://localhost:9324/123456789012/q"
    assert bridge.queues.last("create_queue")[0].account_id == "123456789012"
