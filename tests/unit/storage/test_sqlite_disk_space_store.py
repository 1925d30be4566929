"""The SQLite store under a free-disk-space limit: new data is refused, draining goes on.

The store reads free space through `DiskSpace`; these tests give it a fake file system reading and
a fake monotonic clock (a reading stands for a second), and a real database: its free pages are
read from SQLite.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loosely.core.documents import DocumentGuard, FanOutResult, NewPublication
from loosely.core.errors import ConcurrentUpdate, ServiceUnavailable
from loosely.core.queues.models import ClaimRequest, DeleteOutcome, MessageRef, NewMessage, QueueKey
from loosely.storage.sqlite.backend import SqliteStore
from loosely.storage.sqlite.diskspace import CHECK_EVERY_S

NOW = 1_700_000_000_000
MIB = 1024 * 1024
LIMIT = 64 * MIB


class FakeDisk:
    def __init__(self) -> None:
        self.free = 10 * LIMIT
        self.now = 0.0

    def statvfs(self, _path: str) -> os.statvfs_result:
        return os.statvfs_result((4096, 4096, 0, 0, self.free // 4096, 0, 0, 0, 0, 255))

    def set_free(self, free: int) -> None:
        """Change the free space and let the store's last reading lapse."""
        self.free = free
        self.now += CHECK_EVERY_S


@pytest.fixture
def disk() -> FakeDisk:
    return FakeDisk()


@pytest.fixture
async def store(tmp_path: Path, disk: FakeDisk) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "q.db"), disk_free_limit_bytes=LIMIT)
    store._space._statvfs = disk.statvfs
    store._space._monotonic = lambda: disk.now
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _messages(prefix: str, count: int, size: int = 100) -> list[NewMessage]:
    return [
        NewMessage(
            message_id=f"{prefix}-{i}", body=f"{prefix}{i}".ljust(size, "x"), meta="{}", sent_ms=NOW, visible_at_ms=NOW
        )
        for i in range(count)
    ]


async def _queue(store: SqliteStore) -> int:
    record, _ = await store.create_queue(QueueKey("000000000000", "us-east-1", "q"), {}, {}, 3_600_000, NOW)
    return record.id


async def _claim(store: SqliteStore, queue_id: int, n: int) -> list[MessageRef]:
    request = ClaimRequest(max_messages=n, now_ms=NOW, visible_until_ms=NOW + 30_000)
    return [MessageRef(m.row_id, m.receive_count) for m in (await store.claim_messages(queue_id, request)).messages]


async def test_low_disk_refuses_sends_and_lets_the_queue_drain(store: SqliteStore, disk: FakeDisk) -> None:
    queue_id = await _queue(store)
    await store.send_messages(queue_id, _messages("kept", 5), NOW, 300_000)

    disk.set_free(LIMIT - 1)
    with pytest.raises(ServiceUnavailable, match="disk space"):
        await store.send_messages(queue_id, _messages("refused", 1), NOW, 300_000)

    refs = await _claim(store, queue_id, 10)  # receives write (visibility): they go on
    assert len(refs) == 5
    assert await store.delete_messages(queue_id, refs[:4]) == [DeleteOutcome.DELETED] * 4
    await store.purge_queue(queue_id, NOW, 60_000)
    counts = await store.count_messages(queue_id, NOW)
    assert (counts.visible, counts.in_flight) == (0, 0)

    disk.set_free(LIMIT)
    await store.send_messages(queue_id, _messages("again", 1), NOW, 300_000)
    assert (await store.count_messages(queue_id, NOW)).visible == 1


async def test_free_pages_left_by_deleted_messages_count_as_free_space(store: SqliteStore, disk: FakeDisk) -> None:
    queue_id = await _queue(store)
    for start in range(0, 400, 100):
        await store.send_messages(queue_id, _messages(f"big{start}-", 100, size=20_000), NOW, 300_000)
    disk.set_free(LIMIT - 1 * MIB)
    with pytest.raises(ServiceUnavailable):
        await store.send_messages(queue_id, _messages("refused", 1), NOW, 300_000)

    while refs := await _claim(store, queue_id, 10):
        await store.delete_messages(queue_id, refs)
    disk.set_free(LIMIT - 1 * MIB)  # the disk did not gain a byte, the database's free pages did (about 8 MiB)

    await store.send_messages(queue_id, _messages("fits", 1), NOW, 300_000)


async def test_low_disk_refuses_publications_and_their_fan_out(store: SqliteStore, disk: FakeDisk) -> None:
    publication = NewPublication(topic_arn="arn:aws:sns:us-east-1:000000000000:t", message_id="m1", payload="{}")
    guard = DocumentGuard("topic", "arn:aws:sns:us-east-1:000000000000:t", "{}")
    with pytest.raises(ConcurrentUpdate):  # with space, the guard (no such topic) decides
        await store.add_publications([publication], NOW, 300_000, guard)

    disk.set_free(0)
    with pytest.raises(ServiceUnavailable):
        await store.add_publications([publication], NOW, 300_000, guard)
    with pytest.raises(ServiceUnavailable):
        await store.complete_publications([FanOutResult(publication_id=1)], NOW, 300_000)
    # A single push of the store's own (a subscription's confirmation) is no topic message: it is written.
    assert len(await store.add_publications([publication], NOW, 300_000)) == 1
