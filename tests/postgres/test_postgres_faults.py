"""Database failures: operations fail fast with ServiceUnavailable, and the store heals itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from psycopg.conninfo import conninfo_to_dict

from contract.helpers import DEDUP_WINDOW_MS, T0, claim, make_queue, msg, send
from loosely.core.errors import ServiceUnavailable
from loosely.storage.postgres import PostgresStore
from postgres._proxy import FlakyProxy
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres

FAST = {"op_timeout_s": 1.5, "pool_timeout_s": 1.0}


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[FlakyProxy]:
    params = conninfo_to_dict(postgres_url)
    p = FlakyProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    await p.start()
    yield p
    await p.stop()


def proxied_url(proxy: FlakyProxy, postgres_url: str) -> str:
    params = conninfo_to_dict(postgres_url)
    return proxy.url(str(params.get("user", "postgres")), str(params.get("dbname", "test")))


async def eventually_sends(store: PostgresStore, queue_id: int, within_s: float) -> float:
    """Retry a send until it succeeds; return how long that took."""
    started = time.perf_counter()
    while True:
        try:
            await store.send_messages(queue_id, [msg("after")], T0, DEDUP_WINDOW_MS)
            return time.perf_counter() - started
        except ServiceUnavailable:
            if time.perf_counter() - started > within_s:
                raise
            await asyncio.sleep(0.1)


async def test_database_down_fails_fast_then_recovers(
    open_node: NodeFactory, proxy: FlakyProxy, postgres_url: str
) -> None:
    store = await open_node(proxied_url(proxy, postgres_url), **FAST)
    queue = await make_queue(store)
    await send(store, queue, "before")

    proxy.down()
    for operation in (
        lambda: store.send_messages(queue.id, [msg("lost")], T0, DEDUP_WINDOW_MS),
        lambda: claim(store, queue),
        lambda: store.count_messages(queue.id, T0),
    ):
        started = time.perf_counter()
        with pytest.raises(ServiceUnavailable):
            await operation()
        assert time.perf_counter() - started < 3.0

    proxy.up()
    assert await eventually_sends(store, queue.id, within_s=10.0) < 10.0
    assert sorted(m.body for m in (await claim(store, queue)).messages) == ["after", "before"]


async def test_hung_database_hits_the_deadline_instead_of_hanging(
    open_node: NodeFactory, proxy: FlakyProxy, postgres_url: str
) -> None:
    store = await open_node(proxied_url(proxy, postgres_url), **FAST)
    queue = await make_queue(store)

    proxy.blackhole()
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable):
        await send(store, queue, "into the void")
    assert time.perf_counter() - started < 3.0

    proxy.up()
    assert await eventually_sends(store, queue.id, within_s=15.0) < 15.0


async def test_open_fails_fast_when_database_is_unreachable(proxy: FlakyProxy, postgres_url: str) -> None:
    proxy.down()
    store = PostgresStore(proxied_url(proxy, postgres_url), schema="pgtest_unreachable", pool_min=1, **FAST)
    started = time.perf_counter()

    with pytest.raises(ServiceUnavailable):
        await store.open()

    assert time.perf_counter() - started < 5.0
    await store.close()


async def test_listener_reconnects_and_wakes_again(
    open_node: NodeFactory, proxy: FlakyProxy, postgres_url: str
) -> None:
    waiting_node = await open_node(proxied_url(proxy, postgres_url), wake_fallback_s=30.0, **FAST)
    sending_node = await open_node()
    queue = await make_queue(sending_node)
    assert waiting_node.listening

    proxy.down()
    await asyncio.sleep(0.2)
    proxy.up()
    for _ in range(100):  # the listener retries with a capped backoff
        if waiting_node.listening:
            break
        await asyncio.sleep(0.1)
    assert waiting_node.listening
    await eventually_sends(waiting_node, queue.id, within_s=10.0)  # its pool has healed too
    await waiting_node.wait_for_messages(queue.id, 0.01)  # registered as waiting again

    waiter = asyncio.create_task(waiting_node.wait_for_messages(queue.id, 30.0))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await send(sending_node, queue, "ping")
    await asyncio.wait_for(waiter, 5.0)
    assert time.perf_counter() - started < 2.0
