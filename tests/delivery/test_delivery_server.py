"""SNS delivery end to end: a real ``loosely serve`` process, boto3, and real endpoints on port 0.

The HTTP receiver verifies every envelope's signature like a stock SNS verifier (certificate fetched
from SigningCertURL) and confirms through the SubscribeURL; a failing or hanging receiver exercises
retries, the dead-letter queue and isolation; an aiosmtpd server receives mail; a kill -9 with
deliveries pending shows they resume after a restart.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from delivery_support import store_has_outbox
from sns_receivers import HttpReceiver, SmtpReceiver

from loosely.server.testing import ServerProcess

pytestmark = pytest.mark.skipif(not store_has_outbox(), reason="the SQLite store has no outbox yet")

CREDENTIALS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "secret"}
SHORT_RETRIES = {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 2, "numNoDelayRetries": 0}


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    env["LOOSELY_LOG_LEVEL"] = "warning"
    env.update(extra)
    return env


class Node:
    def __init__(self, process: ServerProcess) -> None:
        self.process = process

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.process.endpoint,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
            **CREDENTIALS,
        )

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with urllib.request.urlopen(self.process.endpoint + path, timeout=10) as response:
            return response.status, dict(response.headers), response.read()

    def stats(self) -> dict[str, int]:
        value: dict[str, int] = json.loads(self.get("/_loosely/delivery")[2])
        return value

    def queue(self, name: str, **attributes: str) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def drain(self, url: str, expected: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < expected and time.monotonic() < deadline:
            response = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )  # fmt: skip
            for message in response.get("Messages", []):
                found.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    process = ServerProcess(tmp_path_factory.mktemp("sns-delivery"), env=server_env())
    with process:
        yield Node(process)


def confirm_with_token(node: Node, receiver: HttpReceiver, topic: str) -> None:
    """Confirm a subscription whose endpoint cannot (it fails), with the token it was sent."""
    [confirmation] = receiver.wait_for("SubscriptionConfirmation")[:1]
    node.client("sns").confirm_subscription(TopicArn=topic, Token=confirmation.json["Token"])


def test_http_endpoint_confirms_by_subscribe_url_and_verifies_every_signature(node: Node) -> None:
    sns = node.client("sns")
    topic = sns.create_topic(Name="verified", Attributes={"DisplayName": "Verified"})["TopicArn"]
    with HttpReceiver(confirm=True) as receiver:
        sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url, ReturnSubscriptionArn=True)
        arn = sub["SubscriptionArn"]
        receiver.wait_for("SubscriptionConfirmation")
        wait_until(lambda: len(receiver.confirmations) == 1)
        assert f"<SubscriptionArn>{arn}</SubscriptionArn>" in receiver.confirmations[0]
        attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        assert attributes["PendingConfirmation"] == "false"
        assert attributes["ConfirmationWasAuthenticated"] == "false"

        sns.publish(TopicArn=topic, Message="one", Subject="First")
        receiver.wait_for("Notification")  # fan-out reads the topic when it runs: let "one" go out first
        sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
        sns.publish(TopicArn=topic, Message="two", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
        notifications = receiver.wait_for("Notification", 2)
        wait_until(lambda: receiver.verified == 3)

        documents = sorted((n.json for n in notifications), key=lambda d: d["Message"])
        assert [d["SignatureVersion"] for d in documents] == ["1", "2"]
        assert documents[0]["Subject"] == "First"
        assert documents[1]["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
        headers = notifications[0].headers
        assert headers["x-amz-sns-subscription-arn"] == arn
        assert headers["x-amz-sns-topic-arn"] == topic
        assert headers["content-type"] == "text/plain; charset=UTF-8"

        status, _, pem = node.get(documents[0]["SigningCertURL"].replace(node.process.endpoint, ""))
        assert status == 200
        assert pem.startswith(b"-----BEGIN CERTIFICATE-----")

        # The UnsubscribeURL works unsigned, like a link in a mail; the endpoint is told.
        with urllib.request.urlopen(documents[0]["UnsubscribeURL"], timeout=10) as response:
            assert b"<UnsubscribeResponse" in response.read()
        receiver.wait_for("UnsubscribeConfirmation")
        wait_until(lambda: receiver.verified == 4)
        listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert listed == []


def test_failing_endpoint_is_retried_by_policy_then_dead_lettered(node: Node) -> None:
    sns = node.client("sns")
    topic = sns.create_topic(Name="flaky")["TopicArn"]
    dlq_url, dlq_arn = node.queue("flaky-dlq")
    with HttpReceiver("fail") as receiver:
        sns.subscribe(
            TopicArn=topic,
            Protocol="http",
            Endpoint=receiver.url,
            Attributes={
                "DeliveryPolicy": json.dumps({"healthyRetryPolicy": SHORT_RETRIES}),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn}),
            },
        )
        confirm_with_token(node, receiver, topic)
        message_id = sns.publish(TopicArn=topic, Message="will not arrive")["MessageId"]
        [dead] = node.drain(dlq_url, 1, timeout_s=20)
        assert len(receiver.of_type("Notification")) == 3  # first attempt + numRetries
    envelope = json.loads(dead["Body"])
    assert envelope["MessageId"] == message_id
    assert dead["MessageAttributes"]["ErrorMessage"]["StringValue"] == "HTTP 500"


def test_a_hanging_endpoint_slows_neither_publishing_nor_other_subscribers(node: Node) -> None:
    sns = node.client("sns")
    topic = sns.create_topic(Name="mixed")["TopicArn"]
    with HttpReceiver("hang", hang_s=4.0) as slow, HttpReceiver(confirm=True) as fast:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=slow.url)
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=fast.url)
        slow.wait_for("SubscriptionConfirmation")
        wait_until(lambda: len(fast.confirmations) == 1)
        confirmation = slow.of_type("SubscriptionConfirmation")[0].json
        sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])

        started = time.monotonic()
        for i in range(20):
            sns.publish(TopicArn=topic, Message=f"m{i}")
        publishing_s = time.monotonic() - started
        fast.wait_for("Notification", 20, timeout_s=3.0)
        fast_s = time.monotonic() - started
        assert len(slow.of_type("Notification")) <= 10  # still stuck in its bounded lane
    assert publishing_s < 3.0
    assert fast_s < 3.5


def test_fan_out_to_many_queues_fifo_order_and_filters(node: Node) -> None:
    sns = node.client("sns")
    wide = sns.create_topic(Name="wide")["TopicArn"]
    urls = []
    for i in range(25):
        url, arn = node.queue(f"wide-{i}")
        sns.subscribe(TopicArn=wide, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    sns.publish(TopicArn=wide, Message="everyone")
    for url in urls:
        assert [m["Body"] for m in node.drain(url, 1)] == ["everyone"]

    fifo = sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})[
        "TopicArn"
    ]
    fifo_url, fifo_arn = node.queue("orders.fifo", FifoQueue="true")
    sns.subscribe(TopicArn=fifo, Protocol="sqs", Endpoint=fifo_arn, Attributes={"RawMessageDelivery": "true"})
    for i in range(20):
        sns.publish(TopicArn=fifo, Message=f"order {i}", MessageGroupId="customer-1")
    received = node.drain(fifo_url, 20)
    assert [m["Body"] for m in received] == [f"order {i}" for i in range(20)]
    assert {m["Attributes"]["MessageGroupId"] for m in received} == {"customer-1"}

    filtered = sns.create_topic(Name="filtered")["TopicArn"]
    red_url, red_arn = node.queue("only-red")
    sns.subscribe(
        TopicArn=filtered,
        Protocol="sqs",
        Endpoint=red_arn,
        Attributes={"FilterPolicy": json.dumps({"colour": ["red"], "size": [{"numeric": [">=", 10]}]})},
    )
    for colour, size in (("red", "12"), ("blue", "12"), ("red", "3"), ("red", "10")):
        sns.publish(
            TopicArn=filtered,
            Message=f"{colour}-{size}",
            MessageAttributes={
                "colour": {"DataType": "String", "StringValue": colour},
                "size": {"DataType": "Number", "StringValue": size},
            },
        )
    got = node.drain(red_url, 2)
    assert sorted(json.loads(m["Body"])["Message"] for m in got) == ["red-10", "red-12"]
    assert node.drain(red_url, 1, timeout_s=1.5) == []


def test_sms_goes_to_the_outbox(node: Node) -> None:
    sns = node.client("sns")
    sns.publish(PhoneNumber="+15555550142", Message="Your code is 4242")
    wait_until(lambda: bool(json.loads(node.get("/_loosely/outbox?destination=%2B15555550142")[2])["messages"]))
    [entry] = json.loads(node.get("/_loosely/outbox?type=sms&destination=%2B15555550142")[2])["messages"]
    assert entry["message"] == "Your code is 4242"
    assert entry["kind"] == "notification"


def test_mobile_push_goes_to_the_outbox_with_the_device_token(node: Node) -> None:
    sns = node.client("sns")
    app = sns.create_platform_application(
        Name="phones", Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )["PlatformApplicationArn"]
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="device-token-1", CustomUserData="alice")[
        "EndpointArn"
    ]
    texts = {"default": "plain", "GCM": json.dumps({"notification": {"title": "Hi"}})}
    sns.publish(TargetArn=endpoint, Message=json.dumps(texts), MessageStructure="json")
    query = "/_loosely/outbox?type=application&destination=" + urllib.parse.quote(endpoint, safe="")
    wait_until(lambda: bool(json.loads(node.get(query)[2])["messages"]))
    [entry] = json.loads(node.get(query)[2])["messages"]
    assert entry["platform"] == "GCM"
    assert entry["token"] == "device-token-1"
    assert entry["customUserData"] == "alice"
    assert json.loads(entry["message"]) == {"notification": {"title": "Hi"}}


def test_email_subscription_confirms_by_mail_and_receives_notifications(tmp_path: Path) -> None:
    with SmtpReceiver() as smtp:
        env = server_env(LOOSELY_SMTP_HOST="127.0.0.1", LOOSELY_SMTP_PORT=str(smtp.port))
        with ServerProcess(tmp_path / "data", env=env) as process:
            node = Node(process)
            sns = node.client("sns")
            topic = sns.create_topic(Name="newsletter", Attributes={"DisplayName": "Weekly"})["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="reader@example.test")
            [confirmation] = smtp.wait_for(1)
            mail = confirmation.message
            assert mail["Subject"] == "AWS Notification - Subscription Confirmation"
            assert confirmation.recipients == ["reader@example.test"]
            link = re.search(r"(http://\S+Action=ConfirmSubscription\S+)", mail.get_content())
            assert link is not None
            with urllib.request.urlopen(link.group(1), timeout=10) as response:
                assert b"<ConfirmSubscriptionResult>" in response.read()

            sns.publish(TopicArn=topic, Message="This week: loosely.", Subject="Issue 1")
            notification = smtp.wait_for(2)[1].message
            assert notification["Subject"] == "Issue 1"
            assert notification["From"].startswith("Weekly <")
            text = notification.get_content()
            assert text.startswith("This week: loosely.")
            assert "Action=Unsubscribe" in text


def test_pending_deliveries_resume_after_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    policy = {"healthyRetryPolicy": {"minDelayTarget": 2, "maxDelayTarget": 2, "numRetries": 20}}
    with HttpReceiver("fail") as receiver:
        process = ServerProcess(data, env=server_env())
        try:
            process.start()
            node = Node(process)
            sns = node.client("sns")
            topic = sns.create_topic(Name="durable")["TopicArn"]
            sns.subscribe(
                TopicArn=topic,
                Protocol="http",
                Endpoint=receiver.url,
                Attributes={"DeliveryPolicy": json.dumps(policy)},
            )
            confirm_with_token(node, receiver, topic)
            message_id = sns.publish(TopicArn=topic, Message="survives")["MessageId"]
            receiver.wait_for("Notification")
            wait_until(lambda: node.stats()["retried"] >= 2)  # the notification's failure is recorded
            process.kill()

            receiver.behaviour = "ok"
            # Same port, as a real restart: the rendered envelopes' SigningCertURL must stay reachable.
            process.args = ["--port", process.endpoint.rsplit(":", 1)[1]]
            process.start()
            retried = [n for n in receiver.wait_for("Notification", 2)[1:]]
            assert retried[0].json["MessageId"] == message_id
            wait_until(lambda: receiver.verified >= 1)
        finally:
            process.stop()


@pytest.mark.postgres
def test_two_nodes_on_postgresql_deliver_each_message_once(tmp_path: Path, postgres_url: str) -> None:
    import uuid

    tag = uuid.uuid4().hex[:10]
    nodes = [ServerProcess(tmp_path / name, args=["--database", postgres_url], env=server_env()) for name in "ab"]
    with HttpReceiver(confirm=True) as receiver:
        try:
            for process in nodes:
                process.start()
            a, b = (Node(process) for process in nodes)
            topic = a.client("sns").create_topic(Name=f"shared-{tag}")["TopicArn"]
            queue_url, queue_arn = a.queue(f"shared-{tag}")
            a.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
            b.client("sns").subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
            wait_until(lambda: len(receiver.confirmations) == 1)

            sent = {b.client("sns").publish(TopicArn=topic, Message=f"m{i}")["MessageId"] for i in range(20)}
            notifications = receiver.wait_for("Notification", 20)
            wait_until(lambda: receiver.verified == 21)  # the confirmation and every notification
            time.sleep(0.5)  # a duplicate would arrive by now
            delivered = [n.json["MessageId"] for n in receiver.of_type("Notification")]
            assert sorted(delivered) == sorted(sent) and len(notifications) == 20
            queued = [json.loads(m["Body"])["MessageId"] for m in a.drain(queue_url, 20)]
            assert sorted(queued) == sorted(sent)
        finally:
            for process in nodes:
                process.stop()
