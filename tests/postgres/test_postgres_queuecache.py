"""The node-local queue record cache: what it keeps, for how long, and what makes it forget."""

from __future__ import annotations

from loosely.core.queues.models import QueueKey, QueueRecord
from loosely.storage.postgres._queuecache import QueueCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(queue_id: int, name: str = "q", visibility: str = "30") -> QueueRecord:
    return QueueRecord(
        id=queue_id,
        key=QueueKey("000000000000", "us-east-1", name),
        attributes={"VisibilityTimeout": visibility},
        tags={},
        created_ms=0,
        modified_ms=0,
        retention_ms=1_000,
    )


def cache(clock: Clock, trusted: list[bool] | None = None, ttl_s: float = 1.0) -> QueueCache:
    flag = trusted if trusted is not None else [True]
    return QueueCache(ttl_s, lambda: flag[0], clock)


def test_a_record_is_kept_by_key_and_id_until_its_lifetime_ends() -> None:
    clock = Clock()
    queues = cache(clock)
    q = record(1)

    queues.put(q, queues.generation, clock.now)
    clock.now += 0.9

    assert queues.by_key(q.key) is q
    assert queues.by_id(1) is q
    clock.now += 0.1  # lifetime counts from when the read began
    assert queues.by_key(q.key) is None
    assert queues.by_id(1) is None


def test_a_read_that_overlapped_an_invalidation_is_not_kept() -> None:
    clock = Clock()
    queues = cache(clock)
    generation = queues.generation  # a lookup starts ...

    queues.invalidate(7)  # ... some queue changes meanwhile ...
    queues.put(record(1), generation, clock.now)  # ... and the (possibly stale) answer arrives

    assert queues.by_id(1) is None
    queues.put(record(1), queues.generation, clock.now)
    assert queues.by_id(1) is not None


def test_invalidation_forgets_the_queue_but_not_a_newer_queue_of_the_same_name() -> None:
    clock = Clock()
    queues = cache(clock)
    old, other = record(1), record(2, name="other")
    queues.put(old, queues.generation, clock.now)
    queues.put(other, queues.generation, clock.now)

    queues.invalidate(1)

    assert queues.by_key(old.key) is None and queues.by_id(1) is None
    assert queues.by_id(2) is other
    recreated = record(3)  # same name, new id
    queues.put(recreated, queues.generation, clock.now)
    queues.invalidate(1)  # a late notification about the deleted queue
    assert queues.by_key(old.key) is recreated


def test_nothing_is_trusted_or_kept_while_notifications_may_be_missed() -> None:
    clock = Clock()
    listening = [True]
    queues = cache(clock, listening)
    q = record(1)
    queues.put(q, queues.generation, clock.now)

    listening[0] = False
    assert queues.by_key(q.key) is None
    queues.put(record(2, name="b"), queues.generation, clock.now)
    listening[0] = True
    assert queues.by_id(2) is None
    queues.clear()  # what the store does when LISTEN is back
    assert queues.by_key(q.key) is None


def test_a_zero_lifetime_disables_the_cache() -> None:
    clock = Clock()
    queues = cache(clock, ttl_s=0)
    queues.put(record(1), queues.generation, clock.now)
    assert queues.by_id(1) is None
