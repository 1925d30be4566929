"""Contract: message counts stay exact through every kind of write, without reading the depth.

Counts are a stored total less the not-visible and expired messages, so each test here walks one
write path (sends, duplicates, dead-lettering, deletes, moves, expiry, purges, queue deletion) and
checks the counts afterwards on a quiet queue, where they must be exact.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from contract.conftest import Harness
from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, claim, key, make_queue, msg, send
from loosely.core.documents import FanOutResult, NewPublication
from loosely.core.ports import OutboxStore, QueueStore
from loosely.core.queues.models import DeadLetterTarget, MessageRef, QueueCounts
from loosely.storage.sqlite import messages as sqlite_messages
from loosely.storage.sqlite.schema import migrate

TOPIC = "arn:aws:sns:us-east-1:123456789012:counted"


async def test_counts_follow_sends_claims_and_deletes(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, *[f"m{i}" for i in range(25)])
    await send(store, queue, "later", visible_at_ms=T0 + 10_000)
    taken = await claim(store, queue, n=10)

    before_delete = await store.count_messages(queue.id, T0)
    await store.delete_messages(queue.id, [MessageRef(m.row_id, m.receive_count) for m in taken.messages[:4]])
    after_delete = await store.count_messages(queue.id, T0)
    after_timeout = await store.count_messages(queue.id, T0 + VISIBILITY_MS)

    assert before_delete == QueueCounts(visible=15, in_flight=10, delayed=1)
    assert after_delete == QueueCounts(visible=15, in_flight=6, delayed=1)
    assert after_timeout == QueueCounts(visible=22, in_flight=0, delayed=0)


async def test_fifo_duplicates_are_not_counted(store: QueueStore) -> None:
    queue = await make_queue(store, "q.fifo")
    first = [msg("a", group_id="g", dedup_key="k1"), msg("b", group_id="g", dedup_key="k2")]
    again = [msg("a", group_id="g", dedup_key="k1"), msg("c", group_id="h", dedup_key="k3")]

    await store.send_messages(queue.id, first, T0, DEDUP_WINDOW_MS)
    await store.send_messages(queue.id, again, T0, DEDUP_WINDOW_MS)

    assert await store.count_messages(queue.id, T0) == QueueCounts(visible=3, in_flight=0, delayed=0)


async def test_counts_follow_dead_lettering_and_moves_back(store: QueueStore) -> None:
    source, dlq = await make_queue(store, "src"), await make_queue(store, "dlq")
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await send(store, source, "a", "b", "c")
    await claim(store, source, n=2, dead_letter=target)
    later = T0 + VISIBILITY_MS

    moving = await claim(store, source, n=10, now_ms=later, dead_letter=target)
    dead_lettered = (await store.count_messages(source.id, later), await store.count_messages(dlq.id, later))
    moved = await store.move_messages(dlq.id, None, 10, later)
    moved_back = (await store.count_messages(source.id, later), await store.count_messages(dlq.id, later))

    assert moving.moved_to_dead_letter == 2
    assert dead_lettered == (QueueCounts(0, 1, 0), QueueCounts(2, 0, 0))
    assert moved == 2
    assert moved_back == (QueueCounts(2, 1, 0), QueueCounts(0, 0, 0))


async def test_expired_messages_leave_the_counts_before_and_after_they_are_reaped(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=60_000)
    await send(store, queue, "old1", "old2", now_ms=T0)
    await send(store, queue, "new", now_ms=T0 + 30_000)
    await claim(store, queue, n=1, now_ms=T0 + 30_000, visibility_ms=60_000)  # old1, in flight past its expiry

    unreaped = await store.count_messages(queue.id, T0 + 60_000)
    reaped = await store.expire_messages(T0 + 60_000, 100)
    after = await store.count_messages(queue.id, T0 + 60_000)

    assert unreaped == QueueCounts(visible=1, in_flight=0, delayed=0)
    assert reaped == 2
    assert after == unreaped


async def test_expired_messages_a_claim_passes_over_leave_the_counts(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=60_000)
    await send(store, queue, "old", now_ms=T0)
    await send(store, queue, "new", now_ms=T0 + 50_000)

    taken = await claim(store, queue, n=10, now_ms=T0 + 60_000, visibility_ms=10_000)  # meets "old" expired

    assert [m.body for m in taken.messages] == ["new"]
    assert await store.count_messages(queue.id, T0 + 60_000) == QueueCounts(visible=0, in_flight=1, delayed=0)
    assert await store.expire_messages(T0 + 60_000, 100) in (0, 1)  # the claim may have dropped it already
    assert await store.count_messages(queue.id, T0 + 70_000) == QueueCounts(visible=1, in_flight=0, delayed=0)


async def test_fifo_counts_follow_moves_between_fifo_queues(store: QueueStore) -> None:
    source, dlq = await make_queue(store, "src.fifo"), await make_queue(store, "dlq.fifo")
    await store.send_messages(dlq.id, [msg(f"m{i}", group_id=f"g{i % 2}") for i in range(4)], T0, DEDUP_WINDOW_MS)

    moved = await store.move_messages(dlq.id, source.id, 3, T0)

    assert moved == 3
    assert await store.count_messages(dlq.id, T0) == QueueCounts(1, 0, 0)
    assert await store.count_messages(source.id, T0) == QueueCounts(3, 0, 0)


async def test_purge_and_queue_deletion_reset_the_counts(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b", "c")
    await claim(store, queue, n=1)

    await store.purge_queue(queue.id, T0 + 1, 60_000)
    await send(store, queue, "after", now_ms=T0 + 2)
    purged = await store.count_messages(queue.id, T0 + 2)
    await store.delete_queue(queue.id, T0 + 3)
    recreated, _ = await store.create_queue(key("q"), {}, {}, queue.retention_ms, T0 + 4)

    assert purged == QueueCounts(visible=1, in_flight=0, delayed=0)
    assert await store.count_messages(recreated.id, T0 + 4) == QueueCounts(0, 0, 0)


async def test_counts_follow_a_fan_out_to_many_queues(store: QueueStore) -> None:
    if not isinstance(store, OutboxStore):
        pytest.skip(f"{type(store).__name__} does not keep an outbox")
    queues = [await make_queue(store, f"fan-{i}") for i in range(4)]
    fifo = await make_queue(store, "fan.fifo")
    added = await store.add_publications(
        [NewPublication(topic_arn=TOPIC, message_id=f"p{i}", payload="{}") for i in range(3)], T0, DEDUP_WINDOW_MS
    )
    results = [
        FanOutResult(
            outcome.sequence,
            [(q.id, msg(f"p{i}")) for q in queues[: 4 - i]]  # 3, 3, 2 and 1 messages
            + [(fifo.id, msg(f"p{i}", group_id="g", dedup_key="same"))],  # 1: the others are duplicates
        )
        for i, outcome in enumerate(added)
    ]

    await store.complete_publications(results, T0, DEDUP_WINDOW_MS)
    taken = await claim(store, queues[0], n=2)
    await store.delete_messages(queues[0].id, [MessageRef(m.row_id, m.receive_count) for m in taken.messages[:1]])

    assert [await store.count_messages(q.id, T0) for q in (*queues, fifo)] == [
        QueueCounts(visible=1, in_flight=1, delayed=0),
        QueueCounts(visible=3, in_flight=0, delayed=0),
        QueueCounts(visible=2, in_flight=0, delayed=0),
        QueueCounts(visible=1, in_flight=0, delayed=0),
        QueueCounts(visible=1, in_flight=0, delayed=0),
    ]


def test_sqlite_counts_of_many_queues_are_updated_by_primary_key() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, T0)
    sql = sqlite_messages._count_many(3)

    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (1, 1, 2, 3))]

    assert plan == ["SEARCH queue_counts USING INTEGER PRIMARY KEY (rowid=?)"]


# ---- PostgreSQL: sharded counters and the plan of the count ----


def _postgres(harness: Harness) -> Any:
    if harness.backend != "postgres":
        pytest.skip("PostgreSQL's counters and query plans")
    return harness.store


async def test_postgres_folds_counters_of_exited_backends(harness: Harness) -> None:
    store = _postgres(harness)
    queue = await make_queue(store)
    await send(store, queue, "a", "b")
    schema = store.schema

    async def plant(conn: Any) -> None:  # a backend that wrote 5 messages and exited (no pid is negative)
        await conn.execute(f'INSERT INTO "{schema}".queue_counts VALUES (%s, -7, 5)', (queue.id,))

    async def shards(conn: Any) -> list[tuple[int, int]]:
        cur = await conn.execute(
            f'SELECT shard, messages FROM "{schema}".queue_counts WHERE queue_id = %s ORDER BY shard', (queue.id,)
        )
        return [tuple(r) for r in await cur.fetchall()]

    await store._run(plant)
    planted = await store.count_messages(queue.id, T0)
    await store.expire_messages(T0, 100)
    folded = await store._run(shards)

    assert planted.visible == 7
    assert (await store.count_messages(queue.id, T0)).visible == 7
    assert [shard for shard, _ in folded if shard <= 0] == [0]  # -7 folded into the total
    assert sum(messages for _, messages in folded) == 7


async def test_postgres_counts_sum_the_rows_of_every_backend(harness: Harness) -> None:
    here = _postgres(harness)
    there = harness._factory()  # a second node: its own pool, so its own backends
    await there.open()
    try:
        queue = await make_queue(here)
        await send(here, queue, "a", "b", "c")
        await send(there, queue, "d", "e")
        taken = await claim(there, queue, n=1)
        await there.delete_messages(queue.id, [MessageRef(taken.messages[0].row_id, 1)])

        assert await here.count_messages(queue.id, T0) == QueueCounts(visible=4, in_flight=0, delayed=0)
        assert await there.count_messages(queue.id, T0) == QueueCounts(visible=4, in_flight=0, delayed=0)
    finally:
        await there.close()


async def test_postgres_count_plan_reads_no_visible_backlog(harness: Harness) -> None:
    store = _postgres(harness)
    deep = await make_queue(store, "deep")
    for start in range(0, 20_000, 2_000):
        await store.send_messages(deep.id, [msg(f"m{i}") for i in range(start, start + 2_000)], T0, DEDUP_WINDOW_MS)
    await claim(store, deep, n=5)
    schema = store.schema

    async def plan(conn: Any) -> Any:
        await conn.execute(f'ANALYZE "{schema}".messages')
        cur = await conn.execute(f"EXPLAIN (FORMAT JSON) {store._sql.count_messages}", {"q": deep.id, "now": T0})
        row = await cur.fetchone()
        return row[0]

    nodes: list[dict[str, Any]] = []
    pending = [(await store._run(plan))[0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))
    on_messages = [n for n in nodes if n.get("Relation Name") == "messages"]

    assert await store.count_messages(deep.id, T0) == QueueCounts(visible=19_995, in_flight=5, delayed=0)
    assert on_messages and all(n["Node Type"] != "Seq Scan" for n in on_messages), json.dumps(on_messages)
    assert {n.get("Index Name") for n in on_messages} == {"messages_by_visibility", "messages_by_expiry"}
    conditions = {n["Index Name"]: n.get("Index Cond", "") for n in on_messages}
    assert "visible_at_ms >" in conditions["messages_by_visibility"]  # a range: not-visible rows only
    assert "expires_at_ms <=" in conditions["messages_by_expiry"]


async def test_postgres_count_is_never_planned_in_parallel(harness: Harness) -> None:
    """Even where the planner would think parallel workers free (after a burst of deletes its
    statistics once made it start two, 5 ms, for a scan of two index pages)."""
    store = _postgres(harness)
    queue = await make_queue(store, "churned")
    await store.send_messages(queue.id, [msg(f"m{i}") for i in range(2_000)], T0, DEDUP_WINDOW_MS)
    schema = store.schema

    async def plan(conn: Any) -> str:
        await conn.execute(f'ANALYZE "{schema}".messages')
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            await conn.execute(f"SET {setting} = 0")
        await conn.execute("SET min_parallel_index_scan_size = 0")
        try:
            cur = await conn.execute(
                f"EXPLAIN (FORMAT JSON) {store._sql.count_messages}", {"q": queue.id, "now": T0 + 10**12}
            )
            row = await cur.fetchone()
            return json.dumps(row[0])
        finally:
            await conn.execute("RESET ALL")

    explained = await store._run(plan)

    assert "Gather" not in explained and '"Parallel Aware": true' not in explained, explained
