"""Queue lookups on one node: concurrent misses of one queue share a read, never across an invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contract.helpers import key, make_queue
from loosely.storage.postgres import PostgresStore
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres


def count_reads(store: PostgresStore) -> list[int]:
    """Count the units of work the store runs on its pool from now on."""
    reads = [0]
    run = store._run

    async def counted(work: Callable[[Any], Awaitable[Any]], **kw: Any) -> Any:
        reads[0] += 1
        return await run(work, **kw)

    store._run = counted  # type: ignore[method-assign]
    return reads


async def test_concurrent_lookups_of_an_uncached_queue_share_one_read(open_node: NodeFactory) -> None:
    node = await open_node()
    queue = await make_queue(node, "shared")
    node._queues.clear()  # as when the record expires
    reads = count_reads(node)

    found = await asyncio.gather(*(node.get_queue(key("shared")) for _ in range(12)))

    assert found == [queue] * 12
    assert reads[0] == 1
    assert await node.get_queue(key("shared")) == queue and reads[0] == 1  # and cached


async def test_a_lookup_after_an_invalidation_does_not_join_a_read_begun_before_it(open_node: NodeFactory) -> None:
    node = await open_node()
    queue = await make_queue(node, "changing")
    node._queues.clear()
    reads = count_reads(node)

    before = asyncio.ensure_future(node.get_queue(key("changing")))
    await asyncio.sleep(0)  # its read is in flight
    node._queues.invalidate(queue.id)  # the queue changed (a notification arrived)
    after = asyncio.ensure_future(node.get_queue(key("changing")))

    assert await asyncio.gather(before, after) == [queue, queue]
    assert reads[0] == 2


async def test_management_lookups_read_for_themselves(open_node: NodeFactory) -> None:
    node = await open_node()
    queue = await make_queue(node, "managed")
    node._queues.clear()
    reads = count_reads(node)

    found = await asyncio.gather(node.get_queue(key("managed")), node.get_queue(key("managed"), fresh=True))

    assert found == [queue, queue]
    assert reads[0] == 2
