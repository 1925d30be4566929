"""SNS FIFO message archiving and replay, end to end with boto3 against a live server.

ArchivePolicy / BeginningArchiveTime on topics, ReplayPolicy / ReplayStatus on subscriptions, the
replayed messages an SQS subscriber receives (same MessageId, Timestamp and SequenceNumber as the
original, marked Replayed), the errors of bad policies, and a replay that survives a restart.
Standard queues subscribe here: a FIFO queue would drop a replay within its five-minute
deduplication window of the original delivery (same MessageDeduplicationId).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from compat_helpers import arn_of, raised, unique

pytestmark = pytest.mark.compat

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ARCHIVE = json.dumps({"MessageRetentionPeriod": "7"})


def _fifo_topic(sns: Any, **attributes: str) -> str:
    attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "true", **attributes}
    return str(sns.create_topic(Name=unique("t") + ".fifo", Attributes=attributes)["TopicArn"])


def _queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    return url, arn_of(sqs, url)


def _receive(sqs: Any, url: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Envelopes of ``count`` messages (received and deleted), waiting up to ``timeout_s``."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def _replay_policy(start: str) -> str:
    return json.dumps({"PointType": "Timestamp", "StartingPoint": start})


def _wait_status(sns: Any, subscription: str, status: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"].get("ReplayStatus", "")
        if seen == status:
            break
        time.sleep(0.2)
    return seen


@pytest.fixture
def sns(loosely: Any) -> Any:
    return loosely.boto3_client("sns", protocol="query")


@pytest.fixture
def sqs(loosely: Any) -> Any:
    return loosely.boto3_client("sqs")


def test_archive_policy_and_beginning_archive_time(sns: Any) -> None:
    topic = _fifo_topic(sns, ArchivePolicy=ARCHIVE)
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert json.loads(attributes["ArchivePolicy"]) == {"MessageRetentionPeriod": "7"}
    assert ISO_MS.fullmatch(attributes["BeginningArchiveTime"])

    sns.set_topic_attributes(TopicArn=topic, AttributeName="ArchivePolicy", AttributeValue="{}")
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert "BeginningArchiveTime" not in attributes

    code, message, status = raised(
        sns.set_topic_attributes,
        TopicArn=topic,
        AttributeName="ArchivePolicy",
        AttributeValue='{"MessageRetentionPeriod": "400"}',
    )
    assert (code, status) == ("InvalidParameter", 400)
    assert message.startswith("Invalid parameter: ArchivePolicy")
    standard = sns.create_topic(Name=unique("t"))["TopicArn"]
    code, _, status = raised(
        sns.set_topic_attributes, TopicArn=standard, AttributeName="ArchivePolicy", AttributeValue=ARCHIVE
    )
    assert (code, status) == ("InvalidParameter", 400)


def test_replay_redelivers_archived_messages_to_one_subscription(sns: Any, sqs: Any) -> None:
    topic = _fifo_topic(sns, ArchivePolicy=ARCHIVE)
    url, queue_arn = _queue(sqs)
    other_url, other_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=other_arn)
    for text in ("first", "second", "third"):
        sns.publish(TopicArn=topic, Message=text, MessageGroupId="g")
    originals = {e["Message"]: e for e in _receive(sqs, url, 3)}
    assert len(_receive(sqs, other_url, 3)) == 3
    assert set(originals) == {"first", "second", "third"}

    start = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["BeginningArchiveTime"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="ReplayPolicy", AttributeValue=_replay_policy(start)
    )
    replayed = _receive(sqs, url, 3)
    assert sorted(e["Message"] for e in replayed) == ["first", "second", "third"]
    for envelope in replayed:
        original = originals[envelope["Message"]]
        assert envelope["Replayed"] is True
        assert (envelope["MessageId"], envelope["Timestamp"], envelope["SequenceNumber"]) == (
            original["MessageId"],
            original["Timestamp"],
            original["SequenceNumber"],
        )
    assert _wait_status(sns, subscription, "Completed") == "Completed"
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert json.loads(attributes["ReplayPolicy"])["StartingPoint"] == start
    assert sqs.receive_message(QueueUrl=other_url, WaitTimeSeconds=1).get("Messages", []) == []


def test_subscribe_with_a_replay_policy(sns: Any, sqs: Any) -> None:
    topic = _fifo_topic(sns, ArchivePolicy=ARCHIVE)
    start = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["BeginningArchiveTime"]
    sns.publish(TopicArn=topic, Message="kept", MessageGroupId="g")
    url, queue_arn = _queue(sqs)
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"ReplayPolicy": _replay_policy(start)}
    )
    [envelope] = _receive(sqs, url, 1)
    assert (envelope["Message"], envelope["Replayed"]) == ("kept", True)


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("{not json", "failed to parse JSON"),
        ('{"PointType": "SequenceNumber", "StartingPoint": "2024-01-01T00:00:00Z"}', "PointType"),
        ('{"PointType": "Timestamp", "StartingPoint": "2999-01-01T00:00:00Z"}', "in the future"),
        ('{"PointType": "Timestamp", "StartingPoint": "2000-01-01T00:00:00Z"}', "BeginningArchiveTime"),
    ],
)
def test_bad_replay_policies(sns: Any, sqs: Any, policy: str, reason: str) -> None:
    topic = _fifo_topic(sns, ArchivePolicy=ARCHIVE)
    _, queue_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    code, message, status = raised(
        sns.set_subscription_attributes,
        SubscriptionArn=subscription,
        AttributeName="ReplayPolicy",
        AttributeValue=policy,
    )
    assert (code, status) == ("InvalidParameter", 400)
    assert message.startswith("Invalid parameter: ReplayPolicy Reason:") and reason in message


def test_replay_needs_an_archive(sns: Any, sqs: Any) -> None:
    topic = _fifo_topic(sns)
    _, queue_arn = _queue(sqs)
    code, message, status = raised(
        sns.subscribe,
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"ReplayPolicy": _replay_policy("2024-01-01T00:00:00Z")},
    )
    assert (code, status) == ("InvalidParameter", 400)
    assert "ArchivePolicy" in message


def test_archive_and_replay_survive_a_restart(start_loosely: Callable[..., Any]) -> None:
    server = start_loosely()
    sns, sqs = server.boto3_client("sns", protocol="query"), server.boto3_client("sqs")
    topic = _fifo_topic(sns, ArchivePolicy=ARCHIVE)
    url, queue_arn = _queue(sqs)
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    for n in range(5):
        sns.publish(TopicArn=topic, Message=f"m{n}", MessageGroupId="g")
    assert len(_receive(sqs, url, 5)) == 5
    server.process.kill()

    restarted = start_loosely(server.data_dir)
    sns, sqs = restarted.boto3_client("sns", protocol="query"), restarted.boto3_client("sqs")
    start = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["BeginningArchiveTime"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="ReplayPolicy", AttributeValue=_replay_policy(start)
    )
    replayed = _receive(sqs, url, 5)
    assert sorted(e["Message"] for e in replayed) == [f"m{n}" for n in range(5)]
    assert all(e["Replayed"] is True for e in replayed)
    assert _wait_status(sns, subscription, "Completed") == "Completed"
