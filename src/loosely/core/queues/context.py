"""What every part of the queue service shares: storage, clock, ids and the deployment's settings."""

from __future__ import annotations

from loosely.core.clock import Clock
from loosely.core.errors import QueueDoesNotExist
from loosely.core.frozen import record
from loosely.core.ids import IdGenerator
from loosely.core.ports import QueueStore
from loosely.core.queues import limits
from loosely.core.queues.models import QueueKey, QueueRecord


@record
class QueueSettings:
    """Deployment choices that AWS fixes but users may want to change."""

    recreate_delay_ms: int = 0  # AWS: 60_000 (QueueDeletedRecently)
    purge_interval_ms: int = 60_000
    dedup_window_ms: int = 300_000
    in_flight_max: int = limits.IN_FLIGHT_MAX  # per queue; AWS raises it on request


@record
class ServiceContext:
    storage: QueueStore
    clock: Clock
    ids: IdGenerator
    settings: QueueSettings

    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def require(self, key: QueueKey, *, fresh: bool = False) -> QueueRecord:
        """The queue, or ``QueueDoesNotExist``: every queue-addressed action starts here (``fresh``: see the port)."""
        record = await self.storage.get_queue(key, fresh=fresh)
        if record is None:
            raise QueueDoesNotExist()
        return record
