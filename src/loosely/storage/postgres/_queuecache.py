"""The queue records this node read recently, so an operation does not pay a round trip to look its queue up.

Every SQS action starts by looking its queue up by name (attributes decide validation, visibility,
dead-letter targets). Read from the database each time, that lookup was half the round trips,
pool checkouts and statements of a SendMessage. A record is kept here instead, and stays correct
across nodes this way:

* every change of a queue row (attributes, tags, retention, purge, deletion) sends a "queue changed"
  notification inside its transaction; every node drops the record when it arrives (the node that
  made the change drops it before it answers, so its own client reads its own write);
* a record is trusted only while the node's LISTEN connection is up, and the cache is emptied
  whenever that connection is re-established (notifications may have been missed meanwhile);
* a record lives at most ``ttl_s`` after it was read, which bounds staleness even if a notification
  were lost on a link that has died without either side noticing yet;
* a read that overlapped an invalidation is not stored (a generation counter tells), so a record
  read before a change cannot be cached after the change's notification was handled.

Another node therefore sees a change within the notification's latency (milliseconds), and at
worst within ``ttl_s``; AWS allows up to 60 seconds for attribute changes to propagate. Deleted
queues are not cached as absent: a lookup that finds nothing always asks the database again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loosely.core.queues.models import QueueKey, QueueRecord


class QueueCache:
    """Queue records by key and by id; ``trusted`` says whether change notifications are arriving."""

    def __init__(self, ttl_s: float, trusted: Callable[[], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._trusted = trusted
        self._clock = clock
        self._by_key: dict[QueueKey, tuple[QueueRecord, float]] = {}
        self._by_id: dict[int, tuple[QueueRecord, float]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read before a database lookup and hand back to `put` (see the module docstring)."""
        return self._generation

    def now(self) -> float:
        return self._clock()

    def by_key(self, key: QueueKey) -> QueueRecord | None:
        return self._fresh(self._by_key.get(key))

    def by_id(self, queue_id: int) -> QueueRecord | None:
        return self._fresh(self._by_id.get(queue_id))

    def put(self, record: QueueRecord, generation: int, read_at: float) -> None:
        """Keep ``record``, read from the database starting at ``read_at`` when the generation was ``generation``."""
        if self._ttl_s <= 0 or generation != self._generation or not self._trusted():
            return
        expires = read_at + self._ttl_s
        self._drop_key_of(record.id)
        self._by_key[record.key] = (record, expires)
        self._by_id[record.id] = (record, expires)

    def invalidate(self, queue_id: int) -> None:
        """The queue changed (or is gone): forget it, and refuse reads that began before now."""
        self._generation += 1
        self._drop_key_of(queue_id)
        self._by_id.pop(queue_id, None)

    def clear(self) -> None:
        self._generation += 1
        self._by_key.clear()
        self._by_id.clear()

    def _drop_key_of(self, queue_id: int) -> None:
        entry = self._by_id.get(queue_id)
        if entry is not None and self._by_key.get(entry[0].key, (None,))[0] is entry[0]:
            del self._by_key[entry[0].key]

    def _fresh(self, entry: tuple[QueueRecord, float] | None) -> QueueRecord | None:
        if entry is None or entry[1] <= self._clock() or not self._trusted():
            return None
        return entry[0]
