"""SNS end to end: what SQS queues and HTTP endpoints receive from a live server.

The expected documents are the ones AWS delivers, as recorded from real AWS by public test suites:
the JSON envelope an SQS subscriber receives (keys and their order, Timestamp form, signature over
the documented canonical string, SigningCertURL, UnsubscribeURL, MessageAttributes), raw delivery
with attributes carried over (and AWS's MD5 of them), filter policies, FIFO topics into FIFO and
standard queues, dead-letter queues, fan-out, and the HTTP confirmation handshake.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import queue
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

pytestmark = pytest.mark.compat

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"
NOTIFICATION_KEYS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_KEYS = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


@pytest.fixture
def sqs(loosely: Any) -> Any:
    return loosely.boto3_client("sqs")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue(sqs: Any, fifo: bool = False, **attributes: str) -> tuple[str, str]:
    name = _name("q") + (".fifo" if fifo else "")
    if fifo:
        attributes["FifoQueue"] = "true"
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive(sqs: Any, url: str, count: int = 1, timeout_s: float = 10) -> list[dict[str, Any]]:
    """Receive and delete until ``count`` messages arrived (or the time is up)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count and time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for message in batch:
            messages.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _nothing_more(sqs: Any, url: str) -> bool:
    return not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")


def _verify(document: dict[str, Any], keys: list[str], hash_for_version: dict[str, Any] | None = None) -> None:
    """Check an envelope's signature with the certificate its SigningCertURL serves, as receivers do."""
    with urllib.request.urlopen(document["SigningCertURL"], timeout=5) as response:
        certificate = x509.load_pem_x509_certificate(response.read())
    text = "".join(f"{key}\n{document[key]}\n" for key in keys if key in document)
    algorithm = (hash_for_version or {"1": hashes.SHA1(), "2": hashes.SHA256()})[document["SignatureVersion"]]
    certificate.public_key().verify(  # type: ignore[call-arg]
        base64.b64decode(document["Signature"]), text.encode(), padding.PKCS1v15(), algorithm
    )


# ---- the SQS envelope ----


@pytest.mark.parametrize("signature_version", ["1", "2"])
def test_sqs_subscriber_receives_the_signed_notification_envelope(
    loosely: Any, sns: Any, sqs: Any, signature_version: str
) -> None:
    topic = sns.create_topic(Name=_name("t"), Attributes={"SignatureVersion": signature_version})["TopicArn"]
    url, queue_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]

    published = sns.publish(
        TopicArn=topic,
        Message='test ö§a1"_!?,. £$-',
        Subject="Hi",
        MessageAttributes={
            "attr1": {"DataType": "Number", "StringValue": "99.12"},
            "bin": {"DataType": "Binary", "BinaryValue": b"\x02\x03\x04"},
            "list": {"DataType": "String.Array", "StringValue": '["a", 1]'},
        },
    )
    [message] = _receive(sqs, url)
    body = json.loads(message["Body"])

    assert list(body) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
        "MessageAttributes",
    ]
    assert (body["Type"], body["MessageId"], body["TopicArn"]) == ("Notification", published["MessageId"], topic)
    assert (body["Subject"], body["Message"], body["SignatureVersion"]) == (
        "Hi",
        'test ö§a1"_!?,. £$-',
        signature_version,
    )
    assert TIMESTAMP.fullmatch(body["Timestamp"])
    assert re.fullmatch(r"https?://[^/]+/SimpleNotificationService-[0-9a-f]+\.pem", body["SigningCertURL"])
    assert body["UnsubscribeURL"] == f"{loosely.endpoint}/?Action=Unsubscribe&SubscriptionArn={subscription}"
    assert body["MessageAttributes"] == {
        "attr1": {"Type": "Number", "Value": "99.12"},
        "bin": {"Type": "Binary", "Value": "AgME"},
        "list": {"Type": "String.Array", "Value": '["a", 1]'},
    }
    assert message["Attributes"]["SenderId"] == SNS_SENDER_ID
    assert (
        "MessageAttributes" not in message and message["MD5OfBody"] == hashlib.md5(message["Body"].encode()).hexdigest()
    )
    _verify(body, NOTIFICATION_KEYS)


def test_envelope_without_subject_or_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    sns.publish(TargetArn=topic, Message="test-msg")
    [message] = _receive(sqs, url)
    body = json.loads(message["Body"])

    assert "Subject" not in body and "MessageAttributes" not in body
    assert body["Message"] == "test-msg" and body["SignatureVersion"] == "1"
    _verify(body, NOTIFICATION_KEYS)


def test_message_structure_json_picks_the_sqs_entry(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    sns.publish(
        TopicArn=topic,
        MessageStructure="json",
        Message=json.dumps({"default": "default field", "sqs": json.dumps({"field": "value"})}),
    )
    sns.publish(
        TopicArn=topic, MessageStructure="json", Message=json.dumps({"default": "default field", "sqs": {"field": "v"}})
    )
    messages = _receive(sqs, url, 2)

    assert sorted(json.loads(m["Body"])["Message"] for m in messages) == ["default field", '{"field": "value"}']


def test_publish_before_subscribing_is_not_delivered(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)

    sns.publish(TopicArn=topic, Message="before")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message="after")

    assert [json.loads(m["Body"])["Message"] for m in _receive(sqs, url)] == ["after"]
    assert _nothing_more(sqs, url)


# ---- raw delivery ----


def test_raw_delivery_carries_message_attributes_as_sqs_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)
    subscription = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )["SubscriptionArn"]

    sns.publish(
        TopicArn=topic, Message="Test msg", MessageAttributes={"attr1": {"DataType": "Number", "StringValue": "99.12"}}
    )
    sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {
                "Id": "1",
                "Message": "two attributes",
                "MessageAttributes": {
                    "attr1": {"DataType": "Number", "StringValue": "99.12"},
                    "attr2": {"DataType": "Number", "StringValue": "109.12"},
                },
            },
            {
                "Id": "2",
                "Message": "one attribute",
                "MessageAttributes": {"attr1": {"DataType": "Number", "StringValue": "19.12"}},
            },
            {
                "Id": "3",
                "Message": "binary",
                "MessageAttributes": {
                    "an-attribute-key": {"DataType": "String", "StringValue": "an-attribute-value"},
                    "binary-attribute": {"DataType": "Binary", "BinaryValue": b"\x02\x03\x04"},
                },
            },
            {
                "Id": "4",
                "Message": json.dumps({"default": "test default", "sqs": "test sqs"}),
                "MessageStructure": "json",
            },
        ],
    )
    received = {m["Body"]: m for m in _receive(sqs, url, 5)}

    # MD5s are the ones AWS computed for the same attributes.
    assert received["Test msg"]["MD5OfMessageAttributes"] == "d302007e9aa062660afc85fd0a482472"
    assert received["Test msg"]["MessageAttributes"] == {"attr1": {"DataType": "Number", "StringValue": "99.12"}}
    assert received["two attributes"]["MD5OfMessageAttributes"] == "9b720b3af309c1c4b0d395c53b08c502"
    assert received["one attribute"]["MD5OfMessageAttributes"] == "1f07082409022a373fa2a2601f82b3cb"
    assert received["binary"]["MessageAttributes"] == {
        "an-attribute-key": {"DataType": "String", "StringValue": "an-attribute-value"},
        "binary-attribute": {"DataType": "Binary", "BinaryValue": b"\x02\x03\x04"},
    }
    assert "MessageAttributes" not in received["test sqs"]
    assert sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["RawMessageDelivery"] == "true"

    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="RawMessageDelivery", AttributeValue="false"
    )
    sns.publish(
        TopicArn=topic, Message="Test msg", MessageAttributes={"attr1": {"DataType": "Number", "StringValue": "100.12"}}
    )
    [enveloped] = _receive(sqs, url)
    assert json.loads(enveloped["Body"])["MessageAttributes"] == {"attr1": {"Type": "Number", "Value": "100.12"}}


# ---- filter policies ----


def test_filter_policies_on_attributes_and_body(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    attributes_url, attributes_arn = _queue(sqs)
    body_url, body_arn = _queue(sqs)
    all_url, all_arn = _queue(sqs)
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=attributes_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": json.dumps(
                {
                    "store": ["example_corp"],
                    "price": [{"numeric": [">", 0, "<=", 100]}],
                    "event": [{"anything-but": ["order_cancelled"]}],
                    "color": [{"prefix": "re"}],
                }
            ),
        },
    )
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=body_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps({"order": {"kind": ["book"], "total": [{"numeric": [">=", 10]}]}}),
        },
    )
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=all_arn, Attributes={"RawMessageDelivery": "true"})

    def attrs(store: str, price: str, event: str, colors: str) -> dict[str, Any]:
        return {
            "store": {"DataType": "String", "StringValue": store},
            "price": {"DataType": "Number", "StringValue": price},
            "event": {"DataType": "String", "StringValue": event},
            "color": {"DataType": "String.Array", "StringValue": colors},
        }

    messages = {
        "a-match": attrs("example_corp", "99.12", "order_placed", '["blue", "red"]'),
        "a-price": attrs("example_corp", "100.5", "order_placed", '["red"]'),
        "a-event": attrs("example_corp", "5", "order_cancelled", '["red"]'),
        "a-store": attrs("other", "5", "order_placed", '["red"]'),
        "a-color": attrs("example_corp", "5", "order_placed", '["blue"]'),
    }
    for text, attributes in messages.items():
        sns.publish(TopicArn=topic, Message=text, MessageAttributes=attributes)
    for order in ({"kind": "book", "total": 12}, {"kind": "book", "total": 9}, {"kind": "pen", "total": 12}):
        sns.publish(TopicArn=topic, Message=json.dumps({"order": order}))
    sns.publish(TopicArn=topic, Message="not json")

    assert len(_receive(sqs, all_url, 9)) == 9  # every publication is fanned out by now
    assert [m["Body"] for m in _receive(sqs, attributes_url, 1)] == ["a-match"]
    assert [json.loads(m["Body"]) for m in _receive(sqs, body_url, 1)] == [{"order": {"kind": "book", "total": 12}}]
    assert _nothing_more(sqs, attributes_url) and _nothing_more(sqs, body_url)


def test_filter_policy_attribute_is_stored_and_shown(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    _, queue_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    policy = {"attr1": [{"numeric": [">", 0, "<=", 100]}]}

    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="FilterPolicy", AttributeValue=json.dumps(policy)
    )
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]

    assert json.loads(attributes["FilterPolicy"]) == policy
    assert attributes["FilterPolicyScope"] == "MessageAttributes"


# ---- FIFO topics ----


@pytest.mark.parametrize("content_based", [True, False])
def test_fifo_topic_to_fifo_queue(sns: Any, sqs: Any, content_based: bool) -> None:
    topic_attributes = {"FifoTopic": "true", **({"ContentBasedDeduplication": "true"} if content_based else {})}
    topic = sns.create_topic(Name=_name("t") + ".fifo", Attributes=topic_attributes)["TopicArn"]
    url, queue_arn = _queue(sqs, fifo=True)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    extra = {} if content_based else {"MessageDeduplicationId": "message-deduplication-id-1"}

    published = sns.publish(TopicArn=topic, Message="Test", MessageGroupId="message-group-id-1", **extra)
    [message] = _receive(sqs, url)
    body = json.loads(message["Body"])

    # AWS sends FIFO topics' notifications unsigned, with the topic's SequenceNumber after the MessageId.
    assert list(body) == ["Type", "MessageId", "SequenceNumber", "TopicArn", "Message", "Timestamp", "UnsubscribeURL"]
    assert (body["MessageId"], body["SequenceNumber"]) == (published["MessageId"], published["SequenceNumber"])
    assert body["UnsubscribeURL"].endswith(f"?Action=Unsubscribe&SubscriptionArn={subscription}")
    assert message["Attributes"]["MessageGroupId"] == "message-group-id-1"
    assert message["Attributes"]["MessageDeduplicationId"] == (
        hashlib.sha256(b"Test").hexdigest() if content_based else "message-deduplication-id-1"
    )
    again = sns.publish(TopicArn=topic, Message="Test", MessageGroupId="message-group-id-1", **extra)
    assert again["MessageId"] == published["MessageId"]
    assert _nothing_more(sqs, url)


def test_fifo_topic_keeps_order_into_every_fifo_queue(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(
        Name=_name("t") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    urls = []
    for _ in range(5):
        url, queue_arn = _queue(sqs, fifo=True, ContentBasedDeduplication="true")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)

    for i in range(10):
        sns.publish(TopicArn=topic, Message=str(i), MessageGroupId="message-group-id-1")

    for url in urls:
        assert [m["Body"] for m in _receive(sqs, url, 10)] == [str(i) for i in range(10)]


def test_fifo_topic_raw_delivery_derives_the_queue_deduplication_id(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(
        Name=_name("t") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    url, queue_arn = _queue(sqs, fifo=True)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    for _ in range(2):
        sns.publish(TopicArn=topic, Message="Test single", MessageGroupId="message-group-id-1")
        sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[{"Id": "1", "MessageGroupId": "message-group-id-1", "Message": "Test batched"}],
        )
    messages = _receive(sqs, url, 2)

    assert {m["Body"]: m["Attributes"]["MessageDeduplicationId"] for m in messages} == {
        "Test single": "2591186cff6c740cb9e0cfce1653a7e6998d57da12e1da13d85344b1c08be4cb",
        "Test batched": "32a45f72fe3d20fb5d4f1647421d1c5f9d20ef207c8ab713443cc9f9b76c468c",
    }
    assert _nothing_more(sqs, url)


def test_fifo_topic_deduplicates_across_message_groups(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(
        Name=_name("t") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    url, queue_arn = _queue(sqs, fifo=True)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    sns.publish(TopicArn=topic, Message="Test", MessageGroupId="message-group-id-1")
    sns.publish(TopicArn=topic, Message="Test", MessageGroupId="message-group-id-2")
    [message] = _receive(sqs, url)

    assert message["Attributes"]["MessageGroupId"] == "message-group-id-1"
    assert _nothing_more(sqs, url)


def test_fifo_topic_to_standard_queue(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(
        Name=_name("t") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    url, queue_arn = _queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    published = sns.publish(TopicArn=topic, Message="Test", MessageGroupId="g")
    [message] = _receive(sqs, url)

    assert json.loads(message["Body"])["SequenceNumber"] == published["SequenceNumber"]
    assert set(message["Attributes"]) == {
        "SenderId",
        "SentTimestamp",
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
    }


def test_message_group_id_of_a_standard_topic_reaches_the_queue(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    sns.publish(TopicArn=topic, Message="m", MessageGroupId="my-group-id-1")
    [message] = _receive(sqs, url)

    assert message["Attributes"].get("MessageGroupId") == "my-group-id-1"


# ---- fan-out and dead letters ----


def test_fan_out_to_many_queues_delivers_once_each(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    urls = []
    for _ in range(20):
        url, queue_arn = _queue(sqs)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)

    message_id = sns.publish(TopicArn=topic, Message="fan-out")["MessageId"]

    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "20"
    bodies = [[m["Body"] for m in _receive(sqs, url, 1)] for url in urls]
    assert bodies == [["fan-out"]] * 20 and message_id
    assert all(_nothing_more(sqs, url) for url in urls[:3])


@pytest.mark.parametrize("raw", [True, False])
def test_deleted_queue_sends_to_the_subscriptions_dead_letter_queue(sns: Any, sqs: Any, raw: bool) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url, queue_arn = _queue(sqs)
    dlq_url, dlq_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription,
        AttributeName="RedrivePolicy",
        AttributeValue=json.dumps({"deadLetterTargetArn": dlq_arn}),
    )
    if raw:
        sns.set_subscription_attributes(
            SubscriptionArn=subscription, AttributeName="RawMessageDelivery", AttributeValue="true"
        )
    sqs.delete_queue(QueueUrl=url)

    sns.publish(
        TopicArn=topic,
        Message="test_dlq_after_sqs_endpoint_deleted",
        MessageAttributes={
            "attr1": {"DataType": "Number", "StringValue": "111"},
            "attr2": {"DataType": "Binary", "BinaryValue": b"\x02\x03\x04"},
        },
    )
    [message] = _receive(sqs, dlq_url)

    assert json.loads(sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn
    }
    if raw:
        assert message["Body"] == "test_dlq_after_sqs_endpoint_deleted"
        assert message["MessageAttributes"]["attr1"] == {"DataType": "Number", "StringValue": "111"}
        assert message["MessageAttributes"]["attr2"] == {"DataType": "Binary", "BinaryValue": b"\x02\x03\x04"}
    else:
        body = json.loads(message["Body"])
        assert (body["Type"], body["Message"]) == ("Notification", "test_dlq_after_sqs_endpoint_deleted")
        assert body["MessageAttributes"] == {
            "attr1": {"Type": "Number", "Value": "111"},
            "attr2": {"Type": "Binary", "Value": "AgME"},
        }


# ---- HTTP endpoints ----


class _Receiver:
    """A local HTTP endpoint that records every request SNS makes to it."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[dict[str, str], str]] = queue.Queue()
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sns-endpoint"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> tuple[dict[str, str], str]:
        return self.requests.get(timeout=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    endpoint = _Receiver()
    try:
        yield endpoint
    finally:
        endpoint.close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_http_subscription_handshake_notifications_and_unsubscribe(loosely: Any, sns: Any, receiver: _Receiver) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url, ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]

    headers, body = receiver.next()
    confirmation = json.loads(body)
    assert list(confirmation) == [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ]
    assert confirmation["Message"] == (
        f"You have chosen to subscribe to the topic {topic}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )
    assert confirmation["SubscribeURL"] == (
        f"{loosely.endpoint}/?Action=ConfirmSubscription&TopicArn={topic}&Token={confirmation['Token']}"
    )
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert headers["x-amz-sns-topic-arn"] == topic and "x-amz-sns-subscription-arn" not in headers
    assert headers["user-agent"] == "Amazon Simple Notification Service Agent"
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    _verify(confirmation, CONFIRMATION_KEYS)
    assert sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["PendingConfirmation"] == "true"

    assert f"<SubscriptionArn>{subscription}</SubscriptionArn>" in _get(confirmation["SubscribeURL"])
    assert f"<SubscriptionArn>{subscription}</SubscriptionArn>" in _get(confirmation["SubscribeURL"])  # idempotent
    assert sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["PendingConfirmation"] == "false"

    sns.publish(TopicArn=topic, Message="test_external_http_endpoint")
    headers, body = receiver.next()
    notification = json.loads(body)
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == subscription
    assert headers["x-amz-sns-message-id"] == notification["MessageId"]
    assert notification["UnsubscribeURL"] == f"{loosely.endpoint}/?Action=Unsubscribe&SubscriptionArn={subscription}"
    _verify(notification, NOTIFICATION_KEYS)

    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="RawMessageDelivery", AttributeValue="true"
    )
    sns.publish(TopicArn=topic, Message="raw body")
    headers, body = receiver.next()
    assert body == "raw body" and headers["x-amz-sns-rawdelivery"] == "true"

    assert "<UnsubscribeResponse" in _get(notification["UnsubscribeURL"])
    headers, body = receiver.next()
    goodbye = json.loads(body)
    assert goodbye["Type"] == "UnsubscribeConfirmation" == headers["x-amz-sns-message-type"]
    assert goodbye["Message"] == (
        f"You have chosen to deactivate subscription {subscription}.\n"
        "To cancel this operation and restore the subscription, visit the SubscribeURL included in this message."
    )
    _verify(goodbye, CONFIRMATION_KEYS)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_confirm_subscription_by_token_and_content_type_policy(sns: Any, receiver: _Receiver) -> None:
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic,
        AttributeName="DeliveryPolicy",
        AttributeValue=json.dumps({"http": {"defaultRequestPolicy": {"headerContentType": "application/json"}}}),
    )
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
    _, body = receiver.next()
    token = json.loads(body)["Token"]
    assert re.fullmatch(r"[0-9a-f]{288}", token)  # the shape of AWS's tokens (test_sns.snapshot.json, 288 hex digits)

    arn = sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="typed")
    headers, body = receiver.next()

    assert arn.startswith(topic + ":")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["Message"] == "typed"


# ---- the AWS CLI ----


def test_aws_cli_output(loosely: Any) -> None:
    created = loosely.aws("sns", "create-topic", "--name", _name("cli"), "--attributes", "DisplayName=Shop")
    assert created.returncode == 0, created.stderr
    arn = created.json["TopicArn"]

    published = loosely.aws("sns", "publish", "--topic-arn", arn, "--message", "hello", "--subject", "Hi")
    attributes = loosely.aws("sns", "get-topic-attributes", "--topic-arn", arn)
    bad = loosely.aws("sns", "publish", "--topic-arn", arn, "--message", "")

    assert published.returncode == 0 and set(published.json) == {"MessageId"}
    assert attributes.json["Attributes"]["DisplayName"] == "Shop"
    assert bad.returncode != 0
    assert (
        "An error occurred (InvalidParameter) when calling the Publish operation: Invalid parameter: Empty message"
        in (bad.stderr)
    )
