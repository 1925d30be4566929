"""Contract: queue records, tombstones, updates, purge and counts."""

from __future__ import annotations

import pytest

from contract.helpers import (
    DAY_MS,
    DEDUP_WINDOW_MS,
    RETENTION_MS,
    T0,
    claim,
    key,
    make_queue,
    msg,
    send,
)
from loosely.core.errors import PurgeQueueInProgress, QueueDeletedRecently, QueueDoesNotExist
from loosely.core.ports import QueueStore
from loosely.core.queues.models import QueueCounts


async def test_create_queue_new_then_existing_returns_stored_record(store: QueueStore) -> None:
    record, created = await store.create_queue(key("orders"), {"DelaySeconds": "5"}, {"team": "a"}, RETENTION_MS, T0)
    again, created_again = await store.create_queue(key("orders"), {"DelaySeconds": "9"}, {}, 1, T0 + 5)

    assert created is True
    assert created_again is False
    assert again == record
    assert record.key == key("orders")
    assert dict(record.attributes) == {"DelaySeconds": "5"}
    assert dict(record.tags) == {"team": "a"}
    assert (record.created_ms, record.modified_ms, record.retention_ms) == (T0, T0, RETENTION_MS)
    assert record.last_purge_ms is None


async def test_get_queue_by_key_and_id(store: QueueStore) -> None:
    record = await make_queue(store, "a")

    assert await store.get_queue(key("a")) == record
    assert await store.get_queue_by_id(record.id) == record
    assert await store.get_queue(key("missing")) is None
    assert await store.get_queue(key("a", account="999999999999")) is None
    assert await store.get_queue_by_id(record.id + 1000) is None


async def test_list_queues_is_scoped_sorted_and_prefixed(store: QueueStore) -> None:
    for name in ("b-two", "a-one", "b-one"):
        await make_queue(store, name)
    await store.create_queue(key("b-other-account", account="999999999999"), {}, {}, RETENTION_MS, T0)
    await store.create_queue(key("b-other-region", region="eu-west-1"), {}, {}, RETENTION_MS, T0)

    everything = await store.list_queues("123456789012", "us-east-1")
    prefixed = await store.list_queues("123456789012", "us-east-1", "b-")

    assert [q.key.name for q in everything] == ["a-one", "b-one", "b-two"]
    assert [q.key.name for q in prefixed] == ["b-one", "b-two"]
    assert await store.list_queues("123456789012", "us-east-1", "zzz") == []


async def test_update_queue_replaces_whole_mappings(store: QueueStore) -> None:
    record = await make_queue(store)

    updated = await store.update_queue(record.id, T0 + 10, attributes={"DelaySeconds": "1"})
    tagged = await store.update_queue(record.id, T0 + 20, tags={"x": "1"})

    assert dict(updated.attributes) == {"DelaySeconds": "1"}
    assert updated.modified_ms == T0 + 10
    assert dict(tagged.attributes) == {"DelaySeconds": "1"}
    assert dict(tagged.tags) == {"x": "1"}
    assert await store.get_queue_by_id(record.id) == tagged


async def test_update_queue_missing_raises(store: QueueStore) -> None:
    with pytest.raises(QueueDoesNotExist):
        await store.update_queue(424242, T0, attributes={})


async def test_update_queue_retention_restamps_expiry_both_ways(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=DAY_MS)
    await send(store, queue, "old", now_ms=T0)
    await send(store, queue, "new", now_ms=T0 + 120_000)

    await store.update_queue(queue.id, T0 + 130_000, retention_ms=60_000)
    at = T0 + 130_000
    shortened = await store.count_messages(queue.id, at)
    await store.update_queue(queue.id, at, retention_ms=DAY_MS)
    restored = await store.count_messages(queue.id, at)

    assert shortened == QueueCounts(visible=1, in_flight=0, delayed=0)  # "old" expired at T0 + 60 s
    assert restored == QueueCounts(visible=2, in_flight=0, delayed=0)
    assert (await store.get_queue_by_id(queue.id)).retention_ms == DAY_MS  # type: ignore[union-attr]


async def test_retention_shortened_messages_are_reaped_and_not_claimed(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=DAY_MS)
    await send(store, queue, "a", "b", now_ms=T0)

    await store.update_queue(queue.id, T0 + 61_000, retention_ms=60_000)

    assert await store.expire_messages(T0 + 61_000, 100) == 2
    assert (await claim(store, queue, now_ms=T0 + 61_000)).messages == []
    assert await store.count_messages(queue.id, T0 + 61_000) == QueueCounts(0, 0, 0)


async def test_delete_queue_removes_queue_and_messages(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b")

    await store.delete_queue(queue.id, T0 + 1)
    recreated, created = await store.create_queue(key("q"), {}, {}, RETENTION_MS, T0 + 2)

    assert created
    assert await store.get_queue_by_id(queue.id) is None
    assert recreated.id != queue.id
    assert (await claim(store, recreated, now_ms=T0 + 2)).messages == []
    assert await store.count_messages(recreated.id, T0 + 2) == QueueCounts(0, 0, 0)


async def test_deleted_queue_rejects_message_operations(store: QueueStore) -> None:
    queue = await make_queue(store)
    await store.delete_queue(queue.id, T0 + 1)

    with pytest.raises(QueueDoesNotExist):
        await store.send_messages(queue.id, [msg()], T0 + 2, DEDUP_WINDOW_MS)
    with pytest.raises(QueueDoesNotExist):
        await claim(store, queue, now_ms=T0 + 2)
    with pytest.raises(QueueDoesNotExist):
        await store.count_messages(queue.id, T0 + 2)


async def test_create_after_delete_respects_tombstone(store: QueueStore) -> None:
    queue = await make_queue(store)
    await store.delete_queue(queue.id, T0 + 1_000)

    with pytest.raises(QueueDeletedRecently):
        await store.create_queue(key("q"), {}, {}, RETENTION_MS, T0 + 30_000, deleted_since_ms=T0 - 30_000)
    with pytest.raises(QueueDeletedRecently):
        await store.create_queue(key("q"), {}, {}, RETENTION_MS, T0 + 30_000, deleted_since_ms=T0 + 1_000)
    _, created = await store.create_queue(key("q"), {}, {}, RETENTION_MS, T0 + 61_001, deleted_since_ms=T0 + 1_001)
    assert created


async def test_tombstone_does_not_block_other_names_or_existing_queue(store: QueueStore) -> None:
    queue = await make_queue(store, "gone")
    await store.delete_queue(queue.id, T0)
    _, created_other = await store.create_queue(key("other"), {}, {}, RETENTION_MS, T0, deleted_since_ms=T0 - 1)
    existing, created_again = await store.create_queue(key("other"), {}, {}, RETENTION_MS, T0, deleted_since_ms=T0 - 1)

    assert created_other
    assert not created_again
    assert existing.key.name == "other"


async def test_purge_deletes_messages_sent_up_to_now_and_records_time(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b", now_ms=T0)
    await claim(store, queue, n=1, now_ms=T0)

    await store.purge_queue(queue.id, T0 + 10, 60_000)
    await send(store, queue, "after", now_ms=T0 + 11)

    assert [m.body for m in (await claim(store, queue, now_ms=T0 + 12)).messages] == ["after"]
    record = await store.get_queue_by_id(queue.id)
    assert record is not None
    assert record.last_purge_ms == T0 + 10


async def test_purge_within_interval_raises_and_keeps_messages(store: QueueStore) -> None:
    queue = await make_queue(store)
    await store.purge_queue(queue.id, T0, 60_000)
    await send(store, queue, "kept", now_ms=T0 + 1)

    with pytest.raises(PurgeQueueInProgress):
        await store.purge_queue(queue.id, T0 + 59_999, 60_000)
    assert (await store.count_messages(queue.id, T0 + 59_999)).visible == 1
    await store.purge_queue(queue.id, T0 + 60_000, 60_000)
    assert (await store.count_messages(queue.id, T0 + 60_000)).visible == 0


async def test_purge_missing_queue_raises(store: QueueStore) -> None:
    with pytest.raises(QueueDoesNotExist):
        await store.purge_queue(424242, T0, 60_000)


async def test_count_messages_splits_visible_in_flight_delayed(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "v1", "v2", "v3", now_ms=T0)
    await send(store, queue, "delayed", now_ms=T0, visible_at_ms=T0 + 5_000)
    await claim(store, queue, n=2, now_ms=T0)

    assert await store.count_messages(queue.id, T0) == QueueCounts(visible=1, in_flight=2, delayed=1)
    assert await store.count_messages(queue.id, T0 + 5_000) == QueueCounts(visible=2, in_flight=2, delayed=0)
    assert await store.count_messages(queue.id, T0 + 30_000) == QueueCounts(visible=4, in_flight=0, delayed=0)


async def test_count_messages_ignores_expired(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=60_000)
    await send(store, queue, "a", now_ms=T0)
    await send(store, queue, "b", now_ms=T0 + 30_000)

    assert (await store.count_messages(queue.id, T0 + 60_000)).visible == 1
