"""How the SQLite writer undoes a failed item without a SAVEPOINT per item.

Items run bare; one that raises before changing a row leaves nothing to undo, and one that
raises after changing rows makes the writer roll the group back and run it again with a
savepoint around each item. These tests count how often each item's function ran, so they tell
the two paths apart.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_writer_control import started_writer, table_rows

from loosely.core.errors import QueueDoesNotExist, ServiceUnavailable
from loosely.storage.sqlite.writer import Tx, Writer


async def _started(path: Path) -> Writer:
    return await started_writer(path, "v TEXT NOT NULL")


class Calls:
    """Counts the runs of each named item, and builds the items."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.hooks: list[str] = []

    def insert(self, value: str) -> Callable[[Tx], str]:
        def work(tx: Tx) -> str:
            self.runs[value] += 1
            tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
            tx.on_commit(lambda: self.hooks.append(value))
            return value

        return work

    def refuse_before_writing(self, name: str) -> Callable[[Tx], None]:
        def work(tx: Tx) -> None:
            self.runs[name] += 1
            tx.conn.execute("SELECT count(*) FROM t").fetchone()
            raise QueueDoesNotExist()

        return work

    def fail_after_writing(self, name: str, error: BaseException) -> Callable[[Tx], None]:
        def work(tx: Tx) -> None:
            self.runs[name] += 1
            tx.conn.execute("INSERT INTO t (v) VALUES (?)", (name,))
            tx.on_commit(lambda: self.hooks.append(name))
            raise error

        return work


async def test_an_item_that_fails_before_writing_is_not_undone_and_the_group_runs_once(tmp_path: Path) -> None:
    writer = await _started(tmp_path / "w.db")
    calls = Calls()
    try:
        results = await asyncio.gather(
            writer.submit(calls.insert("a")),
            writer.submit(calls.refuse_before_writing("refused")),
            writer.submit(calls.insert("b")),
            return_exceptions=True,
        )

        assert results[0] == "a" and results[2] == "b"
        assert isinstance(results[1], QueueDoesNotExist)
        assert calls.runs == Counter({"a": 1, "refused": 1, "b": 1})
        assert table_rows(tmp_path / "w.db") == ["a", "b"]
        assert calls.hooks == ["a", "b"]
    finally:
        await writer.stop()


@pytest.mark.parametrize(
    "error",
    [QueueDoesNotExist(), RuntimeError("a bug after the write")],
    ids=["domain-error", "python-error"],
)
async def test_an_item_that_fails_after_writing_is_undone_alone_by_running_the_group_again(
    tmp_path: Path, error: BaseException
) -> None:
    writer = await _started(tmp_path / "w.db")
    calls = Calls()
    try:
        before = writer.groups_committed
        results = await asyncio.gather(
            writer.submit(calls.insert("a")),
            writer.submit(calls.fail_after_writing("failed", error)),
            writer.submit(calls.insert("b")),
            return_exceptions=True,
        )

        assert results[0] == "a" and results[2] == "b"
        assert results[1] is error
        # The first run stopped at the failed item; the second ran every item in its own savepoint.
        assert calls.runs == Counter({"a": 2, "failed": 2, "b": 1})
        assert writer.groups_committed - before == 1
        assert table_rows(tmp_path / "w.db") == ["a", "b"]
        assert calls.hooks == ["a", "b"]
    finally:
        await writer.stop()


async def test_a_failed_statement_alone_leaves_nothing_to_undo(tmp_path: Path) -> None:
    writer = await _started(tmp_path / "w.db")
    calls = Calls()
    try:

        def violates_not_null(tx: Tx) -> None:
            calls.runs["null"] += 1
            tx.conn.execute("INSERT INTO t (v) VALUES ('x'), (NULL)")  # SQLite undoes the statement itself

        results = await asyncio.gather(
            writer.submit(calls.insert("a")), writer.submit(violates_not_null), return_exceptions=True
        )

        assert results[0] == "a"
        assert isinstance(results[1], ServiceUnavailable)
        assert calls.runs == Counter({"a": 1, "null": 1})
        assert table_rows(tmp_path / "w.db") == ["a"]
    finally:
        await writer.stop()
