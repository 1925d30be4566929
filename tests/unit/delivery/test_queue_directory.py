"""`QueueDirectory`: which cached answers fan-out may trust, on a fake clock and a counted queue service."""

from __future__ import annotations

from typing import Any

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import QueueKey, QueueRecord
from loosely.delivery.sqs import QueueDirectory

KEY = QueueKey("123456789012", "us-east-1", "orders")
ARN = f"arn:aws:sqs:us-east-1:123456789012:{KEY.name}"


class Queues:
    """The one `QueueService` method the directory uses, over a dict, counting lookups."""

    def __init__(self) -> None:
        self.records: dict[QueueKey, QueueRecord] = {}
        self.lookups = 0

    async def get_queue(self, key: QueueKey) -> QueueRecord:
        self.lookups += 1
        if key not in self.records:
            raise QueueDoesNotExist()
        return self.records[key]

    def create(self, queue_id: int) -> QueueRecord:
        self.records[KEY] = QueueRecord(queue_id, KEY, {}, {}, 0, 0, 345_600_000)
        return self.records[KEY]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def directory(queues: Queues, clock: Clock) -> QueueDirectory:
    service: Any = queues
    return QueueDirectory(service, ttl_s=1.0, monotonic=clock)


async def test_a_forgotten_queue_is_looked_up_again_and_its_successor_found() -> None:
    queues, clock = Queues(), Clock()
    queues_by_arn = directory(queues, clock)
    old = queues.create(1)
    assert await queues_by_arn.get(ARN) == old
    new = queues.create(2)  # deleted and created again under its name
    assert await queues_by_arn.get(ARN) == old  # cached: only the store can tell it is gone

    queues_by_arn.forget({1})

    assert await queues_by_arn.get(ARN) == new
    assert queues.lookups == 2


async def test_missing_is_trusted_only_for_publications_claimed_before_the_lookup() -> None:
    queues, clock = Queues(), Clock()
    queues_by_arn = directory(queues, clock)
    claimed_at = queues_by_arn.now()
    assert await queues_by_arn.get(ARN, claimed_at) is None
    created = queues.create(7)  # after the lookup: none of that batch's publications is meant for it

    assert await queues_by_arn.get(ARN, claimed_at) is None
    assert queues.lookups == 1
    clock.now += 0.1
    assert await queues_by_arn.get(ARN, queues_by_arn.now()) == created  # the next batch looks again
    assert queues.lookups == 2


async def test_missing_is_looked_up_again_without_a_claim_time() -> None:
    queues, clock = Queues(), Clock()
    queues_by_arn = directory(queues, clock)
    assert await queues_by_arn.get(ARN) is None
    created = queues.create(7)

    assert await queues_by_arn.get(ARN) == created
    assert queues.lookups == 2
