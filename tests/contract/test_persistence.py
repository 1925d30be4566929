"""Contract: everything acknowledged survives closing and reopening the store."""

from __future__ import annotations

from contract.conftest import Harness
from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, bodies, claim, key, make_queue, msg, send
from contract.test_moves import task
from loosely.core.queues.models import DeleteOutcome, MessageRef, MoveTaskStatus, QueueCounts


async def test_reopen_keeps_queues_messages_and_in_flight_state(harness: Harness) -> None:
    store = harness.store
    assert store is not None
    queue, _ = await store.create_queue(key("keep"), {"DelaySeconds": "0"}, {"t": "1"}, 86_400_000, T0)
    await send(store, queue, "a", "b", "c")
    a, _b = (await claim(store, queue, n=2)).messages
    await store.delete_messages(queue.id, [MessageRef(a.row_id, a.receive_count)])

    store = await harness.reopen()

    assert await store.get_queue(key("keep")) == queue
    assert await store.count_messages(queue.id, T0) == QueueCounts(visible=1, in_flight=1, delayed=0)
    assert bodies(await claim(store, queue, n=10, visibility_ms=600_000)) == ["c"]
    [b_again] = (await claim(store, queue, n=10, now_ms=T0 + VISIBILITY_MS)).messages
    assert (b_again.body, b_again.receive_count, b_again.first_receive_ms) == ("b", 2, T0)


async def test_reopen_keeps_fifo_groups_dedup_and_tombstones(harness: Harness) -> None:
    store = harness.store
    assert store is not None
    fifo = await make_queue(store, "f.fifo")
    first, _ = await store.send_messages(
        fifo.id, [msg("A1", group_id="A", dedup_key="d1"), msg("A2", group_id="A")], T0, DEDUP_WINDOW_MS
    )
    await claim(store, fifo, n=1)
    gone = await make_queue(store, "gone")
    await store.delete_queue(gone.id, T0)

    store = await harness.reopen()

    [dup] = await store.send_messages(fifo.id, [msg("A1", group_id="A", dedup_key="d1")], T0 + 1, DEDUP_WINDOW_MS)
    assert dup.duplicate and dup.message_id == first.message_id
    assert (await claim(store, fifo, n=10, now_ms=T0 + 1)).messages == []  # A1 still in flight
    assert bodies(await claim(store, fifo, n=10, now_ms=T0 + VISIBILITY_MS)) == ["A1", "A2"]
    assert await store.get_queue(key("gone")) is None
    _, created = await store.create_queue(key("gone"), {}, {}, 86_400_000, T0 + 2, deleted_since_ms=T0 + 1)
    assert created


async def test_reopen_keeps_move_tasks(harness: Harness) -> None:
    store = harness.store
    assert store is not None
    await store.create_move_task(task("h1"))
    await store.lease_move_task("node-a", T0, 60_000)

    store = await harness.reopen()

    stored = await store.get_move_task("h1")
    assert stored is not None
    assert (stored.status, stored.lease_owner, stored.lease_until_ms) == (MoveTaskStatus.RUNNING, "node-a", T0 + 60_000)


async def test_row_ids_never_reused_so_stale_receipts_stay_stale(harness: Harness) -> None:
    store = harness.store
    assert store is not None
    queue = await make_queue(store)
    await send(store, queue, "old")
    [old] = (await claim(store, queue)).messages
    await store.delete_messages(queue.id, [MessageRef(old.row_id, old.receive_count)])

    store = await harness.reopen()
    await send(store, queue, "new")
    [new] = (await claim(store, queue)).messages

    assert new.row_id > old.row_id
    assert await store.delete_messages(queue.id, [MessageRef(old.row_id, old.receive_count)]) == [DeleteOutcome.GONE]
