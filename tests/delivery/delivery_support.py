"""In-process delivery stack: the real SQLite store, queue and topic services, a fake clock.

`stack` wires a `FanOut` and a `DeliveryWorker` exactly as the server does, except that push
transports are a `ScriptedTransport` (records every delivery; answers what the test scripted) and
time is a `FakeClock`, so retry schedules are checked without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loosely.core.clock import FakeClock
from loosely.core.ids import SequentialIds
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.queues.models import QueueKey, QueueRecord, ReceivedMessage, ReceiveRequest
from loosely.core.queues.service import QueueService, QueueSettings
from loosely.core.topics.models import PushDelivery
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AccountScope, AttributeValue, PublishRequest
from loosely.delivery.directory import Directory
from loosely.delivery.fanout import FanOut
from loosely.delivery.options import DeliveryOptions, DeliveryStats
from loosely.delivery.pacing import Throttle
from loosely.delivery.rendering import Renderer
from loosely.delivery.signing import Signer
from loosely.delivery.sqs import QueueDirectory
from loosely.delivery.transports.base import Attempt
from loosely.delivery.worker import DeliveryWorker

ACCOUNT = "123456789012"
REGION = "us-east-1"
SCOPE = AccountScope(ACCOUNT, REGION)
PUBLIC_URL = "http://sns.test:4566"


def store_has_outbox() -> bool:
    from loosely.storage.sqlite import SqliteStore

    return issubclass(SqliteStore, DocumentStore) and issubclass(SqliteStore, OutboxStore)


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.generate()


class FixedRandom:
    """Jitter off: every delay is the policy's nominal one."""

    def random(self) -> float:
        return 0.0


@dataclass
class ScriptedTransport:
    """Records deliveries; answers each endpoint from its script (then the default)."""

    script: dict[str, list[Attempt]] = field(default_factory=dict)
    default: Attempt = field(default_factory=Attempt.delivered)
    sent: list[PushDelivery] = field(default_factory=list)

    def lane(self, push: PushDelivery) -> str:
        return push.endpoint

    async def send(self, push: PushDelivery) -> Attempt:
        self.sent.append(push)
        answers = self.script.get(push.endpoint)
        return answers.pop(0) if answers else self.default

    async def aclose(self) -> None:
        return None


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    store: Any
    clock: FakeClock
    queues: QueueService
    topics: TopicService
    fanout: FanOut
    worker: DeliveryWorker
    transport: ScriptedTransport
    stats: DeliveryStats
    monotonic: FakeMonotonic

    async def queue(self, name: str, attributes: dict[str, str] | None = None) -> QueueRecord:
        return await self.queues.create_queue(QueueKey(ACCOUNT, REGION, name), attributes or {}, {})

    async def topic(self, name: str, attributes: dict[str, str] | None = None) -> str:
        return await self.topics.create_topic(SCOPE, name, attributes or {})

    async def subscribe(self, topic: str, protocol: str, endpoint: str, **attributes: str) -> str:
        """Subscribe and confirm at once (as if the endpoint had visited its SubscribeURL)."""
        arn = await self.topics.subscribe(SCOPE, topic, protocol, endpoint, attributes, return_subscription_arn=True)
        token = await self.topics.pending_token(arn)
        if token is not None:
            await self.topics.confirm_subscription(SCOPE, topic, token, False, True)
        return arn

    async def publish(self, topic: str, message: str, **kwargs: Any) -> str:
        attributes = {
            name: AttributeValue(data_type, value) for name, (data_type, value) in kwargs.pop("attributes", {}).items()
        }
        published = await self.topics.publish(
            SCOPE, PublishRequest(message=message, topic_arn=topic, attributes=attributes, **kwargs)
        )
        return published.message_id

    async def fan_out(self) -> int:
        total = 0
        while claimed := await self.fanout.run_once():
            total += claimed
        return total

    async def deliver(self) -> int:
        return await self.worker.run_until_idle()

    async def receive(self, queue: QueueRecord, count: int = 10) -> list[ReceivedMessage]:
        request = ReceiveRequest(max_messages=count, attribute_names=("All",), message_attribute_names=("All",))
        return await self.queues.receive_message(queue.key, request)

    async def receive_all(self, queue: QueueRecord) -> list[ReceivedMessage]:
        out: list[ReceivedMessage] = []
        while batch := await self.receive(queue):
            out.extend(batch)
            for message in batch:
                await self.queues.delete_message(queue.key, message.receipt_handle)
        return out

    def sent_to(self, endpoint: str) -> list[PushDelivery]:
        return [p for p in self.transport.sent if p.endpoint == endpoint]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path, signer: Signer) -> AsyncIterator[Stack]:
    """The stack over SQLite (a file in tmp_path) and over PostgreSQL (a fresh schema, dropped after)."""
    from loosely.storage import open_store

    drop_schema: str | None = None
    if request.param == "sqlite":
        if not store_has_outbox():
            pytest.skip("the SQLite store does not keep documents and an outbox yet")
        store = open_store(f"sqlite:///{tmp_path / 'delivery.db'}")
    else:
        url: str = request.getfixturevalue("postgres_url")
        drop_schema = f"delivery_{uuid.uuid4().hex[:16]}"
        store = open_store(url, schema=drop_schema, pool_min=1, pool_max=4)
        if not (isinstance(store, DocumentStore) and isinstance(store, OutboxStore)):
            pytest.skip("the PostgreSQL store does not keep documents and an outbox yet")
    await store.open()
    clock = FakeClock()
    ids = SequentialIds()
    queues = QueueService(store, clock, ids, QueueSettings())
    options = DeliveryOptions(idle_poll_s=0.01, shutdown_grace_s=0.5, defer_ms=1000)
    stats = DeliveryStats()
    directory = Directory(store, ttl_s=0.0)  # type: ignore[arg-type]
    queue_directory = QueueDirectory(queues, ttl_s=0.0)
    transport = ScriptedTransport()
    transports = dict.fromkeys(("http", "https", "email", "email-json", "sms", "application"), transport)
    monotonic = FakeMonotonic()
    fanout = FanOut(store, directory, queue_directory, Renderer(signer, PUBLIC_URL), clock, "test", options, stats)  # type: ignore[arg-type]
    topics = TopicService(store, store, clock, ids, admission=fanout.backlog)  # type: ignore[arg-type]  # as the server wires it
    worker = DeliveryWorker(
        store,  # type: ignore[arg-type]
        directory,
        queue_directory,
        transports,
        clock,
        "test",
        options,
        stats,
        FixedRandom(),
        Throttle(monotonic),
    )
    try:
        yield Stack(store, clock, queues, topics, fanout, worker, transport, stats, monotonic)
    finally:
        await worker.stop()
        await store.close()
        if drop_schema is not None:
            import psycopg

            with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{drop_schema}" CASCADE')


def body_json(message: ReceivedMessage) -> dict[str, Any]:
    value = json.loads(message.body)
    assert isinstance(value, dict)
    return value


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Let background tasks run until ``condition`` holds (their work is real I/O, so no fake clock helps).

    The deadline is generous on purpose: on a loaded machine the tasks may need seconds, and a test that
    passes only when the machine is quiet is a flaky test. It returns as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - the tasks signal nothing to wait on
        await asyncio.sleep(0.005)
