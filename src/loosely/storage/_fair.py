"""Fair queues: on a standard queue, quiet tenants' messages go ahead of a noisy neighbour's backlog.

As in SQS, a standard queue whose messages carry a MessageGroupId is a fair queue and the group id
names the tenant (a message without one is its own tenant, so never noisy). As in SQS, a tenant is
*noisy* by either of two measures:

* concurrency share: it holds more than `NOISY_SHARE` of the queue's in-flight messages and at
  least `NOISY_MIN_IN_FLIGHT` of them;
* processing-time share: its messages took more than `NOISY_SHARE` of the consumer processing time
  recently spent on the queue. A message's processing time runs from the receive that handed it out
  to its deletion (the receipt handle carries the receive's instant); "recently" is the current and
  the previous window of `PROCESSING_WINDOW_MS`. This catches a tenant whose few messages each keep
  a consumer busy for long, which the concurrency share misses when consumers are few.

While some tenant is noisy, a claim hands out quiet tenants' visible messages first and noisy ones
only when no quiet one is waiting (in its look-ahead), the noisy tenant with the fewest in flight
first. Nothing is dropped or throttled. A node learns processing times from the deletes it serves
(on PostgreSQL, nodes do not share them: like SQS's, the thresholds are approximate).

Both stores share this bookkeeping; each keeps one `FairQueues` (per node on PostgreSQL):

* which queues are known to hold grouped messages, learned from the messages claims hand out (a
  tenant can hold in-flight messages only once a claim has handed them out). A queue never seen
  with a group id costs one set lookup per claim: no statement, no schema change;
* per queue, the processing time of its deleted messages per tenant, in two windows;
* the last detection per queue, recounted when it is `DETECT_EVERY_MS` old on the store's clock
  (SQS: "thresholds are approximate") or sooner, once this store's claims have handed out enough
  of the queue's messages since for a tenant to have turned noisy on them alone (`NOISY_MIN_IN_FLIGHT`,
  and `NOISY_SHARE` of what was in flight). The count walks the queue's in-flight range of the
  visibility index, O(in flight), not O(depth); made at most once per a tenth of the in-flight
  messages claimed (or per `DETECT_EVERY_MS`), it costs about ten index entries per message claimed.

A fair claim looks at a bounded window (`LOOK_AHEAD` rows) at each end of the queue's visible
range: the oldest visible messages and the newest. A quiet message within the oldest `LOOK_AHEAD`
or sent after all but the newest `LOOK_AHEAD` visible messages is found; one buried deeper in the
middle of a noisy backlog waits until the head of the queue reaches it. This bounds a claim's cost
whatever the depth of the noisy backlog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from loosely.core.queues.models import DeleteOutcome, StoredMessage

NOISY_SHARE = 0.10
"""A tenant holding more than this share of the queue's in-flight messages may be noisy."""
NOISY_MIN_IN_FLIGHT = 30
"""...and it must hold at least this many in flight itself (a small queue has no noisy neighbour)."""
DETECT_EVERY_MS = 1_000
"""How long a detection stands before a claim counts again (the store's clock, so tests fake it)."""
LOOK_AHEAD = 256
"""Rows a fair claim looks at from each end of the visible range (see the module docstring)."""
PROCESSING_WINDOW_MS = 10_000
"""Processing times count for the window they were recorded in and the next (the store's clock)."""

NONE_NOISY: Mapping[str, int] = {}

C = TypeVar("C", bound=tuple[Any, ...])
"""A candidate row: (row id, group id, visible at, ...), as the look-ahead reads it."""


def noisy_tenants(in_flight: Iterable[tuple[str | None, int]]) -> dict[str, int]:
    """The noisy tenants among per-group in-flight counts (None: ungrouped messages), with their counts."""
    counts = list(in_flight)
    total = sum(n for _, n in counts)
    return {
        group: n for group, n in counts if group is not None and n >= NOISY_MIN_IN_FLIGHT and n > total * NOISY_SHARE
    }


def slow_tenants(processing: Mapping[str | None, int]) -> set[str]:
    """The tenants whose share of the recent processing time (ms per group; None: ungrouped) is noisy."""
    total = sum(processing.values())
    return {group for group, spent in processing.items() if group is not None and spent > total * NOISY_SHARE}


class ProcessingTimes:
    """One queue's recent consumer processing time per tenant (ms): the current window and the one before."""

    __slots__ = ("current", "previous", "start_ms")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.current: dict[str | None, int] = {}
        self.previous: dict[str | None, int] = {}

    def add(self, now_ms: int, spent: Iterable[tuple[str | None, int]]) -> None:
        """Count each deleted message's processing time (a clock that went back counts it as now)."""
        self.roll(now_ms)
        current = self.current
        for group, ms in spent:
            if ms > 0:
                current[group] = current.get(group, 0) + ms

    def recent(self, now_ms: int) -> dict[str | None, int]:
        """Processing time per tenant over the current and the previous window."""
        self.roll(now_ms)
        recent = dict(self.previous)
        for group, ms in self.current.items():
            recent[group] = recent.get(group, 0) + ms
        return recent

    def roll(self, now_ms: int) -> None:
        windows = (now_ms - self.start_ms) // PROCESSING_WINDOW_MS
        if windows <= 0:
            return
        self.previous = self.current if windows == 1 else {}
        self.current = {}
        self.start_ms += windows * PROCESSING_WINDOW_MS


def fair_order(head: Sequence[C], tail: Sequence[C], noisy: Mapping[str, int]) -> list[C]:
    """The candidates in the order a fair claim takes them.

    ``head`` is the oldest visible rows in ascending order, ``tail`` the newest in descending order
    (it overlaps ``head`` when the queue has fewer visible rows than the two windows). Quiet rows
    first, oldest first; then the noisy rows of the head, by their tenant's in-flight count and then
    age. The tail's noisy rows are left out: older rows of the same tenants are in the head.
    """
    quiet: list[C] = []
    loud: list[C] = []
    seen: set[int] = set()
    for row in head:
        seen.add(row[0])
        (loud if row[1] is not None and row[1] in noisy else quiet).append(row)
    for row in reversed(tail):
        if row[0] not in seen and (row[1] is None or row[1] not in noisy):
            quiet.append(row)
    loud.sort(key=lambda row: (noisy[row[1]] if row[1] is not None else 0, row[2], row[0]))
    return quiet + loud


def needs_tail(head: Sequence[C], noisy: Mapping[str, int], wanted: int) -> bool:
    """Whether a fair claim should read the newest window too: the head window was full (the queue
    has more visible rows) and holds fewer quiet rows than the claim wants."""
    if len(head) < LOOK_AHEAD:
        return False
    quiet = 0
    for row in head:
        if row[1] is None or row[1] not in noisy:
            quiet += 1
            if quiet >= wanted:
                return False
    return True


class FairQueues:
    """One store's (one node's) fairness state: queues known to hold grouped messages, last detections."""

    __slots__ = ("_claimed_since", "_detected", "_enough", "_grouped", "_processing")

    def __init__(self) -> None:
        self._grouped: set[int] = set()
        self._detected: dict[int, tuple[int, dict[str, int]]] = {}
        self._processing: dict[int, ProcessingTimes] = {}
        # Per queue: messages handed out since its last detection, and how many make it due again.
        self._claimed_since: dict[int, int] = {}
        self._enough: dict[int, int] = {}

    def noisy(self, queue_id: int, now_ms: int) -> Mapping[str, int] | None:
        """The queue's noisy tenants (empty: plain claim), or None when a detection is due (`record`)."""
        if queue_id not in self._grouped:
            return NONE_NOISY
        detected = self._detected.get(queue_id)
        if detected is None or not detected[0] <= now_ms < detected[0] + DETECT_EVERY_MS:
            return None
        if self._claimed_since.get(queue_id, 0) >= self._enough.get(queue_id, NOISY_MIN_IN_FLIGHT):
            return None
        return detected[1]

    def record(self, queue_id: int, now_ms: int, in_flight: Iterable[tuple[str | None, int]]) -> dict[str, int]:
        """Store a detection made at ``now_ms`` from per-group in-flight counts; return the noisy tenants."""
        counts = list(in_flight)
        noisy = noisy_tenants(counts)
        processing = self._processing.get(queue_id)
        if processing is not None:
            slow = slow_tenants(processing.recent(now_ms)) - noisy.keys()
            if slow:
                in_flight_of = {group: n for group, n in counts if group is not None}
                noisy.update((group, in_flight_of.get(group, 0)) for group in slow)
        self._detected[queue_id] = (now_ms, noisy)
        self._claimed_since[queue_id] = 0
        total = sum(n for _, n in counts)
        self._enough[queue_id] = max(NOISY_MIN_IN_FLIGHT, int(total * NOISY_SHARE))
        return noisy

    def grouped(self, queue_id: int) -> bool:
        """Whether the queue is known to hold grouped messages: only then do its deletes count processing time."""
        return queue_id in self._grouped

    def processed(self, queue_id: int, now_ms: int, spent: Iterable[tuple[str | None, int]]) -> None:
        """Count deleted messages' processing times (group, ms from their receive to the delete)."""
        processing = self._processing.get(queue_id)
        if processing is None:
            processing = self._processing[queue_id] = ProcessingTimes(now_ms)
        processing.add(now_ms, spent)

    def deleted(
        self,
        queue_id: int,
        now_ms: int,
        groups: Sequence[str | None],
        received_ms: Sequence[int],
        outcomes: Sequence[DeleteOutcome],
    ) -> None:
        """Count a delete's processing times: per ref, the deleted message's group and its receive's instant."""
        self.processed(
            queue_id,
            now_ms,
            [
                (group, now_ms - received)
                for group, received, outcome in zip(groups, received_ms, outcomes, strict=True)
                if outcome is DeleteOutcome.DELETED
            ],
        )

    def knows(self, queue_id: int) -> bool:
        """Whether anything of the queue is kept (a deleted queue's state must not stay forever)."""
        return (
            queue_id in self._grouped
            or queue_id in self._detected
            or queue_id in self._claimed_since
            or queue_id in self._processing
        )

    def forget(self, queue_id: int) -> None:
        """Drop what is known of a queue (deleted, or changed on another node: learned again at need)."""
        self._grouped.discard(queue_id)
        self._detected.pop(queue_id, None)
        self._claimed_since.pop(queue_id, None)
        self._enough.pop(queue_id, None)
        self._processing.pop(queue_id, None)

    def learn(self, queue_id: int, messages: Sequence[StoredMessage]) -> None:
        """Note the messages a claim handed out: the queue is fair once one carries a group id."""
        if queue_id in self._grouped:
            self._claimed_since[queue_id] = self._claimed_since.get(queue_id, 0) + len(messages)
            return
        for message in messages:
            if message.group_id is not None:
                self._grouped.add(queue_id)
                return
