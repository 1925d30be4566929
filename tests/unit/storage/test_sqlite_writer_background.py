"""The SQLite writer gives requests precedence over background work (SNS fan-out's chunks).

Each test lines items up behind work that holds the writer's thread, so what runs in which group
is decided by the writer's rules alone, not by timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_writer_control import started_writer, table_rows, until

from loosely.storage.sqlite import writer as writer_module
from loosely.storage.sqlite.writer import BACKGROUND_PASSES, Tx, Writer


async def _started(path: Path) -> Writer:
    return await started_writer(path, "v TEXT NOT NULL UNIQUE")


class _Blocking:
    """A bulk item that inserts ``value`` on the writer thread, then waits there until released."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.entered = threading.Event()
        self._release = threading.Event()

    def __call__(self, tx: Tx) -> str:
        tx.conn.execute("INSERT INTO t (v) VALUES (?)", (self.value,))
        self.entered.set()
        assert self._release.wait(10)
        return threading.current_thread().name

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)

    def release(self) -> None:
        self._release.set()


async def _chunk_holding_the_writer(writer: Writer) -> tuple[_Blocking, asyncio.Future[str]]:
    """A background chunk that has begun on the writer's thread and holds it until released."""
    chunk = _Blocking("chunk")
    with writer.background():
        chunk_done = writer.enqueue(chunk, bulk=True)
    await chunk.wait_entered()
    return chunk, chunk_done


def _insert(value: str, groups: list[int] | None = None, writer: Writer | None = None) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        if groups is not None and writer is not None:
            groups.append(writer.groups_committed)  # commits before this item's group: which group it is in
        return threading.current_thread().name

    return work


async def test_requests_waiting_go_before_background_work(tmp_path: Path) -> None:
    writer = await _started(tmp_path / "w.db")
    try:
        hold = _Blocking("hold")
        held = writer.enqueue(hold, bulk=True)
        await hold.wait_entered()
        with writer.background():
            chunk = writer.enqueue(_insert("chunk"), bulk=True)
        request = writer.enqueue(_insert("request"))
        hold.release()
        await asyncio.gather(held, chunk, request)

        assert table_rows(tmp_path / "w.db") == ["hold", "request", "chunk"]
    finally:
        await writer.stop()


async def test_background_work_waits_for_a_bounded_number_of_groups(tmp_path: Path) -> None:
    """Requests that keep arriving overtake a waiting chunk at most BACKGROUND_PASSES times."""
    writer = await _started(tmp_path / "w.db")
    try:
        first = _Blocking("r0")
        done = [writer.enqueue(first, bulk=True)]
        await first.wait_entered()
        with writer.background():
            done.append(writer.enqueue(_insert("chunk"), bulk=True))
        previous = first
        for n in range(1, BACKGROUND_PASSES + 2):
            # Each request arrives while the one before holds the writer: one is always waiting.
            following = _Blocking(f"r{n}")
            done.append(writer.enqueue(following, bulk=True))
            previous.release()
            if n <= BACKGROUND_PASSES:
                await following.wait_entered()
            previous = following
        previous.release()
        await asyncio.gather(*done)

        passed = [f"r{n}" for n in range(1, BACKGROUND_PASSES + 1)]
        assert table_rows(tmp_path / "w.db") == ["r0", *passed, "chunk", f"r{BACKGROUND_PASSES + 1}"]
    finally:
        await writer.stop()


async def test_requests_arriving_during_background_statements_commit_with_them(tmp_path: Path) -> None:
    writer = await _started(tmp_path / "w.db")
    try:
        chunk, chunk_done = await _chunk_holding_the_writer(writer)
        before = writer.groups_committed
        groups: list[int] = []
        requests = [writer.enqueue(_insert(v, groups, writer)) for v in ("a", "b")]
        chunk.release()
        chunk_thread, *request_threads = await asyncio.gather(chunk_done, *requests)

        assert writer.groups_committed == before + 1  # one COMMIT for the chunk and both requests
        assert groups == [before, before]
        assert chunk_thread != threading.current_thread().name
        assert request_threads == [threading.current_thread().name] * 2  # on the loop, behind the chunk
        assert table_rows(tmp_path / "w.db") == ["chunk", "a", "b"]
    finally:
        await writer.stop()


async def test_only_plain_requests_at_the_head_of_the_queue_join_background_work(tmp_path: Path) -> None:
    """A barrier (or bulk) item, and every item behind it, waits for the next group: order is kept."""
    writer = await _started(tmp_path / "w.db")
    try:
        chunk, chunk_done = await _chunk_holding_the_writer(writer)
        before = writer.groups_committed
        groups: list[int] = []
        plain = writer.enqueue(_insert("plain", groups, writer))
        barrier = writer.enqueue(_insert("barrier", groups, writer), barrier=True)
        behind = writer.enqueue(_insert("behind", groups, writer))
        chunk.release()
        await asyncio.gather(chunk_done, plain, barrier, behind)

        assert groups == [before, before + 1, before + 1]
        assert table_rows(tmp_path / "w.db") == ["chunk", "plain", "barrier", "behind"]
    finally:
        await writer.stop()


async def test_a_request_that_fails_after_writing_in_background_work_is_undone_alone(tmp_path: Path) -> None:
    writer = await _started(tmp_path / "w.db")
    try:
        chunk, chunk_done = await _chunk_holding_the_writer(writer)

        def half_done(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO t (v) VALUES ('half')")
            tx.conn.execute("INSERT INTO t (v) VALUES ('chunk')")  # UNIQUE: fails after a row was written

        ok = writer.enqueue(_insert("ok"))
        failing = writer.enqueue(half_done)
        chunk.release()
        results = await asyncio.gather(chunk_done, ok, failing, return_exceptions=True)

        assert not isinstance(results[0], BaseException)
        assert not isinstance(results[1], BaseException)
        assert isinstance(results[2], Exception)
        assert table_rows(tmp_path / "w.db") == ["chunk", "ok"]
    finally:
        await writer.stop()


@pytest.mark.parametrize("inside", [True, False])
async def test_items_of_one_background_job_keep_their_order_and_group(tmp_path: Path, inside: bool) -> None:
    """A chunk and the claims enqueued right behind it run together, whatever requests wait meanwhile."""
    writer = await _started(tmp_path / "w.db")
    try:
        hold = _Blocking("hold")
        held = writer.enqueue(hold, bulk=True)
        await hold.wait_entered()
        groups: list[int] = []
        request = writer.enqueue(_insert("request", groups, writer))
        with writer.background():
            chunk = writer.enqueue(_insert("chunk", groups, writer), bulk=True)
            behind = writer.enqueue(_insert("claim", groups, writer))
        if not inside:
            later = writer.enqueue(_insert("later", groups, writer))
        hold.release()
        await asyncio.gather(held, request, chunk, behind, *([] if inside else [later]))

        requests = ["hold", "request"] if inside else ["hold", "request", "later"]
        assert table_rows(tmp_path / "w.db") == [*requests, "chunk", "claim"]
        order = ["request", "chunk", "claim"] if inside else ["request", "later", "chunk", "claim"]
        by_value = dict(zip(order, groups, strict=True))
        assert by_value["chunk"] == by_value["claim"]  # the chunk and its claim: one group
    finally:
        await writer.stop()


async def test_requests_after_background_statements_commit_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no request waiting, a background group's transaction stays open: the next requests' COMMIT is its own."""
    monkeypatch.setattr(writer_module, "BACKGROUND_COMMIT_WAIT_S", 10.0)  # only a request can end it here
    monkeypatch.setattr(writer_module, "_REQUESTS_RECENT_S", 10.0)
    writer = await _started(tmp_path / "w.db")
    try:
        await writer.submit(_insert("earlier"))  # requests are being served
        before = writer.groups_committed
        with writer.background():
            chunk = writer.enqueue(_insert("chunk"), bulk=True)
        await until(lambda: writer._open_group is not None)
        assert not chunk.done()  # not committed yet, so not answered
        assert table_rows(tmp_path / "w.db") == ["earlier"]

        await writer.submit(_insert("request"))

        assert chunk.done()
        assert writer.groups_committed == before + 1
        assert table_rows(tmp_path / "w.db") == ["earlier", "chunk", "request"]
    finally:
        await writer.stop()


async def test_background_work_alone_commits_without_waiting_for_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request written lately: nothing to wait for (an idle server fans out at once)."""
    monkeypatch.setattr(writer_module, "BACKGROUND_COMMIT_WAIT_S", 10.0)
    writer = await _started(tmp_path / "w.db")
    try:
        async with asyncio.timeout(5):  # not the 10 s wait for requests
            with writer.background():
                await writer.submit(_insert("chunk"), bulk=True)

        assert table_rows(tmp_path / "w.db") == ["chunk"]
    finally:
        await writer.stop()
