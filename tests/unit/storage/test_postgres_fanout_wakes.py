"""SNS fan-out on PostgreSQL wakes other nodes only when this node's own receivers cannot take the messages.

Two stores on one schema act as two nodes. A receiver waits on a queue on each; node A fans a
message out to the queue. A's receiver has room for it, so, as for a SendMessage on A, the send
carries no NOTIFY: B's receiver (and A's, a second time) would only wake to find it taken. An
independent LISTEN connection counts what the database delivered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from loosely.core.documents import FanOutResult, NewPublication
from loosely.core.queues.models import ClaimRequest, ClaimResult, NewMessage, QueueKey
from loosely.storage.postgres import PostgresStore
from loosely.storage.postgres._sql import channel_name

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000_000
DEDUP_WINDOW_MS = 300_000
TOPIC = "arn:aws:sns:us-east-1:000000000000:t"
MARKER = "end-of-test"
_WAIT_S = 5.0
"""A long poll's wait (within a registration's lifetime, so the node registers once)."""


@pytest.fixture
async def schema(postgres_url: str) -> AsyncIterator[str]:
    name = f"fanout_{uuid.uuid4().hex[:16]}"
    yield name
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def nodes(postgres_url: str, schema: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    # Waits end by a wake-up only, never by the timed fallback that bounds a lost one.
    a = PostgresStore(postgres_url, schema=schema, pool_min=1, pool_max=4, wake_fallback_s=60)
    await a.open()
    b = PostgresStore(postgres_url, schema=schema, pool_min=1, pool_max=4, wake_fallback_s=60)
    await b.open()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


def _claim(now_ms: int) -> ClaimRequest:
    return ClaimRequest(max_messages=10, now_ms=now_ms, visible_until_ms=now_ms + 30_000)


async def _long_poll(store: PostgresStore, queue_id: int) -> ClaimResult:
    """What the service does: claim and wait until something comes (the first wait after registering returns)."""
    for attempt in range(100):
        result = await store.claim_messages(queue_id, _claim(NOW + attempt))
        if result.messages:
            return result
        await store.wait_for_messages(queue_id, _WAIT_S)
    raise AssertionError("nothing came")


async def _notifications(postgres_url: str, schema: str, heard: list[str], listening: asyncio.Event) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel_name(schema))))
        listening.set()
        async for notify in conn.notifies():
            heard.append(notify.payload)
            if notify.payload == MARKER:
                return


async def test_a_fan_out_this_nodes_receiver_takes_notifies_nobody(
    nodes: tuple[PostgresStore, PostgresStore], postgres_url: str, schema: str
) -> None:
    a, b = nodes
    queue, _ = await a.create_queue(QueueKey("000000000000", "us-east-1", "q"), {}, {}, 3_600_000, NOW)
    heard: list[str] = []
    listening = asyncio.Event()
    listener = asyncio.ensure_future(_notifications(postgres_url, schema, heard, listening))
    await asyncio.wait_for(listening.wait(), 10)
    here = asyncio.ensure_future(_long_poll(a, queue.id))
    there = asyncio.ensure_future(_long_poll(b, queue.id))
    try:
        for _ in range(1000):  # both registered and waiting
            if a._waiters.waiting(queue.id) and b._waiters.waiting(queue.id):
                break
            await asyncio.sleep(0.005)
        [outcome] = await a.add_publications([NewPublication(TOPIC, "p", "{}")], NOW, DEDUP_WINDOW_MS)
        message = NewMessage(message_id="m", body="fanned out", meta="{}", sent_ms=NOW, visible_at_ms=NOW)

        await a.complete_publications([FanOutResult(outcome.sequence, [(queue.id, message)])], NOW, DEDUP_WINDOW_MS)

        got = await asyncio.wait_for(here, _WAIT_S - 1)  # woken, not timed out
        assert [m.body for m in got.messages] == ["fanned out"]
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            # Notifications arrive in commit order: once the marker is heard, any NOTIFY of the fan-out was too.
            await conn.execute("SELECT pg_notify(%s, %s)", (channel_name(schema), MARKER))
        await asyncio.wait_for(listener, 10)
        assert str(queue.id) not in heard
    finally:
        for task in (here, there, listener):
            task.cancel()
        await asyncio.gather(here, there, listener, return_exceptions=True)


async def test_a_fan_out_whose_receiver_here_went_away_before_the_commit_wakes_the_other_node(
    nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    queue, _ = await a.create_queue(QueueKey("000000000000", "us-east-1", "q"), {}, {}, 3_600_000, NOW)
    here = asyncio.ensure_future(_long_poll(a, queue.id))
    there = asyncio.ensure_future(_long_poll(b, queue.id))
    run = a._run

    async def run_once_the_receiver_here_left(work: Any, **options: Any) -> Any:
        here.cancel()  # after the fan-out counted on it, before its transaction
        await asyncio.gather(here, return_exceptions=True)
        return await run(work, **options)

    try:
        for _ in range(1000):
            if a._waiters.waiting(queue.id) and b._waiters.waiting(queue.id):
                break
            await asyncio.sleep(0.005)
        [outcome] = await a.add_publications([NewPublication(TOPIC, "p", "{}")], NOW, DEDUP_WINDOW_MS)
        message = NewMessage(message_id="m", body="fanned out", meta="{}", sent_ms=NOW, visible_at_ms=NOW)
        monkeypatch.setattr(a, "_run", run_once_the_receiver_here_left)

        await a.complete_publications([FanOutResult(outcome.sequence, [(queue.id, message)])], NOW, DEDUP_WINDOW_MS)

        # The NOTIFY follows the commit after all: the receiver on the other node wakes and takes the message.
        got = await asyncio.wait_for(there, _WAIT_S - 1)
        assert [m.body for m in got.messages] == ["fanned out"]
    finally:
        for task in (here, there):
            task.cancel()
        await asyncio.gather(here, there, return_exceptions=True)
