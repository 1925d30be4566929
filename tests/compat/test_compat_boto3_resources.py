"""boto3's resource layer (``sqs.Queue``, ``sqs.Message``, ``sns.Topic``, ...) against a live server.

Resources are how much application code uses SQS and SNS. They add what a client alone does not:
identifiers taken from answers (a queue's URL, a message's receipt handle and queue URL), lazy
loads of attributes, collections that page through list operations, and actions that fill in
their own parameters. Each test reads back through the resource what the server stored, so a
wrong shape, member name or page token fails here even where the client layer would not look.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from compat_helpers import unique

pytestmark = pytest.mark.compat

DEADLINE_S = 10.0


@pytest.fixture(params=("json", "query"))
def sqs(request: pytest.FixtureRequest, loosely: Any) -> Iterator[Any]:
    resource = loosely.boto3_resource("sqs", protocol=request.param)
    yield resource
    resource.meta.client.close()


@pytest.fixture
def sns(loosely: Any) -> Iterator[Any]:
    resource = loosely.boto3_resource("sns", protocol="query")
    yield resource
    resource.meta.client.close()


def _receive(queue: Any, count: int, system: list[str] | None = None, **options: Any) -> list[Any]:
    """Messages received from ``queue`` until ``count`` have arrived (long polls, with a deadline).

    ``system``: the system attributes to ask for, under the member name of the client's model
    (``MessageSystemAttributeNames`` now, ``AttributeNames`` in the Query-era model).
    """
    if system is not None:
        members = queue.meta.client.meta.service_model.operation_model("ReceiveMessage").input_shape.members
        current = "MessageSystemAttributeNames" in members
        options["MessageSystemAttributeNames" if current else "AttributeNames"] = system
    got: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        got += queue.receive_messages(MaxNumberOfMessages=min(10, count - len(got)), WaitTimeSeconds=1, **options)
    assert len(got) == count, f"{len(got)} of {count} messages arrived"
    return got


# -- SQS ------------------------------------------------------------------------------------------


def test_queue_identifiers_attributes_and_lookup(sqs: Any) -> None:
    name = unique("res")
    queue = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})
    assert queue.url.endswith(f"/{name}")
    assert queue.attributes["VisibilityTimeout"] == "45"  # a lazy GetQueueAttributes(All)
    assert queue.attributes["QueueArn"].endswith(f":{name}")

    same = sqs.get_queue_by_name(QueueName=name)
    assert same.url == queue.url and same == queue

    queue.set_attributes(Attributes={"DelaySeconds": "3"})
    queue.reload()
    assert queue.attributes["DelaySeconds"] == "3"
    queue.delete()
    with pytest.raises(ClientError) as missing:
        sqs.get_queue_by_name(QueueName=name)
    assert missing.value.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def test_queues_collection_pages_through_list_queues(sqs: Any) -> None:
    prefix = unique("page")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}").url for i in range(5)}
    pages = [list(page) for page in sqs.queues.filter(QueueNamePrefix=prefix).page_size(2).pages()]
    assert [len(page) for page in pages] == [2, 2, 1]  # MaxResults 2, then NextToken to the rest
    listed = [queue for page in pages for queue in page]
    assert {q.url for q in listed} == urls
    for queue in listed:
        queue.delete()


def test_messages_round_trip_as_message_resources(sqs: Any) -> None:
    queue = sqs.create_queue(QueueName=unique("res"))
    body = "héllo, resources"
    attributes = {
        "Kind": {"DataType": "String", "StringValue": "greeting"},
        "Count": {"DataType": "Number", "StringValue": "3"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    }
    sent = queue.send_message(MessageBody=body, MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    batch = queue.send_messages(Entries=[{"Id": str(i), "MessageBody": f"batch {i}"} for i in range(3)])
    assert sorted(e["Id"] for e in batch["Successful"]) == ["0", "1", "2"]
    assert "Failed" not in batch or batch["Failed"] == []

    messages = _receive(queue, 4, MessageAttributeNames=["All"], system=["ApproximateReceiveCount", "SentTimestamp"])
    by_body = {m.body: m for m in messages}
    assert set(by_body) == {body, "batch 0", "batch 1", "batch 2"}
    first = by_body[body]
    assert first.queue_url == queue.url  # the resource's identifiers come from the request and the answer
    assert first.receipt_handle
    assert first.message_id == sent["MessageId"]
    assert first.message_attributes == {
        "Kind": {"DataType": "String", "StringValue": "greeting"},
        "Count": {"DataType": "Number", "StringValue": "3"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    }
    assert first.attributes["ApproximateReceiveCount"] == "1"
    assert int(first.attributes["SentTimestamp"]) > 0
    assert first.md5_of_body == sent["MD5OfMessageBody"]
    assert first.md5_of_message_attributes == sent["MD5OfMessageAttributes"]

    first.change_visibility(VisibilityTimeout=0)  # back at once, received a second time
    again = _receive(queue, 1, system=["ApproximateReceiveCount"])[0]
    assert again.body == body and again.attributes["ApproximateReceiveCount"] == "2"
    again.delete()

    rest = [by_body[f"batch {i}"] for i in range(3)]
    handles = [{"Id": f"m{i}", "ReceiptHandle": m.receipt_handle} for i, m in enumerate(rest)]
    changed = queue.change_message_visibility_batch(Entries=[{**h, "VisibilityTimeout": 30} for h in handles])
    assert sorted(e["Id"] for e in changed["Successful"]) == ["m0", "m1", "m2"]
    deleted = queue.delete_messages(Entries=handles)
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["m0", "m1", "m2"]
    queue.reload()
    assert queue.attributes["ApproximateNumberOfMessages"] == "0"
    assert queue.attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    queue.delete()


def test_message_resource_made_from_identifiers(sqs: Any) -> None:
    """``sqs.Message(url, handle)``: an application that kept only the two identifiers can still delete."""
    queue = sqs.create_queue(QueueName=unique("res"))
    queue.send_message(MessageBody="kept identifiers")
    received = _receive(queue, 1)[0]
    sqs.Message(queue.url, received.receipt_handle).delete()
    queue.reload()
    assert queue.attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert queue.receive_messages(WaitTimeSeconds=0) == []
    queue.delete()


def test_dead_letter_source_queues_and_purge(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName=unique("dlq"))
    policy = json.dumps({"deadLetterTargetArn": dlq.attributes["QueueArn"], "maxReceiveCount": "1"})
    sources = [sqs.create_queue(QueueName=unique("src"), Attributes={"RedrivePolicy": policy}) for _ in range(2)]
    assert {q.url for q in dlq.dead_letter_source_queues.all()} == {q.url for q in sources}

    source = sources[0]
    source.send_message(MessageBody="to the dead letters")
    _receive(source, 1)[0].change_visibility(VisibilityTimeout=0)
    assert source.receive_messages(WaitTimeSeconds=0) == []  # this receive moves it: received once already
    dead = _receive(dlq, 1, system=["DeadLetterQueueSourceArn"])[0]
    assert dead.body == "to the dead letters"
    assert dead.attributes["DeadLetterQueueSourceArn"] == source.attributes["QueueArn"]
    dead.change_visibility(VisibilityTimeout=0)

    dlq.purge()
    dlq.reload()
    assert dlq.attributes["ApproximateNumberOfMessages"] == "0"
    for queue in (*sources, dlq):
        queue.delete()


def test_fifo_queue_resource(sqs: Any) -> None:
    queue = sqs.create_queue(
        QueueName=f"{unique('fifo')}.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )
    for i in range(3):
        sent = queue.send_message(MessageBody=f"step {i}", MessageGroupId="g")
        assert sent["SequenceNumber"]
    duplicate = queue.send_message(MessageBody="step 0", MessageGroupId="g")
    messages = _receive(queue, 3, system=["MessageGroupId", "SequenceNumber"])
    assert [m.body for m in messages] == ["step 0", "step 1", "step 2"]
    assert messages[0].message_id == duplicate["MessageId"]  # deduplicated: the first send's id
    assert {m.attributes["MessageGroupId"] for m in messages} == {"g"}
    for message in messages:
        message.delete()
    queue.delete()


def test_queue_permissions_through_the_resource(sqs: Any) -> None:
    queue = sqs.create_queue(QueueName=unique("perm"))
    queue.add_permission(Label="readers", AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"])
    queue.reload()
    statement = json.loads(queue.attributes["Policy"])["Statement"][0]
    assert statement["Sid"] == "readers"
    assert statement["Action"] == "SQS:ReceiveMessage"
    queue.remove_permission(Label="readers")
    queue.reload()
    assert "Policy" not in queue.attributes or json.loads(queue.attributes["Policy"])["Statement"] == []
    queue.delete()


# -- SNS ------------------------------------------------------------------------------------------


def test_topic_subscription_and_publish(sns: Any, loosely: Any) -> None:
    sqs = loosely.boto3_resource("sqs")
    topic = sns.create_topic(Name=unique("topic"), Attributes={"DisplayName": "Resources"})
    assert topic.attributes["DisplayName"] == "Resources"  # a lazy GetTopicAttributes
    queue = sqs.create_queue(QueueName=unique("sub"))
    subscription = topic.subscribe(Protocol="sqs", Endpoint=queue.attributes["QueueArn"], ReturnSubscriptionArn=True)
    assert subscription.arn.startswith(f"{topic.arn}:")
    assert subscription.attributes["Endpoint"] == queue.attributes["QueueArn"]
    assert [s.arn for s in topic.subscriptions.all()] == [subscription.arn]
    assert subscription.arn in {s.arn for s in sns.subscriptions.all()}

    subscription.set_attributes(AttributeName="RawMessageDelivery", AttributeValue="true")
    subscription.reload()
    assert subscription.attributes["RawMessageDelivery"] == "true"

    published = topic.publish(
        Message="through the topic resource", MessageAttributes={"Kind": {"DataType": "String", "StringValue": "raw"}}
    )
    assert published["MessageId"]
    message = _receive(queue, 1, MessageAttributeNames=["All"])[0]
    assert message.body == "through the topic resource"
    assert message.message_attributes == {"Kind": {"DataType": "String", "StringValue": "raw"}}
    message.delete()

    topic.set_attributes(AttributeName="DisplayName", AttributeValue="Renamed")
    topic.reload()
    assert topic.attributes["DisplayName"] == "Renamed"
    subscription.delete()
    assert list(topic.subscriptions.all()) == []
    topic.delete()
    assert topic.arn not in {t.arn for t in sns.topics.all()}
    queue.delete()


def test_topics_collection_pages_past_one_hundred(sns: Any) -> None:
    """ListTopics answers 100 topics a page; the collection follows ``NextToken`` to the rest."""
    prefix = unique("many")
    made = {sns.create_topic(Name=f"{prefix}-{i}").arn for i in range(105)}
    pages = [[t.arn for t in page] for page in sns.topics.pages()]
    assert len(pages) >= 2 and all(len(page) <= 100 for page in pages[:-1])
    assert len(pages[0]) == 100
    listed = [arn for page in pages for arn in page]
    assert made <= set(listed)
    assert len(listed) == len(set(listed))  # no page repeated
    for arn in made:
        sns.Topic(arn).delete()


def test_platform_application_and_endpoints(sns: Any) -> None:
    app = sns.create_platform_application(
        Name=unique("app"), Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )
    assert app.arn.split(":")[5].startswith("app/GCM/")
    assert app.arn in {a.arn for a in sns.platform_applications.all()}
    assert "PlatformCredential" not in app.attributes  # never given back
    endpoint = app.create_platform_endpoint(Token="device-token-1", CustomUserData="user 1")
    assert endpoint.attributes["Token"] == "device-token-1"
    assert endpoint.attributes["Enabled"] == "true"
    assert [e.arn for e in app.endpoints.all()] == [endpoint.arn]
    assert endpoint.publish(Message="hello device")["MessageId"]
    endpoint.set_attributes(Attributes={"Enabled": "false"})
    endpoint.reload()
    assert endpoint.attributes["Enabled"] == "false"
    endpoint.delete()
    assert list(app.endpoints.all()) == []
    app.delete()
    assert app.arn not in {a.arn for a in sns.platform_applications.all()}
