"""SNS after a queue or a topic is deleted and created again under the same name, on both backends.

A queue deleted and re-created under its name is a new queue with the same ARN: a subscription by
that ARN delivers into the new queue, and a queue that stays deleted fails the delivery (to the
subscription's dead-letter queue), however recently fan-out looked the old queue up. A FIFO topic
created again starts with no deduplication history. On PostgreSQL the queue is deleted and created
again through another node than the one that publishes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_helpers import arn_of, unique

from compat.conftest import Loosely, _server_env
from compat.test_compat_postgres import POSTGRES_URL, require_postgres
from loosely.server.testing import ServerProcess

pytestmark = pytest.mark.compat

DEADLINE_S = 30.0
ARGS = ("--queue-recreate-delay", "0")


class Nodes:
    """Where a test publishes (``main``) and where it deletes and re-creates queues (``other``)."""

    def __init__(self, main: Loosely, other: Loosely) -> None:
        self.sqs = main.boto3_client("sqs")
        self.sns = main.boto3_client("sns", protocol="query")
        self.other_sqs = other.boto3_client("sqs")


def _start(data_dir: Path, home: Path, args: tuple[str, ...]) -> tuple[ServerProcess, Loosely]:
    process = ServerProcess(data_dir, args=args, env=_server_env())
    process.start()
    return process, Loosely(process, home)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """One SQLite server, or two nodes of one PostgreSQL database."""
    started: list[ServerProcess] = []
    home = tmp_path_factory.mktemp("home")
    try:
        if request.param == "sqlite":
            process, main = _start(tmp_path_factory.mktemp("sqlite"), home, ARGS)
            started.append(process)
            yield Nodes(main, main)
            return
        require_postgres()
        loosely: list[Loosely] = []
        for name in ("a", "b"):
            process, node = _start(tmp_path_factory.mktemp(name), home, (*ARGS, "--database", POSTGRES_URL))
            started.append(process)
            loosely.append(node)
        yield Nodes(loosely[0], loosely[1])
    finally:
        for process in started:
            process.stop()


def _receive(sqs: Any, url: str, count: int) -> list[str]:
    """Bodies received (and deleted) until ``count`` arrived or the deadline passed."""
    bodies: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(bodies) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _subscribed_queue(nodes: Nodes, topic: str, **attributes: str) -> tuple[str, str, str]:
    """A queue subscribed to ``topic`` (raw delivery) and already delivered to: (name, url, subscription)."""
    name = unique("recreated")
    url = nodes.sqs.create_queue(QueueName=name)["QueueUrl"]
    subscription = nodes.sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn_of(nodes.sqs, url),
        Attributes={"RawMessageDelivery": "true", **attributes},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    # Fan-out has looked this queue up (and may remember it) by the time these arrive.
    for i in range(3):
        nodes.sns.publish(TopicArn=topic, Message=f"warm-{i}")
    assert sorted(_receive(nodes.sqs, url, 3)) == ["warm-0", "warm-1", "warm-2"]
    return name, url, subscription


def test_publish_reaches_a_queue_deleted_and_created_again_under_its_name(nodes: Nodes) -> None:
    topic = nodes.sns.create_topic(Name=unique("t"))["TopicArn"]
    name, old_url, _ = _subscribed_queue(nodes, topic)

    nodes.other_sqs.delete_queue(QueueUrl=old_url)
    url = nodes.other_sqs.create_queue(QueueName=name)["QueueUrl"]
    nodes.sns.publish(TopicArn=topic, Message="after")

    assert _receive(nodes.other_sqs, url, 1) == ["after"]


def test_publish_to_a_queue_that_stays_deleted_goes_to_the_dead_letter_queue(nodes: Nodes) -> None:
    topic = nodes.sns.create_topic(Name=unique("t"))["TopicArn"]
    dlq_url = nodes.sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    redrive = json.dumps({"deadLetterTargetArn": arn_of(nodes.sqs, dlq_url)})
    _, url, _ = _subscribed_queue(nodes, topic, RedrivePolicy=redrive)

    nodes.other_sqs.delete_queue(QueueUrl=url)
    nodes.sns.publish(TopicArn=topic, Message="nowhere")

    assert _receive(nodes.sqs, dlq_url, 1) == ["nowhere"]


def test_a_fifo_topic_created_again_keeps_no_deduplication_history(nodes: Nodes) -> None:
    name = unique("t") + ".fifo"
    attributes = {"FifoTopic": "true"}
    topic = nodes.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    first = nodes.sns.publish(TopicArn=topic, Message="first", MessageGroupId="g", MessageDeduplicationId="d")
    again = nodes.sns.publish(TopicArn=topic, Message="again", MessageGroupId="g", MessageDeduplicationId="d")
    assert again["MessageId"] == first["MessageId"]  # a repeat while the topic lives

    nodes.sns.delete_topic(TopicArn=topic)
    assert nodes.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"] == topic
    url = nodes.sqs.create_queue(QueueName=unique("q") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    nodes.sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn_of(nodes.sqs, url), Attributes={"RawMessageDelivery": "true"}
    )
    fresh = nodes.sns.publish(TopicArn=topic, Message="fresh", MessageGroupId="g", MessageDeduplicationId="d")

    assert fresh["MessageId"] != first["MessageId"]
    assert _receive(nodes.sqs, url, 1) == ["fresh"]
