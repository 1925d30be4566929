"""What only the SQLite backend promises: URLs, migrations, group commit, error mapping, kill -9 durability."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, bodies, claim, key, make_queue, msg
from loosely.core.errors import ServiceUnavailable
from loosely.core.queues.models import DeleteOutcome, MessageRef, QueueCounts
from loosely.storage import StoreOpenError, open_store
from loosely.storage.sqlite import SqliteStore
from loosely.storage.sqlite.messages import COUNT_MESSAGES
from loosely.storage.sqlite.writer import Tx


async def opened(path: Path, **options: str) -> SqliteStore:
    store = open_store(f"sqlite:///{path}", **options)
    assert isinstance(store, SqliteStore)
    await store.open()
    return store


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SqliteStore)
    assert open_store("sqlite://:memory:").path == ":memory:"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="absolute path"):
        open_store("sqlite://relative.db")
    with pytest.raises(ValueError, match="unsupported"):
        open_store("mysql://localhost/db")


async def test_in_memory_store_works(tmp_path: Path) -> None:
    store = open_store("sqlite://:memory:")
    await store.open()
    try:
        queue = await make_queue(store)
        await store.send_messages(queue.id, [msg("m")], T0, DEDUP_WINDOW_MS)
        assert [m.body for m in (await claim(store, queue)).messages] == ["m"]
    finally:
        await store.close()


async def test_a_database_file_serves_one_store_at_a_time(tmp_path: Path) -> None:
    """A second store (a second node) on the same file would keep its own caches and wake-ups: refused."""
    first = await opened(tmp_path / "one.db")
    second = open_store(f"sqlite://{tmp_path}/one.db")
    try:
        in_use = rf"one\.db is in use by another loosely process \(pid {os.getpid()}\)"
        with pytest.raises(StoreOpenError, match=in_use):
            await second.open()
        queue = await make_queue(first)  # the first is unaffected
        await first.send_messages(queue.id, [msg("still mine")], T0, DEDUP_WINDOW_MS)
    finally:
        await first.close()
    await second.open()  # free once the first closed
    try:
        assert [m.body for m in (await claim(second, queue)).messages] == ["still mine"]
    finally:
        await second.close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The kernel drops the lock with its process, so a store opens after a ``kill -9`` without any clean-up."""
    holder = textwrap.dedent(
        f"""
        import asyncio, sys
        from loosely.storage import open_store
        async def main():
            await open_store("sqlite://{tmp_path}/held.db").open()
            print("open", flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        with pytest.raises(StoreOpenError, match=f"pid {proc.pid}"):
            asyncio.run(open_store(f"sqlite://{tmp_path}/held.db").open())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    async def reopen() -> None:
        store = open_store(f"sqlite://{tmp_path}/held.db")
        await store.open()
        await store.close()

    asyncio.run(reopen())


async def test_invalid_synchronous_fails_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db", synchronous="SOMETIMES")
    with pytest.raises(ValueError, match="synchronous"):
        await store.open()


async def test_migrations_recorded_once_and_wal_enabled(tmp_path: Path) -> None:
    for _ in range(2):
        store = await opened(tmp_path / "m.db", synchronous="NORMAL")
        await store.close()

    with sqlite3.connect(tmp_path / "m.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    # 0002: documents and the outbox; 0003: FIFO groups ready by their head; 0004: message counters;
    # 0005: the SNS FIFO message archive; 0006: inserts counted per statement; 0007: visibility changes
    # recorded for receive attempts; 0008: messages deleted in chunks; 0009: expiry rewritten in chunks
    assert versions == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert journal == "wal"


async def test_migration_0003_sets_fifo_groups_ready_at_their_heads(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = await opened(path)
    queue = await make_queue(store, "f.fifo")
    await store.send_messages(queue.id, [msg("a", group_id="g"), msg("b", group_id="g")], T0, DEDUP_WINDOW_MS)
    await store.close()
    with sqlite3.connect(path) as conn:  # as the earlier rule could leave it: waiting past the head
        conn.execute("UPDATE fifo_groups SET ready_at_ms = ?", (T0 + 999_999,))
        conn.execute("DELETE FROM schema_migrations WHERE version = 3")

    store = await opened(path)
    try:
        assert bodies(await claim(store, queue, n=10)) == ["a", "b"]
    finally:
        await store.close()


async def test_migration_0004_counts_the_messages_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    store = await opened(path)
    queue = await make_queue(store)
    await store.send_messages(queue.id, [msg("a"), msg("b"), msg("c")], T0, DEDUP_WINDOW_MS)
    await claim(store, queue, n=1)
    await store.close()
    with sqlite3.connect(path) as conn:  # as a database written before the counters existed
        for trigger in ("on_create", "on_drop"):
            conn.execute(f"DROP TRIGGER queue_counts_{trigger}")
        conn.execute("DROP TABLE queue_counts")
        conn.execute("DELETE FROM schema_migrations WHERE version IN (4, 6)")

    store = await opened(path)
    try:
        assert await store.count_messages(queue.id, T0) == QueueCounts(visible=2, in_flight=1, delayed=0)
        await store.send_messages(queue.id, [msg("d")], T0, DEDUP_WINDOW_MS)
        assert (await store.count_messages(queue.id, T0)).visible == 3
    finally:
        await store.close()


async def test_migration_0006_counts_each_insert_once(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = await opened(path)
    queue, fifo_queue = await make_queue(store), await make_queue(store, "c.fifo")
    await store.close()
    with sqlite3.connect(path) as conn:  # as a database at 0004, which counted inserts with a row trigger
        conn.execute(
            "CREATE TRIGGER queue_counts_on_insert AFTER INSERT ON messages BEGIN"
            " UPDATE queue_counts SET messages = messages + 1 WHERE queue_id = NEW.queue_id; END"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")

    store = await opened(path)
    try:
        await store.send_messages(queue.id, [msg("a")], T0, DEDUP_WINDOW_MS)
        await store.send_messages(queue.id, [msg(f"b{i}") for i in range(10)], T0, DEDUP_WINDOW_MS)
        fifo_batch = [msg("f", group_id="g", dedup_key="k"), msg("f", group_id="g", dedup_key="k")]
        await store.send_messages(fifo_queue.id, fifo_batch, T0, DEDUP_WINDOW_MS)
        assert await store.count_messages(queue.id, T0) == QueueCounts(visible=11, in_flight=0, delayed=0)
        assert await store.count_messages(fifo_queue.id, T0) == QueueCounts(visible=1, in_flight=0, delayed=0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    assert "queue_counts_on_insert" not in triggers


async def test_migration_0007_keeps_attempts_in_flight_repeatable(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = await opened(path)
    queue = await make_queue(store, "a.fifo")
    batch = [msg(name, group_id=name[0], sent_ms=T0) for name in ("A1", "B1", "C1")]
    await store.send_messages(queue.id, batch, T0, DEDUP_WINDOW_MS)
    await claim(store, queue, n=1, attempt_id="kept")
    [b1] = (await claim(store, queue, n=1, attempt_id="changed")).messages
    await store.close()
    with sqlite3.connect(path) as conn:  # as a database at 0006, with those two attempts in flight
        conn.execute("ALTER TABLE messages DROP COLUMN visibility_changed_in")
        conn.execute("DELETE FROM schema_migrations WHERE version = 7")

    store = await opened(path)
    try:
        assert bodies(await claim(store, queue, n=1, now_ms=T0 + 1, attempt_id="kept")) == ["A1"]
        await store.change_visibility(queue.id, [(MessageRef(b1.row_id, b1.receive_count), T0 + VISIBILITY_MS)], T0 + 2)
        assert bodies(await claim(store, queue, n=1, now_ms=T0 + 3, attempt_id="changed")) == ["C1"]
    finally:
        await store.close()


async def test_count_reads_the_not_visible_messages_not_the_depth(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    store = await opened(path)
    try:
        shallow, deep = await make_queue(store, "shallow"), await make_queue(store, "deep")
        for queue, depth in ((shallow, 10), (deep, 20_000)):
            for start in range(0, depth, 1_000):
                batch = [msg(f"m{i}") for i in range(start, min(start + 1_000, depth))]
                await store.send_messages(queue.id, batch, T0, DEDUP_WINDOW_MS)
            await claim(store, queue, n=5)
            await store.send_messages(queue.id, [msg("later", visible_at_ms=T0 + 5_000)], T0, DEDUP_WINDOW_MS)
        assert await store.count_messages(deep.id, T0) == QueueCounts(visible=19_995, in_flight=5, delayed=1)
    finally:
        await store.close()

    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {COUNT_MESSAGES}", {"queue": deep.id, "now": T0})]
        shallow_cost = _count_cost(conn, COUNT_MESSAGES, {"queue": shallow.id, "now": T0})
        deep_cost = _count_cost(conn, COUNT_MESSAGES, {"queue": deep.id, "now": T0})
        full_scan_cost = _count_cost(conn, "SELECT count(*) FROM messages WHERE queue_id = ?", (deep.id,))
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert any("messages_by_visibility (queue_id=? AND visible_at_ms>?)" in step for step in plan), plan
    assert any("messages_by_expiry (expires_at_ms<?)" in step for step in plan), plan
    assert full_scan_cost > 20 * max(deep_cost, 1)  # the probe does see a scan of the depth
    assert deep_cost <= shallow_cost + 1


def _count_cost(conn: sqlite3.Connection, sql: str, params: Mapping[str, object] | tuple[object, ...]) -> int:
    """Virtual-machine steps (in thousands) one statement takes: a deterministic measure, unlike time."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(tick, 1_000)
    try:
        conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    return steps


async def test_close_checkpoints_wal_and_later_calls_fail(tmp_path: Path) -> None:
    store = await opened(tmp_path / "c.db")
    queue = await make_queue(store)
    await store.send_messages(queue.id, [msg()], T0, DEDUP_WINDOW_MS)

    await store.close()

    wal = tmp_path / "c.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with pytest.raises(ServiceUnavailable):
        await store.send_messages(queue.id, [msg()], T0, DEDUP_WINDOW_MS)


async def test_concurrent_sends_share_commits(tmp_path: Path) -> None:
    store = await opened(tmp_path / "g.db")
    try:
        queue = await make_queue(store)
        before = store.groups_committed

        await asyncio.gather(*(store.send_messages(queue.id, [msg()], T0, DEDUP_WINDOW_MS) for _ in range(100)))

        assert store.groups_committed - before < 50
        assert (await store.count_messages(queue.id, T0)).visible == 100
    finally:
        await store.close()


async def test_driver_error_in_one_item_is_service_unavailable_and_isolated(tmp_path: Path) -> None:
    store = await opened(tmp_path / "e.db")
    writer = store._writer
    try:
        queue = await make_queue(store)

        def broken(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO messages (queue_id) VALUES (1)")  # violates NOT NULL

        results = await asyncio.gather(
            store.send_messages(queue.id, [msg("kept")], T0, DEDUP_WINDOW_MS),
            writer.submit(broken),
            return_exceptions=True,
        )

        assert isinstance(results[1], ServiceUnavailable)
        assert (await store.count_messages(queue.id, T0)).visible == 1
    finally:
        await store.close()


async def test_queue_cache_follows_every_change(tmp_path: Path) -> None:
    store = await opened(tmp_path / "k.db")
    try:
        queue = await make_queue(store)
        updated = await store.update_queue(queue.id, T0 + 1, attributes={"A": "1"})
        assert await store.get_queue(key("q")) == updated
        await store.purge_queue(queue.id, T0 + 2, 60_000)
        purged = await store.get_queue_by_id(queue.id)
        assert purged is not None and purged.last_purge_ms == T0 + 2
        await store.delete_queue(queue.id, T0 + 3)
        assert await store.list_queues("123456789012", "us-east-1") == []
    finally:
        await store.close()


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from loosely.storage import open_store
    from loosely.core.queues.models import NewMessage, QueueKey

    async def main(path, synchronous):
        store = open_store("sqlite:///" + path, synchronous=synchronous)
        await store.open()
        queue, _ = await store.create_queue(QueueKey("1", "r", "q"), {}, {}, 86_400_000, 0)
        counter = iter(range(10**9))

        async def sender():
            while True:
                n = next(counter)
                await store.send_messages(queue.id, [NewMessage(f"m{n}", "b", "{}", 0, 0)], 0, 0)
                sys.stdout.write(f"m{n}\\n")
                sys.stdout.flush()

        await asyncio.gather(*(sender() for _ in range(20)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", ["FULL", "PIPELINED"])
async def test_acknowledged_sends_survive_kill_9(tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "k9.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path), synchronous, stdout=asyncio.subprocess.PIPE, env=os.environ.copy()
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < 500:
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert line, "the child process died"
            acknowledged.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()

    store = await opened(path)
    try:
        queue = await store.get_queue(key("q", account="1", region="r"))
        assert queue is not None
        with sqlite3.connect(path) as conn:
            stored = {r[0] for r in conn.execute("SELECT message_id FROM messages")}
        assert set(acknowledged) <= stored
    finally:
        await store.close()


async def test_count_reads_aside_and_sees_acknowledged_writes(tmp_path: Path) -> None:
    store = await opened(tmp_path / "r.db")
    try:
        queue = await make_queue(store)
        sends = [store.send_messages(queue.id, [msg()], T0, DEDUP_WINDOW_MS) for _ in range(50)]
        counts = await asyncio.gather(*sends, store.count_messages(queue.id, T0))
        assert 0 <= counts[-1].visible <= 50  # type: ignore[union-attr]
        assert (await store.count_messages(queue.id, T0)).visible == 50
    finally:
        await store.close()


async def test_programming_error_reaches_its_caller_unchanged_and_writer_lives_on(tmp_path: Path) -> None:
    store = await opened(tmp_path / "p.db")
    try:
        queue = await make_queue(store)

        def buggy(tx: Tx) -> None:
            tx.conn.execute("DELETE FROM messages")
            raise KeyError("bug")

        await store.send_messages(queue.id, [msg("survives")], T0, DEDUP_WINDOW_MS)
        with pytest.raises(KeyError):
            await store._writer.submit(buggy)

        assert (await store.count_messages(queue.id, T0)).visible == 1  # the buggy item was rolled back
        assert [m.body for m in (await claim(store, queue)).messages] == ["survives"]
    finally:
        await store.close()


def _wal_frames(path: Path) -> int:
    """Frames in the WAL since it was last emptied (a passive checkpoint reports them and changes nothing)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def _empty_wal(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() == (0, 0, 0)


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_receiving_and_deleting_a_large_message_does_not_rewrite_its_body(tmp_path: Path, fifo: bool) -> None:
    """A 400 KB body spans about 100 pages; its receives and its delete write a few pages each, not those.

    Except the second receive: a count of 1 takes no bytes and one of 2 takes one, so that once the
    record changes size (see `NOT_RECEIVED_MS`)."""
    path = tmp_path / "big.db"
    store = await opened(path)
    try:
        queue = await make_queue(store, "big.fifo" if fifo else "big")
        group = {"group_id": "g"} if fifo else {}
        await store.send_messages(queue.id, [msg(os.urandom(200_000).hex(), **group)], T0, DEDUP_WINDOW_MS)
        first_receive = T0 + VISIBILITY_MS + 1
        for receive in range(1, 4):  # each after the previous one's visibility timeout ran out
            now = T0 + receive * VISIBILITY_MS + receive
            _empty_wal(path)
            (received,) = (await claim(store, queue, now_ms=now)).messages
            assert receive == 2 or _wal_frames(path) < 12
            assert (received.receive_count, received.first_receive_ms) == (receive, first_receive)
        _empty_wal(path)
        outcome = await store.delete_messages(queue.id, [MessageRef(received.row_id, received.receive_count)])
        assert outcome == [DeleteOutcome.DELETED]
        assert _wal_frames(path) < 12
    finally:
        await store.close()
