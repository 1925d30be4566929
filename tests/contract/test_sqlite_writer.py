"""The SQLite writer's own promises: where work runs, when callers are answered, and how it stops."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from loosely.core.errors import ServiceUnavailable
from loosely.storage.sqlite.schema import connect
from loosely.storage.sqlite.wal import WalFile
from loosely.storage.sqlite.writer import Tx, Writer


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL)")


@pytest.fixture(params=[False, True], ids=["in-line", "pipelined"])
def pipelined(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def started(
    path: Path, pipelined: bool = False, wal: WalFile | None = None, checkpoint_every: int = 256
) -> Writer:
    if pipelined and wal is None:
        wal = WalFile(str(path))
    writer = Writer(
        lambda: connect(str(path), pipelined=wal is not None), _setup, wal=wal, checkpoint_every=checkpoint_every
    )
    await writer.start()
    return writer


def _insert(value: str) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return threading.current_thread().name

    return work


def _rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")]


async def test_submit_answers_after_the_commit_is_visible_to_another_connection(
    tmp_path: Path, pipelined: bool
) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    try:
        await writer.submit(_insert("a"))

        assert _rows(tmp_path / "w.db") == ["a"]
    finally:
        await writer.stop()


async def test_work_runs_on_the_loop_and_bulk_work_on_the_writer_thread(tmp_path: Path, pipelined: bool) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    try:
        light = await writer.submit(_insert("light"))
        heavy = await writer.submit(_insert("heavy"), bulk=True)

        assert light == threading.current_thread().name
        assert heavy != threading.current_thread().name
        assert _rows(tmp_path / "w.db") == ["light", "heavy"]
    finally:
        await writer.stop()


async def test_concurrent_items_share_one_commit_and_keep_their_order(tmp_path: Path, pipelined: bool) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    try:
        before = writer.groups_committed

        await asyncio.gather(*(writer.submit(_insert(str(i))) for i in range(50)))

        assert writer.groups_committed - before == 1
        assert _rows(tmp_path / "w.db") == [str(i) for i in range(50)]
    finally:
        await writer.stop()


async def test_after_commit_hooks_run_before_the_caller_is_answered(tmp_path: Path, pipelined: bool) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    seen: list[str] = []
    try:

        def work(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO t (v) VALUES ('x')")
            tx.on_commit(lambda: seen.append("hook"))

        await writer.submit(work)
        seen.append("answered")

        assert seen == ["hook", "answered"]
    finally:
        await writer.stop()


async def test_a_failing_item_is_rolled_back_alone_and_hooks_of_failed_items_never_run(
    tmp_path: Path, pipelined: bool
) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    hooks: list[str] = []
    try:

        def failing(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO t (v) VALUES ('lost')")
            tx.on_commit(lambda: hooks.append("failing"))
            tx.conn.execute("INSERT INTO t (v) VALUES (NULL)")  # NOT NULL: sqlite3.IntegrityError

        results = await asyncio.gather(
            writer.submit(_insert("kept")),
            writer.submit(failing),
            return_exceptions=True,
        )

        assert isinstance(results[1], ServiceUnavailable)
        assert _rows(tmp_path / "w.db") == ["kept"]
        assert hooks == []
    finally:
        await writer.stop()


async def test_read_only_work_is_answered_without_a_thread(tmp_path: Path, pipelined: bool) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    try:
        await writer.submit(_insert("a"))

        count = await writer.submit(lambda tx: tx.conn.execute("SELECT count(*) FROM t").fetchone()[0])

        assert count == 1
    finally:
        await writer.stop()


async def test_stop_finishes_submitted_work_then_refuses_more(tmp_path: Path, pipelined: bool) -> None:
    writer = await started(tmp_path / "w.db", pipelined)
    pending = [asyncio.ensure_future(writer.submit(_insert(str(i)))) for i in range(20)]
    await asyncio.sleep(0)

    await writer.stop()

    assert all(task.done() and task.exception() is None for task in pending)
    assert len(_rows(tmp_path / "w.db")) == 20
    with pytest.raises(ServiceUnavailable):
        await writer.submit(_insert("late"))


# ---- pipelined durability: nobody is answered before a sync that began after their commit ----


class HeldSync:
    """A WAL sync the test holds back: each call waits for ``release`` unless ``free``, then really syncs."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.free = False
        self.fail = fail

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if not self.free:
            assert self.release.wait(10), "the test never released the sync"
        if self.fail:
            raise OSError(5, "Input/output error")
        os.fdatasync(fd)


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for something the writer's threads do; they run on their own, not on a clock."""
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def held_writer(tmp_path: Path, sync: HeldSync) -> Writer:
    return await started(tmp_path / "w.db", wal=WalFile(str(tmp_path / "w.db"), sync))


async def test_pipelined_callers_wait_for_a_sync_and_later_groups_commit_meanwhile(tmp_path: Path) -> None:
    sync = HeldSync()
    writer = await held_writer(tmp_path, sync)
    try:
        first = asyncio.ensure_future(writer.submit(_insert("a")))
        await eventually(lambda: sync.calls == 1)
        second = asyncio.ensure_future(writer.submit(_insert("b")))
        await eventually(lambda: _rows(tmp_path / "w.db") == ["a", "b"])
        third = asyncio.ensure_future(writer.submit(_insert("c")))
        await eventually(lambda: _rows(tmp_path / "w.db") == ["a", "b", "c"])

        # Three groups committed while the first sync is held: nobody is answered.
        assert not (first.done() or second.done() or third.done())
        sync.release.set()
        await asyncio.gather(first, second, third)

        # The first sync began before "b" and "c" committed: one more sync covered both.
        assert sync.calls == 2
    finally:
        sync.release.set()
        await writer.stop()


async def test_pipelined_read_waits_for_the_sync_of_what_it_may_have_read(tmp_path: Path) -> None:
    sync = HeldSync()
    writer = await held_writer(tmp_path, sync)
    try:
        write = asyncio.ensure_future(writer.submit(_insert("a")))
        await eventually(lambda: sync.calls == 1)
        read = asyncio.ensure_future(writer.submit(lambda tx: tx.conn.execute("SELECT count(*) FROM t").fetchone()[0]))
        await eventually(lambda: writer.groups_committed == 2)

        assert not read.done()
        sync.release.set()
        assert await read == 1
        await write
    finally:
        sync.release.set()
        await writer.stop()


async def test_pipelined_barrier_hooks_wait_for_the_sync_and_hold_back_later_work(tmp_path: Path) -> None:
    sync = HeldSync()
    writer = await held_writer(tmp_path, sync)
    events: list[str] = []
    try:

        def barrier(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO t (v) VALUES ('queue')")
            tx.on_commit(lambda: events.append("cache updated"))

        def later(tx: Tx) -> None:
            events.append("later work ran")

        first = asyncio.ensure_future(writer.submit(barrier, barrier=True))
        await eventually(lambda: sync.calls == 1)
        second = asyncio.ensure_future(writer.submit(later))
        for _ in range(20):
            await asyncio.sleep(0)

        assert events == []
        sync.release.set()
        await asyncio.gather(first, second)
        assert events == ["cache updated", "later work ran"]
    finally:
        sync.release.set()
        await writer.stop()


async def test_pipelined_every_answer_follows_a_sync_that_began_after_its_commit(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    durable: set[str] = set()

    def sync(fd: int) -> None:
        # What is committed now is what this sync makes durable (it began after those commits).
        covered = set(_rows(path))
        os.fdatasync(fd)
        durable.update(covered)

    writer = await started(path, wal=WalFile(str(path), sync), checkpoint_every=8)
    try:

        async def client(n: int) -> None:
            for i in range(15):
                value = f"{n}-{i}"
                await writer.submit(_insert(value))
                assert value in durable, f"{value} was answered before a sync covered it"

        await asyncio.gather(*(client(n) for n in range(12)))

        assert len(_rows(path)) == 180
        assert writer.checkpoints >= 1
    finally:
        await writer.stop()


async def test_pipelined_checkpoints_keep_every_commit_across_wal_restarts(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = await started(path, pipelined=True, checkpoint_every=2)
    try:
        for i in range(12):
            await writer.submit(_insert(str(i)))
            await writer.submit(lambda tx: tx.conn.execute("DELETE FROM t WHERE v = 'nothing'"))

        assert writer.checkpoints >= 5
        assert _rows(path) == [str(i) for i in range(12)]
    finally:
        await writer.stop()
    assert _rows(path) == [str(i) for i in range(12)]


async def test_pipelined_failed_sync_fails_its_callers_and_refuses_later_work(tmp_path: Path) -> None:
    sync = HeldSync(fail=True)
    sync.free = True
    writer = await held_writer(tmp_path, sync)
    try:
        with pytest.raises(ServiceUnavailable):
            await writer.submit(_insert("a"))
        with pytest.raises(ServiceUnavailable):
            await writer.submit(_insert("b"))
    finally:
        await writer.stop()
