"""Several nodes (stores) on one schema: migrations, wake-ups, claims, FIFO and leases across nodes."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, claim, make_queue, msg, send
from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import (
    DeadLetterTarget,
    DeleteOutcome,
    MessageRef,
    MoveTask,
    MoveTaskStatus,
    QueueRecord,
    SendOutcome,
)
from loosely.storage.postgres import PostgresStore
from loosely.storage.postgres._migrate import available_migrations
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres

QUIET = {"wake_fallback_s": 30.0}  # only a notification can wake these waiters quickly


async def woken_within(waiting: PostgresStore, queue_id: int, action: object) -> float:
    """Start a long wait on ``waiting``, run ``action`` (a coroutine), return the wake-up delay."""
    waiter = asyncio.create_task(waiting.wait_for_messages(queue_id, 30.0))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await action  # type: ignore[misc]
    await asyncio.wait_for(waiter, 5.0)
    return time.perf_counter() - started


async def test_nodes_starting_together_migrate_once(open_node: NodeFactory, postgres_url: str, schema: str) -> None:
    nodes = await asyncio.gather(*(open_node() for _ in range(5)))

    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version').fetchall()
    assert [v for (v,) in versions] == [m.version for m in available_migrations()]
    queue = await make_queue(nodes[0])
    assert await nodes[4].get_queue_by_id(queue.id) == queue


async def test_send_on_one_node_wakes_waiter_on_another(open_node: NodeFactory) -> None:
    waiting, sending = await open_node(**QUIET), await open_node()
    queue = await make_queue(sending)

    assert await woken_within(waiting, queue.id, send(sending, queue, "hi")) < 1.0


async def test_fifo_send_and_visibility_change_wake_other_nodes(open_node: NodeFactory) -> None:
    waiting, acting = await open_node(**QUIET), await open_node()
    queue = await make_queue(acting, "w.fifo")

    assert await woken_within(waiting, queue.id, send(acting, queue, "a", group_id="g", dedup_key="k")) < 1.0
    [m] = (await claim(acting, queue)).messages
    change = acting.change_visibility(queue.id, [(MessageRef(m.row_id, m.receive_count), T0)], T0)
    assert await woken_within(waiting, queue.id, change) < 1.0


async def test_dead_letter_move_wakes_dlq_waiters_on_other_nodes(open_node: NodeFactory) -> None:
    waiting, acting = await open_node(**QUIET), await open_node()
    source, dlq = await make_queue(acting, "src"), await make_queue(acting, "dlq")
    await send(acting, source, "poison")
    await claim(acting, source)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)

    move = claim(acting, source, now_ms=T0 + VISIBILITY_MS, dead_letter=target)
    assert await woken_within(waiting, dlq.id, move) < 1.0


async def test_a_node_waiting_too_still_wakes_waiters_on_another(open_node: NodeFactory) -> None:
    # The acting node skips only its own registrations when deciding to notify.
    waiting, acting = await open_node(**QUIET), await open_node(**QUIET)
    queue, dlq = await make_queue(acting, "q"), await make_queue(acting, "dlq")
    for node in (waiting, acting):
        for registered in (queue, dlq):
            assert (await claim(node, registered)).messages == []
            await node.wait_for_messages(registered.id, 5.0)  # registers, then returns for a fresh claim

    assert await woken_within(waiting, queue.id, send(acting, queue, "hi")) < 1.0
    await send(acting, dlq, "back")
    assert await woken_within(waiting, queue.id, acting.move_messages(dlq.id, queue.id, 10, T0)) < 1.0


async def test_claims_on_many_nodes_hand_each_message_out_once(open_node: NodeFactory) -> None:
    nodes = [await open_node() for _ in range(3)]
    queue = await make_queue(nodes[0])
    for start in range(0, 300, 10):
        await send(nodes[start % 3], queue, *(f"m{i}" for i in range(start, start + 10)))

    async def drain(node: PostgresStore) -> list[str]:
        got: list[str] = []
        while batch := (await claim(node, queue, n=7)).messages:
            got += [m.body for m in batch]
        return got

    results = await asyncio.gather(*(drain(node) for node in nodes for _ in range(2)))

    everything = [body for result in results for body in result]
    assert len(everything) == 300
    assert set(everything) == {f"m{i}" for i in range(300)}


async def test_fifo_groups_stay_ordered_and_exclusive_across_nodes(open_node: NodeFactory) -> None:
    nodes = [await open_node() for _ in range(3)]
    queue = await make_queue(nodes[0], "order.fifo")
    groups = [f"g{i}" for i in range(6)]

    async def produce(node: PostgresStore, tag: str) -> None:
        for i in range(15):
            batch = [msg(f"{tag}{i}-{g}", group_id=g, dedup_key=f"{tag}{i}-{g}") for g in groups[i % 2 :: 2]]
            await node.send_messages(queue.id, batch, T0, DEDUP_WINDOW_MS)

    await asyncio.gather(*(produce(node, tag) for node, tag in zip(nodes, "abc", strict=True)))
    delivered: dict[str | None, list[int]] = {g: [] for g in groups}
    in_flight: set[str | None] = set()

    async def consume(node: PostgresStore) -> None:
        idle = 0
        while idle < 3:
            batch = (await claim(node, queue, n=4)).messages
            idle = idle + 1 if not batch else 0
            mine = {m.group_id for m in batch}
            assert not mine & in_flight  # a group is never in flight on two receivers
            in_flight.update(mine)
            for m in batch:
                delivered[m.group_id].append(m.row_id)
            await asyncio.sleep(0.002)  # let other receivers run while these are in flight
            in_flight.difference_update(mine)  # before the delete: it may commit before this task resumes
            await node.delete_messages(queue.id, [MessageRef(m.row_id, m.receive_count) for m in batch])

    await asyncio.gather(*(consume(node) for node in nodes for _ in range(2)))

    assert sum(len(v) for v in delivered.values()) == 3 * 15 * 3
    for sequence in delivered.values():
        assert sequence == sorted(sequence)  # send (sequence) order within each group


async def test_same_dedup_key_from_two_nodes_is_stored_once(open_node: NodeFactory) -> None:
    a, b = await open_node(), await open_node()
    queue = await make_queue(a, "dedup.fifo")

    outcomes = await asyncio.gather(
        *(
            node.send_messages(queue.id, [msg(f"from-{i}", group_id=f"g{i}", dedup_key="same")], T0, DEDUP_WINDOW_MS)
            for i, node in enumerate([a, b, a, b])
        )
    )

    originals = {o[0].message_id for o in outcomes}
    assert len(originals) == 1
    assert sorted(o[0].duplicate for o in outcomes) == [False, True, True, True]
    assert (await a.count_messages(queue.id, T0)).visible == 1


async def test_move_task_lease_goes_to_one_node_at_a_time(open_node: NodeFactory) -> None:
    nodes = [await open_node() for _ in range(3)]
    dlq: QueueRecord = await make_queue(nodes[0], "dlq")
    task = MoveTask("handle-1", dlq.id, dlq.key.arn, None, None, MoveTaskStatus.RUNNING, 0, 0, T0)
    await nodes[0].create_move_task(task)

    leases = await asyncio.gather(*(n.lease_move_task(f"node{i}", T0, 60_000) for i, n in enumerate(nodes * 2)))

    taken = [lease for lease in leases if lease is not None]
    assert len(taken) == 1
    assert await nodes[1].lease_move_task("late", T0 + 30_000, 60_000) is None
    assert (await nodes[2].lease_move_task("after-expiry", T0 + 60_000, 60_000)) is not None


async def seen_within(node: PostgresStore, queue: QueueRecord, expected: str, limit_s: float = 10.0) -> None:
    """Poll ``node`` until it reports VisibilityTimeout ``expected`` for ``queue`` (a notification's latency)."""
    deadline = time.perf_counter() + limit_s
    while (current := await node.get_queue(queue.key)) is None or current.attributes["VisibilityTimeout"] != expected:
        assert time.perf_counter() < deadline, f"{current!r} never showed VisibilityTimeout {expected}"
        await asyncio.sleep(0.005)


async def test_queue_changes_on_one_node_reach_the_cached_records_of_others(open_node: NodeFactory) -> None:
    # Records would be reused for a minute: only the change notification can refresh them in time.
    reader, writer = await open_node(queue_cache_s=60.0), await open_node()
    queue = await make_queue(writer)
    assert (await reader.get_queue(queue.key)) == queue  # cached now

    await writer.update_queue(queue.id, T0 + 1, attributes={"VisibilityTimeout": "45"})
    await seen_within(reader, queue, "45")

    await reader.update_queue(queue.id, T0 + 2, attributes={"VisibilityTimeout": "50"})
    assert (await reader.get_queue(queue.key)).attributes["VisibilityTimeout"] == "50"  # type: ignore[union-attr]


async def test_a_queue_deleted_and_recreated_elsewhere_is_not_served_from_the_cache(open_node: NodeFactory) -> None:
    reader, writer = await open_node(queue_cache_s=60.0), await open_node()
    old = await make_queue(writer)
    assert await reader.get_queue(old.key) == old
    assert await reader.get_queue_by_id(old.id) == old

    await writer.delete_queue(old.id, T0 + 1)
    new = await make_queue(writer)

    deadline = time.perf_counter() + 10.0
    while (seen := await reader.get_queue(old.key)) is not None and seen.id == old.id:
        assert time.perf_counter() < deadline
        await asyncio.sleep(0.005)
    assert seen == new
    assert await reader.get_queue_by_id(old.id) is None
    await send(reader, new, "to the new queue")
    assert (await reader.count_messages(new.id, T0)).visible == 1


async def test_a_purge_elsewhere_refreshes_the_purge_instant_in_cached_records(open_node: NodeFactory) -> None:
    reader, writer = await open_node(queue_cache_s=60.0), await open_node()
    queue = await make_queue(writer, "p.fifo")
    assert (await reader.get_queue(queue.key)).last_purge_ms is None  # type: ignore[union-attr]

    await writer.purge_queue(queue.id, T0 + 5, 60_000)

    deadline = time.perf_counter() + 10.0
    while (await reader.get_queue(queue.key)).last_purge_ms != T0 + 5:  # type: ignore[union-attr]
        assert time.perf_counter() < deadline
        await asyncio.sleep(0.005)


async def test_concurrent_sends_to_several_queues_commit_together_with_their_own_outcomes(
    open_node: NodeFactory,
) -> None:
    node = await open_node()
    a, b, gone = await make_queue(node, "a"), await make_queue(node, "b"), await make_queue(node, "gone")
    await node.delete_queue(gone.id, T0)

    async def send_many(queue: QueueRecord, count: int) -> list[SendOutcome] | BaseException:
        try:
            return await node.send_messages(queue.id, [msg(f"{queue.key.name}-{i}") for i in range(count)], T0, 0)
        except QueueDoesNotExist as error:
            return error

    results = await asyncio.gather(*(send_many(q, n) for q, n in [(a, 3), (gone, 2), (b, 1), (a, 10)] * 4))

    assert all(isinstance(r, QueueDoesNotExist) for r in results[1::4])
    stored = [r for r in results if isinstance(r, list)]
    assert [len(r) for r in stored] == [3, 1, 10] * 4
    sequences = [o.sequence for r in stored for o in r]
    assert len(set(sequences)) == len(sequences)
    for r in stored:
        assert [o.sequence for o in r] == sorted(o.sequence for o in r)  # a batch keeps its order
    assert (await node.count_messages(a.id, T0)).visible == 4 * 13
    assert (await node.count_messages(b.id, T0)).visible == 4
    bodies = sorted(m.body for m in (await claim(node, b, n=10)).messages)
    assert bodies == ["b-0"] * 4


async def test_concurrent_deletes_on_several_queues_commit_together_with_their_own_outcomes(
    open_node: NodeFactory,
) -> None:
    node = await open_node()
    a, b = await make_queue(node, "a"), await make_queue(node, "b")
    for queue in (a, b):
        await node.send_messages(queue.id, [msg(f"{queue.key.name}{i}") for i in range(4)], T0, 0)
    got_a = (await claim(node, a, n=4)).messages
    got_b = (await claim(node, b, n=4)).messages
    refs_a = [MessageRef(m.row_id, m.receive_count) for m in got_a]
    refs_b = [MessageRef(m.row_id, m.receive_count) for m in got_b]
    stale = MessageRef(refs_b[3].row_id, refs_b[3].receive_count - 1)

    results = await asyncio.gather(
        node.delete_messages(a.id, refs_a[:2]),
        node.delete_messages(b.id, [refs_b[0], refs_b[0], stale]),  # a repeated ref, an outdated receipt
        node.delete_messages(a.id, [refs_a[2], refs_b[1]]),  # a receipt of another queue
        node.delete_messages(b.id, [refs_b[2]]),
    )

    assert results == [
        [DeleteOutcome.DELETED, DeleteOutcome.DELETED],
        [DeleteOutcome.DELETED, DeleteOutcome.GONE, DeleteOutcome.STALE],
        [DeleteOutcome.DELETED, DeleteOutcome.GONE],
        [DeleteOutcome.DELETED],
    ]
    left_a = (await claim(node, a, n=10, now_ms=T0 + VISIBILITY_MS)).messages
    left_b = (await claim(node, b, n=10, now_ms=T0 + VISIBILITY_MS)).messages
    assert [m.row_id for m in left_a] == [refs_a[3].row_id]
    assert sorted(m.row_id for m in left_b) == sorted([refs_b[1].row_id, refs_b[3].row_id])


async def test_concurrent_claims_on_one_queue_share_a_statement_but_not_messages(open_node: NodeFactory) -> None:
    node = await open_node()
    queue = await make_queue(node)
    await node.send_messages(queue.id, [msg(f"m{i}", sent_ms=T0 + i, visible_at_ms=T0 + i) for i in range(12)], T0, 0)
    await node.send_messages(queue.id, [msg("later", visible_at_ms=T0 + 5_000)], T0, 0)
    asks = [(5, 1_000), (1, 2_000), (10, 3_000), (3, 4_000)]  # (max messages, visibility), in arrival order

    results = await asyncio.gather(*(claim(node, queue, n=n, now_ms=T0 + 20, visibility_ms=v) for n, v in asks))

    got = [[m.body for m in r.messages] for r in results]
    assert sorted(b for bodies_ in got for b in bodies_) == sorted(f"m{i}" for i in range(12))
    assert all(len(bodies_) <= n for bodies_, (n, _) in zip(got, asks, strict=True))
    assert [m.receive_count for r in results for m in r.messages] == [1] * 12
    empty = [r for r in results if not r.messages]
    assert empty and all(r.next_visible_at_ms == T0 + 20 + 1_000 for r in empty)  # the first in-flight deadline
    for result, (_, visibility) in zip(results, asks, strict=True):  # each with its own visibility deadline
        again = await claim(node, queue, n=10, now_ms=T0 + 20 + visibility)
        assert sorted(m.body for m in again.messages) == sorted(m.body for m in result.messages)
    await node.delete_queue(queue.id, T0 + 30)
    gone = await asyncio.gather(*(claim(node, queue, n=2) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(g, QueueDoesNotExist) for g in gone)
