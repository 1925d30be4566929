"""Group commit across kinds: a node's concurrent standard sends, deletes and claims in one statement.

Under load a node has sends, deletes and receives waiting at the same moment. Written by kind, each
kind pays its own pool checkout, round trip, statement and commit, and PostgreSQL's per-statement
work dominates both the node's CPU and the database's (about 60 µs of client CPU per statement in
psycopg alone). How many requests share a statement of one kind is bounded by how many clients of
that kind the node serves at once, so a node serving half the clients (two nodes behind a load
balancer) wrote batches half as large and needed twice the statements per message.

A `Rounds` queues the three kinds in one `Coalescer`: a writer takes whatever is waiting, of any
kind, and writes it in one round. One kind alone uses that kind's own statement; several kinds use
``round_standard``, which carries all the sends, all the deletes and the claims of one queue; claims
on further queues run beside it, each in its own statement, concurrently. Every request is answered
only after the commit of the statement that carried it, exactly as with one coalescer per kind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from loosely.core.queues.models import ClaimRequest, ClaimResult, DeleteOutcome, MessageRef, NewMessage, SendOutcome
from loosely.storage.postgres import _messages
from loosely.storage.postgres._coalesce import Coalescer
from loosely.storage.postgres._messages import Conn
from loosely.storage.postgres._notify import Waiters
from loosely.storage.postgres._sql import Sql

T = TypeVar("T")

Send = tuple[int, Sequence[NewMessage]]  # a request's standard send: queue id and messages
Delete = tuple[int, Sequence[MessageRef]]  # a request's delete on a standard queue: queue id and receipts
# A queued request: (SEND, queue id, messages), (DELETE, queue id, refs) or (CLAIM, queue id, request).
Op = tuple[int, int, Any]
SEND, DELETE, CLAIM = 1, 2, 3

# An empty claim's wake-up epoch is the one read as its statement was issued only when nothing in the
# queue becomes visible within this long of the claim's instant (see Rounds.claim).
SETTLED_MS = 1_000

# What one round carries, by weight: a sent message counts 1, plus 1 per 16 KiB of body (a few MiB
# of JSON at most); a receipt to delete counts half; a message to claim counts 2 (so a round hands
# out at most 128, about a dozen receives of ten).
MAX_ROUND_WEIGHT = 256

Run = Callable[[Callable[[Conn], Awaitable[T]]], Awaitable[T]]


def weight(op: Op) -> int:
    kind, _, payload = op
    if kind == SEND:
        return sum(1 + len(m.body) // 16_384 for m in payload)
    if kind == DELETE:
        return (len(payload) + 1) // 2
    return 2 * int(payload.max_messages)


class Rounds:
    """The node's standard-queue writes, coalesced across kinds (see the module docstring).

    ``run`` runs a unit of work on a pooled connection within its deadline; ``notify`` tells the
    other nodes' waiters of new messages on queues whose local waiters were expected to take them.
    """

    def __init__(
        self,
        sql: Sql,
        channel: str,
        waiters: Waiters,
        run: Run[Any],
        notify_late: Callable[[list[int]], None],
        max_writers: int,
    ) -> None:
        self._sql = sql
        self._channel = channel
        self._waiters = waiters
        self._run = run
        self._notify_late = notify_late
        self._coalescer: Coalescer[Op, Any] = Coalescer(
            self._write, max_writers=max_writers, max_batch=MAX_ROUND_WEIGHT, weight=weight
        )

    async def send(self, queue_id: int, messages: Sequence[NewMessage]) -> list[SendOutcome]:
        result: list[SendOutcome] = await self._coalescer.submit((SEND, queue_id, messages))
        return result

    async def delete(self, queue_id: int, refs: Sequence[MessageRef]) -> list[DeleteOutcome]:
        result: list[DeleteOutcome] = await self._coalescer.submit((DELETE, queue_id, refs))
        return result

    async def claim(self, queue_id: int, request: ClaimRequest) -> tuple[ClaimResult, int]:
        """The claim's result, and the wake-up epoch (`Waiters.epoch`) of the queue that the claim covered.

        A wake-up counted before the round's statement was issued came after a commit that ended
        before the statement began: the claim saw that commit's messages, so a receive that got
        nothing need not claim again for it, only for a later wake-up. Reading the epoch when the
        receive was queued instead made every send committed, on any node, while the receive waited
        for a writer a reason to claim again, mostly in vain.

        Saw, but not necessarily could take: a message sent after the receive read its clock is
        visible only after the claim's ``now_ms``. So the later epoch is used only when nothing in the
        queue becomes visible within `SETTLED_MS` of that instant (messages in flight or delayed
        become visible seconds later); otherwise the epoch read when the receive was queued is
        returned, as before, and a wake-up since then sends the receive round again at once.
        """
        queued = self._waiters.epoch(queue_id)
        result, issued = await self._coalescer.submit((CLAIM, queue_id, request))
        next_ms = result.next_visible_at_ms
        settled = next_ms is None or next_ms > request.now_ms + SETTLED_MS
        return result, issued if settled else queued

    async def close(self) -> None:
        await self._coalescer.close()

    async def _write(self, ops: Sequence[Op]) -> list[Any]:
        """One round: each op's outcome (or exception), by position."""
        sends: list[int] = []
        deletes: list[int] = []
        claims: dict[int, list[int]] = {}  # queue id -> positions, in arrival order
        for position, (kind, queue_id, _) in enumerate(ops):
            if kind == SEND:
                sends.append(position)
            elif kind == DELETE:
                deletes.append(position)
            else:
                claims.setdefault(queue_id, []).append(position)
        outcomes: list[Any] = [None] * len(ops)
        units: list[tuple[list[int], Awaitable[Sequence[Any]]]] = []
        claim_queues = list(claims)
        if sends or deletes:
            first = claim_queues.pop(0) if claim_queues else None
            claimed = claims[first] if first is not None else []
            units.append((sends + deletes + claimed, self._write_mixed(ops, sends, deletes, first, claimed)))
        for queue_id in claim_queues:
            units.append((claims[queue_id], self._write_claims(queue_id, [ops[p][2] for p in claims[queue_id]])))
        # Read before any statement of this round is sent (the units run only once gathered).
        epochs = {queue_id: self._waiters.epoch(queue_id) for queue_id in claims}
        results: list[Any]
        if len(units) == 1:  # the common case: no task and gathering future for one statement
            try:
                results = [await units[0][1]]
            except Exception as error:
                results = [error]
        else:
            results = await asyncio.gather(*(work for _, work in units), return_exceptions=True)
        for (positions, _), result in zip(units, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            for index, position in enumerate(positions):
                outcomes[position] = result if isinstance(result, BaseException) else result[index]
        for queue_id, positions in claims.items():
            for position in positions:
                if not isinstance(outcomes[position], BaseException):
                    outcomes[position] = (outcomes[position], epochs[queue_id])
        return outcomes

    async def _write_claims(self, queue_id: int, requests: list[ClaimRequest]) -> list[ClaimResult | BaseException]:
        sql = self._sql
        results: list[ClaimResult | BaseException] = await self._run(
            lambda conn: _messages.claim_standard_many(conn, sql, queue_id, requests)
        )
        return results

    async def _write_mixed(
        self, ops: Sequence[Op], sends: list[int], deletes: list[int], claim_queue: int | None, claims: list[int]
    ) -> list[Any]:
        """Sends and deletes, with one queue's claims if any: results in the order sends, deletes, claims."""
        sql, channel = self._sql, self._channel
        send_items: list[Send] = [(ops[p][1], ops[p][2]) for p in sends]
        delete_items: list[Delete] = [(ops[p][1], ops[p][2]) for p in deletes]
        claim_items: list[ClaimRequest] = [ops[p][2] for p in claims]
        if not send_items and not claim_items:
            return list(await self._run(lambda conn: _messages.delete_standard(conn, sql, delete_items)))
        per_queue, local, notify = self._plan_wakes(send_items)
        delayed = {queue_id for queue_id, messages in send_items if any(m.visible_at_ms > m.sent_ms for m in messages)}
        try:
            if not delete_items and not claim_items:
                sent = await self._run(lambda conn: _messages.send_standard(conn, sql, channel, send_items, notify))
                self._wake_after_sends(per_queue, local, delayed)
                return list(sent)
            sent, deleted, claimed = await self._run(
                lambda conn: _messages.round_standard(
                    conn, sql, channel, send_items, notify, delete_items, claim_queue, claim_items
                )
            )
        except BaseException:
            # The commit may have happened all the same (a connection lost at commit). No NOTIFY of
            # this statement wakes this node's waiters, so wake them: at worst they claim in vain.
            for queue_id in per_queue:
                self._waiters.wake(queue_id)
            raise
        if send_items:
            self._wake_after_sends(per_queue, local, delayed)
        return [*sent, *deleted, *claimed]

    def _plan_wakes(self, sends: Sequence[Send]) -> tuple[dict[int, int], set[int], list[int]]:
        """Which queues' new messages this node's own parked receivers will take (no NOTIFY for those).

        A queue whose waiting receivers on this node have room for all its new messages gets no
        NOTIFY: this node wakes them after the commit, and the other nodes' waiters would only claim
        in vain (see `Waiters.reserve`). The others are notified by the statement itself, when another
        node waits on them (the database skips this node's own registrations: it wakes its own
        waiters after the commit either way, see migrations/0007_wake_other_nodes.sql).
        """
        per_queue: dict[int, int] = {}
        for queue_id, messages in sends:
            per_queue[queue_id] = per_queue.get(queue_id, 0) + len(messages)
        local = {queue_id for queue_id, count in per_queue.items() if self._waiters.reserve(queue_id, count)}
        return per_queue, local, sorted(set(per_queue) - local)

    def _wake_after_sends(self, per_queue: dict[int, int], local: set[int], delayed: set[int]) -> None:
        """Wake this node's waiters; should they be gone by now (woken by another send, timed out), the
        NOTIFY follows on its own, so no other node sleeps through the messages. The writer wakes them
        rather than each caller once answered, so a cancelled caller cannot skip it.

        Only enough waiters to take a queue's new messages are woken (`Waiters.wake_some`): the others
        would claim in vain. A queue sent delayed messages wakes them all, as before: each learns from
        its empty claim when the next message is due, which no wake-up will announce."""
        late = self._waiters.wake_after_write(per_queue, local, delayed)
        if late:
            self._notify_late(late)
