"""The SQLite writer's own promises: where work runs, when callers are answered, and how it stops."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from loosely.core.errors import ServiceUnavailable
from loosely.storage.sqlite.schema import connect
from loosely.storage.sqlite.writer import Tx, Writer


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL)")


async def started(path: Path) -> Writer:
    writer = Writer(lambda: connect(str(path)), _setup)
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


async def test_submit_answers_after_the_commit_is_visible_to_another_connection(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
    try:
        await writer.submit(_insert("a"))

        assert _rows(tmp_path / "w.db") == ["a"]
    finally:
        await writer.stop()


async def test_work_runs_on_the_loop_and_bulk_work_on_the_writer_thread(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
    try:
        light = await writer.submit(_insert("light"))
        heavy = await writer.submit(_insert("heavy"), bulk=True)

        assert light == threading.current_thread().name
        assert heavy != threading.current_thread().name
        assert _rows(tmp_path / "w.db") == ["light", "heavy"]
    finally:
        await writer.stop()


async def test_concurrent_items_share_one_commit_and_keep_their_order(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
    try:
        before = writer.groups_committed

        await asyncio.gather(*(writer.submit(_insert(str(i))) for i in range(50)))

        assert writer.groups_committed - before == 1
        assert _rows(tmp_path / "w.db") == [str(i) for i in range(50)]
    finally:
        await writer.stop()


async def test_after_commit_hooks_run_before_the_caller_is_answered(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
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


async def test_a_failing_item_is_rolled_back_alone_and_hooks_of_failed_items_never_run(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
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


async def test_read_only_work_is_answered_without_a_thread(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
    try:
        await writer.submit(_insert("a"))

        count = await writer.submit(lambda tx: tx.conn.execute("SELECT count(*) FROM t").fetchone()[0])

        assert count == 1
    finally:
        await writer.stop()


async def test_stop_finishes_submitted_work_then_refuses_more(tmp_path: Path) -> None:
    writer = await started(tmp_path / "w.db")
    pending = [asyncio.ensure_future(writer.submit(_insert(str(i)))) for i in range(20)]
    await asyncio.sleep(0)

    await writer.stop()

    assert all(task.done() and task.exception() is None for task in pending)
    assert len(_rows(tmp_path / "w.db")) == 20
    with pytest.raises(ServiceUnavailable):
        await writer.submit(_insert("late"))
