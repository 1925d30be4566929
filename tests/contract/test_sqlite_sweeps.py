"""PurgeQueue and DeleteQueue on SQLite delete messages, and a new retention period rewrites their expiry,
in chunks that other work commits between."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, bodies, claim, make_queue, msg, send
from loosely.storage import open_store
from loosely.storage.sqlite import SqliteStore, sweeps
from loosely.storage.sqlite.writer import Tx

CHUNK = 5


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeps, "SWEEP_CHUNK", CHUNK)
    monkeypatch.setattr(sweeps, "REWRITE_SPAN", CHUNK)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = open_store(f"sqlite:///{tmp_path}/s.db")
    assert isinstance(opened, SqliteStore)
    await opened.open()
    yield opened
    await opened.close()


def stored(path: Path, queue_id: int) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()[0])


async def test_purge_commits_chunk_by_chunk_and_other_writes_go_between(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, other = await make_queue(store), await make_queue(store, "other")
    await send(store, queue, *(f"old {i}" for i in range(23)))
    await send(store, queue, "sent after the purge began", now_ms=T0 + 2)
    before = store.groups_committed
    loop, first_chunk = asyncio.get_running_loop(), asyncio.Event()
    sweep_chunk = sweeps.sweep_chunk

    def noted_chunk(tx: Tx, queue_id: int) -> bool:  # runs on the writer's thread
        loop.call_soon_threadsafe(first_chunk.set)
        return sweep_chunk(tx, queue_id)

    monkeypatch.setattr(sweeps, "sweep_chunk", noted_chunk)
    purge = asyncio.create_task(store.purge_queue(queue.id, T0 + 1, 60_000))
    await first_chunk.wait()
    await send(store, other, "a write between chunks")
    assert not purge.done()
    await purge

    assert store.groups_committed - before >= 23 // CHUNK + 1
    assert bodies(await claim(store, queue, now_ms=T0 + 3)) == ["sent after the purge began"]
    assert bodies(await claim(store, other, now_ms=T0 + 3)) == ["a write between chunks"]
    counts = await store.count_messages(queue.id, T0 + 3)
    assert (counts.visible, counts.in_flight) == (0, 1)


async def test_fifo_purge_in_chunks_leaves_no_stale_group(store: SqliteStore) -> None:
    queue = await make_queue(store, "f.fifo")
    old = [msg(f"{group} {i}", group_id=group) for group in ("g1", "g2", "g3") for i in range(4)]
    await store.send_messages(queue.id, old, T0, DEDUP_WINDOW_MS)

    await store.purge_queue(queue.id, T0 + 1, 60_000)

    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM fifo_groups WHERE queue_id = ?", (queue.id,)).fetchone() == (0,)
    new = [msg("g1 new", group_id="g1", sent_ms=T0 + 2), msg("g3 new", group_id="g3", sent_ms=T0 + 2)]
    await store.send_messages(queue.id, new, T0 + 2, DEDUP_WINDOW_MS)
    assert sorted(bodies(await claim(store, queue, now_ms=T0 + 3))) == ["g1 new", "g3 new"]


async def test_deleted_queue_answers_at_once_and_its_messages_are_swept_behind(store: SqliteStore) -> None:
    queue, other = await make_queue(store), await make_queue(store, "other")
    await send(store, queue, *(f"m{i}" for i in range(32)))
    await send(store, other, "kept")

    await store.delete_queue(queue.id, T0 + 1)
    await store.settle_sweeps()

    path = Path(store.path)
    assert stored(path, queue.id) == 0
    again = await make_queue(store, "q", now_ms=T0 + 2)
    assert bodies(await claim(store, again, now_ms=T0 + 3)) == []
    assert bodies(await claim(store, other, now_ms=T0 + 3)) == ["kept"]
    assert (await store.count_messages(other.id, T0 + 3)).in_flight == 1


async def test_a_sweep_cut_short_is_finished_when_the_store_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first = open_store(f"sqlite:///{path}")
    await first.open()
    queue = await make_queue(first)
    await send(first, queue, *(f"old {i}" for i in range(12)))
    await send(first, queue, "newer", now_ms=T0 + 5)
    await first.close()
    with sqlite3.connect(path) as conn:  # as a crash right after the purge's first commit leaves it
        sweeps.start_sweep(conn, queue.id, T0)

    second = open_store(f"sqlite:///{path}")
    assert isinstance(second, SqliteStore)
    await second.open()
    try:
        await second.settle_sweeps()
        assert stored(path, queue.id) == 1
        assert (await second.count_messages(queue.id, T0 + 6)).visible == 1
        with sqlite3.connect(path) as conn:
            assert sweeps.pending_sweeps(conn) == []
    finally:
        await second.close()


def expiries(path: Path, queue_id: int) -> set[int]:
    """Each stored message's expiry less its send: the retention it was given."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT expires_at_ms - sent_ms FROM messages WHERE queue_id = ?", (queue_id,))
        return {int(row[0]) for row in rows}


async def test_new_retention_is_rewritten_span_by_span_into_the_queues_messages_only(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, other = await make_queue(store, retention_ms=60_000), await make_queue(store, "other", retention_ms=60_000)
    for i in range(9):  # the two queues' ids interleaved, over several spans
        await send(store, queue, f"q{i}", f"q{i}'")
        await send(store, other, f"o{i}")
    spans: list[int] = []
    rewrite_chunk = sweeps.rewrite_chunk

    def counted(tx: Tx, queue_id: int) -> bool:
        spans.append(queue_id)
        return rewrite_chunk(tx, queue_id)

    monkeypatch.setattr(sweeps, "rewrite_chunk", counted)

    record = await store.update_queue(queue.id, T0 + 1, retention_ms=30_000)

    assert record.retention_ms == 30_000
    assert len(spans) >= 27 // CHUNK
    assert expiries(Path(store.path), queue.id) == {30_000}
    assert expiries(Path(store.path), other.id) == {60_000}
    assert bodies(await claim(store, queue, now_ms=T0 + 30_000)) == []  # all expired under the new period
    assert len(bodies(await claim(store, other, now_ms=T0 + 30_000))) == 9
    with sqlite3.connect(store.path) as conn:
        assert sweeps.pending_rewrites(conn) == []


async def test_a_rewrite_cut_short_is_finished_when_the_store_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    first = open_store(f"sqlite:///{path}")
    await first.open()
    queue = await make_queue(first, retention_ms=60_000)
    await send(first, queue, *(f"m{i}" for i in range(12)))
    await first.close()
    with sqlite3.connect(path) as conn:  # as a crash after the change's commit leaves it
        conn.execute("UPDATE queues SET retention_ms = 45000")
        assert sweeps.start_retention_rewrite(conn, queue.id, 45_000)

    second = open_store(f"sqlite:///{path}")
    assert isinstance(second, SqliteStore)
    await second.open()
    try:
        await second.settle_sweeps()
        assert expiries(path, queue.id) == {45_000}
    finally:
        await second.close()
