"""The writer's queue records (`Tx.queues`): items read queues without a SELECT, and never a stale one.

Each test puts items into one group (submitted together, so they share a transaction) and checks
what a later item reads with `queue_of` after an earlier item changed the queue, or after that
change was undone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import QueueKey, QueueRecord
from loosely.storage.sqlite import queues
from loosely.storage.sqlite.schema import connect, migrate
from loosely.storage.sqlite.writer import Tx, Writer

KEY = QueueKey("000000000000", "us-east-1", "q")
NOW = 1_700_000_000_000


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Writer]:
    def setup(conn: sqlite3.Connection) -> None:
        migrate(conn, NOW)

    writer = Writer(lambda: connect(str(tmp_path / "q.db")), setup)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


async def _create(writer: Writer) -> int:
    cache = queues.QueueCache()
    record, _ = await writer.submit(
        lambda tx: queues.create_queue(tx, cache, KEY, {"DelaySeconds": "0"}, {}, 60_000, NOW, None)
    )
    return record.id


def _set_delay(queue_id: int, delay: str, then_fail: bool = False) -> Callable[[Tx], None]:
    def work(tx: Tx) -> None:
        queues.update_queue(tx, queues.QueueCache(), queue_id, NOW + 1, {"DelaySeconds": delay}, None, None)
        assert queues.queue_of(tx, queue_id).attributes["DelaySeconds"] == delay  # now in the writer's records
        if then_fail:
            raise QueueDoesNotExist()

    return work


async def test_an_item_reads_the_change_an_earlier_item_of_its_group_made(writer: Writer) -> None:
    queue_id = await _create(writer)

    before, _, after = await asyncio.gather(
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
        writer.submit(_set_delay(queue_id, "5")),
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
    )

    assert before.attributes["DelaySeconds"] == "0"
    assert after.attributes["DelaySeconds"] == "5"


async def test_a_change_undone_by_a_failed_item_is_not_read_by_later_items(writer: Writer) -> None:
    queue_id = await _create(writer)

    results = await asyncio.gather(
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
        writer.submit(_set_delay(queue_id, "7", then_fail=True)),
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
        return_exceptions=True,
    )
    later = await writer.submit(lambda tx: queues.queue_of(tx, queue_id))

    assert isinstance(results[1], QueueDoesNotExist)
    assert isinstance(results[2], QueueRecord) and results[2].attributes["DelaySeconds"] == "0"
    assert later.attributes["DelaySeconds"] == "0"


async def test_a_deleted_queue_is_gone_for_the_next_item(writer: Writer) -> None:
    queue_id = await _create(writer)

    results = await asyncio.gather(
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
        writer.submit(lambda tx: queues.delete_queue(tx, queues.QueueCache(), queue_id, NOW + 1)),
        writer.submit(lambda tx: queues.queue_of(tx, queue_id)),
        return_exceptions=True,
    )

    assert isinstance(results[0], QueueRecord)
    assert isinstance(results[2], QueueDoesNotExist)
