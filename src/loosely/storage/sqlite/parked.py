"""Long polls served by the send that wakes them: the receive's claim commits together with the send.

Without this, a parked ``ReceiveMessage`` wakes once the send is durable and then claims in a group
of its own, which needs a second fsync before it can answer: the wake-up costs a whole disk flush
after the sender was answered. Instead, when a send makes messages visible on a queue with parked
receives, the store enqueues those receives' claims right behind the send item, in the same
group (`loosely.storage.sqlite.writer.Writer.enqueue`). They see the new messages, commit with
them, and are answered by the same fsync; the woken receive finds its claim made and returns it.

How a receive parks: the service claims, finds nothing and waits (`QueueStore.wait_for_messages`).
The store remembers the claim request of the task's last claim (a context variable, as
`loosely.storage._common.QueueWaiters` does for its generations) and, for the one wait that follows
it, lists the task as parked on that queue. A wait with no claim before it (the service waits
without claiming at the in-flight limit) does not park, so no claim is made for a receive that may
take no more. The claim made for a receive is the same request moved to the send's instant (the
same visibility timeout from then). The task's next `claim_messages` on that queue takes it; an
empty or failed one falls back to a claim of its own, so nothing changes for the caller.

SNS fan-out is served the same way (`loosely.storage.sqlite.outbox.SqliteOutbox`): a chunk that
writes to queues with parked receives enqueues their claims right behind it, queue by queue, and
each queue's wake-up follows the rules below.

Only as many parked receives are served as the visible messages sent can fill. The others would
wake, claim and find nothing when the served claims took everything: so the last served claim
checks, in the same group, whether anything is left visible on the (standard) queue, and if
nothing is, the send's wake-up leaves the receives still parked asleep (`QueueWaiters.wake_except`).
Otherwise, and for FIFO queues or sends with delayed messages, they are woken and claim for
themselves. A receive that goes away (its client disconnected)
before the group of its claim started takes nothing: the claim finds it gone and leaves the
messages visible. One that goes away later, during that group's commit, leaves the claimed
messages in flight until their visibility timeout, as on AWS when a receive's answer is lost.

Not done, measured: a send already waiting in the writer serving a receive that parks after it
(docs/architecture.md, "Where the time goes (pipeline): which bound holds").
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager

from loosely.core.queues.models import ClaimRequest, ClaimResult, NewMessage
from loosely.storage._common import QueueWaiters

_last_claim: contextvars.ContextVar[tuple[int, ClaimRequest] | None] = contextvars.ContextVar(
    "loosely_sqlite_last_claim", default=None
)
_parked: contextvars.ContextVar[ParkedReceive | None] = contextvars.ContextVar(
    "loosely_sqlite_parked_receive", default=None
)


@dataclasses.dataclass(eq=False, slots=True)
class ParkedReceive:
    """One waiting receive: the claim it last made, and the claim a send made for it (if one did).

    ``gone``: the receive went away while parked; a claim made for it that has not run yet takes nothing.
    """

    queue_id: int
    request: ClaimRequest
    claim: asyncio.Future[ClaimResult] | None = None
    gone: bool = False


@dataclasses.dataclass(eq=False, slots=True)
class Served:
    """What the long-poll wake-up of one send to one queue needs to know of the parked receives it served.

    ``last``: the last receive served, when the send's messages were all visible (`ParkedReceives.serve`).
    ``drained``: set by that receive's claim, in the send's group: nothing was left visible after it.
    """

    queue_id: int
    last: ParkedReceive | None = None
    drained: bool = False


class ParkedReceives:
    """The receives parked on each queue of one store, in the order they started waiting."""

    def __init__(self) -> None:
        self._by_queue: dict[int, list[ParkedReceive]] = {}

    def claiming(self, queue_id: int, request: ClaimRequest) -> None:
        """Remember, for this task's next wait, the claim it is about to make."""
        _last_claim.set((queue_id, request))

    def take(self, queue_id: int) -> asyncio.Future[ClaimResult] | None:
        """The claim a send made for this task's last wait on ``queue_id``, once; None if none was made."""
        parked = _parked.get()
        if parked is None:
            return None
        _parked.set(None)
        return parked.claim if parked.queue_id == queue_id else None

    @contextmanager
    def parking(self, queue_id: int, timeout_s: float) -> Iterator[ParkedReceive | None]:
        """List this task as parked on ``queue_id`` while it waits (in the one wait after a claim on it).

        A task whose claim was made but not yet taken (the service waited again without claiming,
        at the in-flight limit) keeps it for its next claim.
        """
        last = _last_claim.get()
        _last_claim.set(None)
        if last is None or last[0] != queue_id or timeout_s <= 0:
            yield None
            return
        parked = ParkedReceive(queue_id, last[1])
        self._by_queue.setdefault(queue_id, []).append(parked)
        _parked.set(parked)
        try:
            yield parked
        except BaseException:
            parked.gone = True
            raise
        finally:
            self._unpark(parked)

    def serve(
        self,
        queue_id: int,
        messages: Sequence[NewMessage],
        now_ms: int,
        enqueue: Callable[[ParkedReceive, ClaimRequest], asyncio.Future[ClaimResult]],
    ) -> ParkedReceive | None:
        """A send to ``queue_id`` was just enqueued: enqueue claims for the receives its messages can fill.

        Returns the last receive served when every message sent is visible now (None otherwise): once
        its claim has run, whether anything is left visible tells if the receives still parked
        need waking at all (`still_parked`).
        """
        waiting = self._by_queue.get(queue_id)
        if not waiting:
            return None
        visible = sum(1 for m in messages if m.visible_at_ms <= now_ms)
        all_visible = visible == len(messages)
        served: ParkedReceive | None = None
        while visible > 0 and waiting:
            served = waiting.pop(0)
            request = _moved_to(served.request, now_ms)
            served.claim = enqueue(served, request)
            served.claim.add_done_callback(_observe)
            visible -= request.max_messages
        if not waiting:
            del self._by_queue[queue_id]
        return served if all_visible and visible <= 0 else None

    def wake(self, waiters: QueueWaiters, served: Served) -> None:
        """The wake-up of a committed send: every wait on the queue, or, when the receives it served
        took everything (``served.drained``), all but the receives still parked (they would find nothing)."""
        if served.drained:
            waiters.wake_except(served.queue_id, self.still_parked(served.queue_id))
        else:
            waiters.wake((served.queue_id,))

    def waiting_on(self) -> Collection[int]:
        """The queues with receives parked on them (a view: read it at once)."""
        return self._by_queue.keys()

    def still_parked(self, queue_id: int) -> list[ParkedReceive]:
        """The receives parked on the queue and not served (the tokens of their waits)."""
        return list(self._by_queue.get(queue_id, ()))

    def parked(self, queue_id: int) -> int:
        """How many receives are parked on the queue and not yet served."""
        return len(self._by_queue.get(queue_id, ()))

    def _unpark(self, parked: ParkedReceive) -> None:
        waiting = self._by_queue.get(parked.queue_id)
        if waiting is not None and parked in waiting:
            waiting.remove(parked)
            if not waiting:
                del self._by_queue[parked.queue_id]


def _moved_to(request: ClaimRequest, now_ms: int) -> ClaimRequest:
    """The same claim made at ``now_ms``: the same visibility timeout, counted from then."""
    now_ms = max(now_ms, request.now_ms)
    timeout_ms = request.visible_until_ms - request.now_ms
    return dataclasses.replace(request, now_ms=now_ms, visible_until_ms=now_ms + timeout_ms)


def _observe(claim: asyncio.Future[ClaimResult]) -> None:
    """Retrieve the outcome, so that a claim whose receive went away logs no 'never retrieved' error."""
    if not claim.cancelled():
        claim.exception()
