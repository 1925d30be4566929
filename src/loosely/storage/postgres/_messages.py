"""Message operations of the PostgreSQL store: each function is one atomic step on one connection.

Functions take a pooled connection (autocommit) and the store's statements. A single statement
needs no explicit transaction (PostgreSQL makes it atomic); several statements run inside
``conn.transaction()``, and where no decision is needed between them, inside ``conn.pipeline()``
so the whole transaction costs one network round trip.

The statements of the standard-queue rounds (send, delete, claim and the three in one) are prepared
on a connection at their first use rather than after psycopg's ``prepare_threshold`` (five) uses:
unprepared, PostgreSQL parses and plans each of them anew, about 1 ms of its CPU per execution,
where the write itself costs about as much again. Every pooled connection pays that warm-up, and
a node opens its connections as load comes, so two nodes paid it twice in a short run. They also
return their rows in binary: the many integers of a round (row ids, instants, receive counts)
arrive as fixed-size values rather than decimal text that the client parses (4 % fewer client
instructions per round, counted with cachegrind on rounds of two sends, two deletes and two
receives of ten; text columns cost the same either way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import (
    ClaimRequest,
    ClaimResult,
    DeleteOutcome,
    MessageRef,
    NewMessage,
    SendOutcome,
    StoredMessage,
    VisibilityOutcome,
)
from loosely.storage._fair import LOOK_AHEAD, fair_order, needs_tail
from loosely.storage.postgres._fifo import Candidate, FifoPlan, plan_fifo_claim
from loosely.storage.postgres._sql import Sql

Conn = AsyncConnection[tuple[Any, ...]]
Row = tuple[Any, ...]

_MAX_CLAIM_ROUNDS = 4  # rounds of a claim that keeps looking after dead-letter moves or expired rows
_DEAD_LETTER_SLACK = 16  # rows a fair claim with a dead-letter queue locks beyond those it wants
_SCAN_GROWTH = 4  # each round of a standard claim that moved dead letters looks this many times further
_MAX_SCAN = 1_000


# The fields of StoredMessage in the order of _sql.MESSAGE_COLUMNS: the claim statements' rows are
# turned into messages positionally (the busiest loop of a round), so the order is checked once here.
_MESSAGE_FIELDS = (
    "row_id",
    "message_id",
    "body",
    "meta",
    "sent_ms",
    "receive_count",
    "first_receive_ms",
    "group_id",
    "dead_letter_source_arn",
)
if tuple(f.name for f in dataclasses.fields(StoredMessage)) != _MESSAGE_FIELDS:
    raise RuntimeError("StoredMessage's fields no longer match _sql.MESSAGE_COLUMNS")


def stored_message(row: Row) -> StoredMessage:
    """A row of ``{M}`` columns (see _sql.MESSAGE_COLUMNS) as a StoredMessage."""
    return StoredMessage(
        row_id=row[0],
        message_id=row[1],
        body=row[2],
        meta=row[3],
        sent_ms=row[4],
        receive_count=row[5],
        first_receive_ms=row[6],
        group_id=row[7],
        dead_letter_source_arn=row[8],
    )


def batch_json(messages: Sequence[NewMessage], *, fifo: bool = False) -> str:
    """New messages as the JSON array the send statements read (keys: _sql.BATCH_COLUMNS).

    On FIFO queues a missing group id is the empty string, as the group lock rows name it.
    """
    return orjson.dumps(
        [
            {
                "i": m.message_id,
                "b": m.body,
                "m": m.meta,
                "s": m.sent_ms,
                "v": m.visible_at_ms,
                "g": (m.group_id or "") if fifo else m.group_id,
                "d": m.dedup_key,
            }
            for m in messages
        ]
    ).decode()


def int_array(values: Iterable[int]) -> str:
    """An integer array literal (``{1,2,3}``): cheaper for the client than a binary array parameter."""
    return "{" + ",".join(map(str, values)) + "}"


# ---- sends ----


async def send_standard(
    conn: Conn,
    sql: Sql,
    channel: str,
    sends: Sequence[tuple[int, Sequence[NewMessage]]],
    notify: Sequence[int],
) -> list[list[SendOutcome] | BaseException]:
    """One statement for many requests' sends (queue id, messages): the outcomes of each request.

    A request to a queue that no longer exists gets ``QueueDoesNotExist``; the others are stored.
    ``notify``: the queues (in id order) whose waiters on other nodes must hear of the messages.
    """
    params = {
        "batch": _send_batch(sends),
        "queue_ids": int_array(notify),
        "channel": channel,
        "wake_key": sql.wake_key,
        "node": sql.node,
    }
    cur = await conn.execute(sql.send_standard, params, prepare=True, binary=True)
    return _send_outcomes(sends, {message_id: row_id for row_id, message_id, _notified in await cur.fetchall()})


def _send_batch(sends: Sequence[tuple[int, Sequence[NewMessage]]]) -> str:
    """The messages of many requests as the JSON array the standard send statements read."""
    return orjson.dumps(
        [
            {
                "q": queue_id,
                "i": m.message_id,
                "b": m.body,
                "m": m.meta,
                "s": m.sent_ms,
                "v": m.visible_at_ms,
                "g": m.group_id,
                "d": m.dedup_key,
            }
            for queue_id, messages in sends
            for m in messages
        ]
    ).decode()


def _send_outcomes(
    sends: Sequence[tuple[int, Sequence[NewMessage]]], ids: dict[str, int]
) -> list[list[SendOutcome] | BaseException]:
    """Each request's outcomes from the row ids stored by message id (none: its queue was gone)."""
    outcomes: list[list[SendOutcome] | BaseException] = []
    for _queue_id, messages in sends:
        if messages[0].message_id in ids:
            outcomes.append([SendOutcome(message_id=m.message_id, sequence=ids[m.message_id]) for m in messages])
        else:
            outcomes.append(QueueDoesNotExist())
    return outcomes


async def send_fifo(
    conn: Conn, sql: Sql, channel: str, queue_id: int, messages: Sequence[NewMessage], now_ms: int, window_ms: int
) -> list[SendOutcome]:
    """Lock the groups, store the non-duplicates, settle new groups and wake waiters: one round trip.

    A key repeated within the batch is resolved here (the first occurrence is the original), so
    the database sees each key once per statement.
    """
    unique: list[NewMessage] = []
    position: list[int] = []  # for each message, the position in `unique` of its representative
    first_of: dict[str, int] = {}
    for m in messages:
        if m.dedup_key is not None and m.dedup_key in first_of:
            position.append(first_of[m.dedup_key])
            continue
        if m.dedup_key is not None:
            first_of[m.dedup_key] = len(unique)
        position.append(len(unique))
        unique.append(m)
    groups = sorted({m.group_id or "" for m in unique})
    pairs = {"queue_ids": [queue_id] * len(groups), "group_ids": groups}
    params = {
        "batch": batch_json(unique, fifo=True),
        "q": queue_id,
        "now": now_ms,
        "window": window_ms,
    }
    async with conn.pipeline(), conn.transaction():
        await conn.execute(sql.lock_group_pairs, pairs)
        cur = await conn.execute(sql.send_fifo, params)
        await conn.execute(sql.settle_new_groups, pairs)
        await conn.execute(sql.wake, {"channel": channel, "q": queue_id, "wake_key": sql.wake_key, "node": sql.node})
    rows = await cur.fetchall()
    if not rows:
        raise QueueDoesNotExist()
    stored = await _unique_outcomes(conn, sql, queue_id, unique, rows, now_ms)
    outcomes: list[SendOutcome] = []
    seen: set[int] = set()
    for pos in position:
        rep = stored[pos]
        outcomes.append(SendOutcome(rep.message_id, rep.sequence, rep.duplicate or pos in seen))
        seen.add(pos)
    return outcomes


async def _unique_outcomes(
    conn: Conn, sql: Sql, queue_id: int, unique: Sequence[NewMessage], rows: Sequence[Row], now_ms: int
) -> list[SendOutcome]:
    """The outcome of each message sent to the database, by position.

    A key claimed by a concurrent sender after the statement's snapshot is looked up again.
    """
    outcomes: list[SendOutcome | None] = [None] * len(unique)
    for ordinal, row_id, message_id, was_stored, orig_id, orig_seq, _expires in rows:
        if was_stored:
            outcomes[ordinal - 1] = SendOutcome(message_id, row_id)
        elif orig_id is not None:
            outcomes[ordinal - 1] = SendOutcome(orig_id, orig_seq, duplicate=True)
    missing = {unique[i].dedup_key: i for i, o in enumerate(outcomes) if o is None}
    if missing:
        cur = await conn.execute(sql.dedup_lookup, {"q": queue_id, "keys": list(missing), "now": now_ms})
        for key, orig_id, orig_seq in await cur.fetchall():
            outcomes[missing[key]] = SendOutcome(orig_id, orig_seq, duplicate=True)
    if any(o is None for o in outcomes):
        raise RuntimeError("deduplication key vanished while sending")  # an invariant, not a client error
    return [o for o in outcomes if o is not None]


# ---- claims ----


async def claim_standard(conn: Conn, sql: Sql, queue_id: int, request: ClaimRequest) -> ClaimResult:
    """One statement per round: SKIP LOCKED candidates, dead letters moved, the rest claimed."""
    params: dict[str, Any] = {
        "q": queue_id,
        "now": request.now_ms,
        "until": request.visible_until_ms,
        "n": request.max_messages,
    }
    dead_letter = request.dead_letter
    if dead_letter is None:
        cur = await conn.execute(sql.claim_standard, params)
        return ClaimResult(sorted((stored_message(row) for row in await cur.fetchall()), key=lambda m: m.row_id))
    params |= {
        "dlq": dead_letter.queue_id,
        "max_receives": dead_letter.max_receive_count,
        "source_arn": dead_letter.source_arn,
    }
    messages: list[StoredMessage] = []
    moved = 0
    scan = request.max_messages
    for _ in range(_MAX_CLAIM_ROUNDS):
        params["n"] = request.max_messages - len(messages)
        params["scan"] = max(scan, params["n"])
        params["taken"] = [m.row_id for m in messages]
        cur = await conn.execute(sql.claim_standard_dlq, params)
        rows = await cur.fetchall()
        moved_now = rows[0][0]
        moved += moved_now
        messages += sorted((stored_message(row[1:]) for row in rows if row[1] is not None), key=lambda m: m.row_id)
        if moved_now == 0 or len(messages) >= request.max_messages:
            break
        scan = min(scan * _SCAN_GROWTH, _MAX_SCAN)  # a backlog of dead letters: pass over it faster
    return ClaimResult(messages, moved_to_dead_letter=moved)


async def in_flight_by_group(conn: Conn, sql: Sql, queue_id: int, now_ms: int) -> list[tuple[str | None, int]]:
    """The queue's in-flight messages per group (fair queues: see storage._fair)."""
    cur = await conn.execute(sql.in_flight_by_group, {"q": queue_id, "now": now_ms})
    return [(row[0], int(row[1])) for row in await cur.fetchall()]


async def claim_standard_fair(
    conn: Conn, sql: Sql, channel: str, queue_id: int, request: ClaimRequest, noisy: Mapping[str, int]
) -> tuple[ClaimResult, list[int]]:
    """A standard claim while some tenant is noisy: quiet tenants first, within the look-ahead.

    The oldest and (when they hold too few quiet rows) the newest visible rows are read without
    bodies; `_fair.fair_order` decides, and the first rows in that order that no concurrent claim
    holds are locked (SKIP LOCKED) and claimed, dead letters among them moved, in one transaction.
    With a dead-letter queue a few more rows are locked than wanted, since the dead letters among
    them are passed over. Returns the result and the queues to wake (a DLQ that received messages).
    """
    dead_letter = request.dead_letter if request.dead_letter and request.dead_letter.queue_id != queue_id else None
    params: dict[str, Any] = {
        "q": queue_id,
        "now": request.now_ms,
        "look": LOOK_AHEAD,
        "dlq": dead_letter.queue_id if dead_letter is not None else None,
    }
    claim_ids: list[int] = []
    move_ids: list[int] = []
    moved_cur = claim_cur = None
    async with conn.pipeline(), conn.transaction():
        head = await (await conn.execute(sql.fair_head, params)).fetchall()
        tail = []
        if needs_tail(head, noisy, request.max_messages):
            tail = await (await conn.execute(sql.fair_tail, params)).fetchall()
        params["ids"] = [row[0] for row in fair_order(head, tail, noisy)]
        params["n"] = request.max_messages + (_DEAD_LETTER_SLACK if dead_letter is not None else 0)
        for row_id, receive_count, dead_letter_exists in await (await conn.execute(sql.fair_lock, params)).fetchall():
            if dead_letter is not None and dead_letter_exists and receive_count >= dead_letter.max_receive_count:
                move_ids.append(row_id)
            elif len(claim_ids) < request.max_messages:
                claim_ids.append(row_id)
        if move_ids and dead_letter is not None:
            moved_cur = await conn.execute(
                sql.move_to_dlq,
                {
                    "dlq": dead_letter.queue_id,
                    "ids": move_ids,
                    "now": request.now_ms,
                    "source_arn": dead_letter.source_arn,
                    "channel": channel,
                    "wake_key": sql.wake_key,
                    "node": sql.node,
                },
            )
        if claim_ids:
            claim_cur = await conn.execute(
                sql.claim_ids, {"ids": claim_ids, "now": request.now_ms, "until": request.visible_until_ms}
            )
        if claim_cur is not None and request.attempt_id is not None:
            await save_attempt(conn, sql, queue_id, request, claim_ids)
        moved = (await moved_cur.fetchone() or (0,))[0] if moved_cur is not None else 0
        messages: list[StoredMessage] = []
        if claim_cur is not None:
            order = {row_id: i for i, row_id in enumerate(claim_ids)}
            messages = sorted((stored_message(r) for r in await claim_cur.fetchall()), key=lambda m: order[m.row_id])
    woken = [dead_letter.queue_id] if moved and dead_letter is not None else []
    return ClaimResult(messages, moved_to_dead_letter=moved), woken


async def claim_standard_many(
    conn: Conn, sql: Sql, queue_id: int, requests: Sequence[ClaimRequest]
) -> list[ClaimResult | BaseException]:
    """One statement for many concurrent receives on a standard queue without a dead-letter policy.

    Each request gets its share of the rows in claim order (see _sql); a request left empty learns
    from the same statement when the queue next has something visible, or that the queue is gone.
    """
    cur = await conn.execute(sql.claim_standard_many, _claim_params(queue_id, requests), prepare=True, binary=True)
    claims = _Claims(len(requests))
    claimed = claims.claimed
    for row in await cur.fetchall():
        k = row[0]
        if k:
            claimed[k - 1].append(StoredMessage(*row[1:10]))
        else:
            claims.settle(row[10], row[11])
    return claims.results()


def _claim_params(queue_id: int | None, requests: Sequence[ClaimRequest]) -> dict[str, Any]:
    nows = [r.now_ms for r in requests]
    ns = [r.max_messages for r in requests]
    return {
        "q": queue_id,
        "ns": int_array(ns),
        "untils": int_array(r.visible_until_ms for r in requests),
        "nows": int_array(nows),
        "earliest": min(nows, default=None),
        "latest": max(nows, default=None),
        "total": sum(ns),
    }


class _Claims:
    """The rows of one statement's claims dealt back to its requests (see claim_standard_many)."""

    __slots__ = ("_empty", "_gone", "claimed")

    def __init__(self, requests: int) -> None:
        self.claimed: list[list[StoredMessage]] = [[] for _ in range(requests)]  # request k's: claimed[k - 1]
        self._empty: ClaimResult | None = None
        self._gone = False

    def settle(self, exists: bool | None, next_visible_ms: int | None) -> None:
        """The row k = 0 (fewer rows than asked for): does the queue exist, when is something next visible?"""
        self._gone = not exists
        self._empty = ClaimResult([], next_visible_ms)

    def results(self) -> list[ClaimResult | BaseException]:
        if self._gone:
            return [QueueDoesNotExist() for _ in self.claimed]  # gone: nothing was claimed either
        results: list[ClaimResult | BaseException] = []
        for messages in self.claimed:
            if messages:
                results.append(ClaimResult(sorted(messages, key=lambda m: m.row_id)))
            elif self._empty is not None:
                results.append(self._empty)
            else:
                raise AssertionError("a receive got no rows although every receive was served")  # an invariant
        return results


async def claim_fifo(
    conn: Conn, sql: Sql, channel: str, queue_id: int, request: ClaimRequest
) -> tuple[ClaimResult, list[int]]:
    """Lock ready groups, take their visible prefixes, move dead letters, recompute the groups.

    Two round trips in the common case: the candidates (a decision is made on them), then the
    writes and the commit, pipelined. Returns the result and the queues to wake (a DLQ that
    received messages).
    """
    dead_letter = request.dead_letter
    max_receives = dead_letter.max_receive_count if dead_letter else None
    plan = FifoPlan()
    async with conn.pipeline(), conn.transaction():
        for _ in range(_MAX_CLAIM_ROUNDS):
            remaining = request.max_messages - len(plan.claim_ids)
            params = {
                "q": queue_id,
                "now": request.now_ms,
                "seen": plan.seen_groups,
                "n": remaining,
                "max_receives": max_receives,
            }
            cur = await conn.execute(sql.fifo_candidates, params)
            rows = await cur.fetchall()
            step = plan_fifo_claim((Candidate(*row) for row in rows), request.now_ms, remaining, max_receives)
            plan.claim_ids += step.claim_ids
            plan.move_ids += step.move_ids
            plan.touched_groups += step.touched_groups
            plan.seen_groups += step.seen_groups
            if not step.short or not rows or len(plan.claim_ids) >= request.max_messages:
                break
        moved_cur = claim_cur = None
        if plan.move_ids and dead_letter is not None:
            moved_cur = await conn.execute(
                sql.move_to_dlq,
                {
                    "dlq": dead_letter.queue_id,
                    "ids": plan.move_ids,
                    "now": request.now_ms,
                    "source_arn": dead_letter.source_arn,
                    "channel": channel,
                    "wake_key": sql.wake_key,
                    "node": sql.node,
                },
            )
        if plan.claim_ids:
            claim_cur = await conn.execute(
                sql.claim_ids, {"ids": plan.claim_ids, "now": request.now_ms, "until": request.visible_until_ms}
            )
        if plan.touched_groups:
            groups = {"queue_ids": [queue_id] * len(plan.touched_groups), "group_ids": plan.touched_groups}
            await conn.execute(sql.recompute_groups, groups)
        if claim_cur is not None and request.attempt_id is not None:
            await save_attempt(conn, sql, queue_id, request, plan.claim_ids)
    moved = (await moved_cur.fetchone() or (0,))[0] if moved_cur is not None else 0
    messages: list[StoredMessage] = []
    if claim_cur is not None:
        order = {row_id: i for i, row_id in enumerate(plan.claim_ids)}
        messages = sorted((stored_message(r) for r in await claim_cur.fetchall()), key=lambda m: order[m.row_id])
    woken = [dead_letter.queue_id] if moved and dead_letter is not None else []
    return ClaimResult(messages, moved_to_dead_letter=moved), woken


async def next_visible(conn: Conn, sql: Sql, queue_id: int, now_ms: int, fifo: bool) -> int | None:
    """When the queue next has something to hand out (after an empty claim), or None.

    Raises QueueDoesNotExist: an empty claim is where a deleted queue shows.
    """
    statement = sql.next_visible_fifo if fifo else sql.next_visible_standard
    cur = await conn.execute(statement, {"q": queue_id, "now": now_ms})
    row = await cur.fetchone()
    if row is None or not row[0]:
        raise QueueDoesNotExist()
    return None if row[1] is None else int(row[1])


async def replay_attempt(
    conn: Conn, sql: Sql, queue_id: int, request: ClaimRequest, fifo: bool
) -> list[StoredMessage] | None:
    """The messages of an earlier claim with this attempt id, their visibility restarted; or None.

    Repeatable while the attempt is within its window and every message it handed out is still
    in flight from it, unmodified: not deleted, not received again (its receive count moved on)
    and not given another visibility in this receive (``visibility_changed_in``, migration 0008),
    even one set back to the deadline the attempt left.
    """
    params: dict[str, Any] = {"q": queue_id, "attempt": request.attempt_id, "now": request.now_ms}
    async with conn.transaction():
        cur = await conn.execute(sql.attempt_lookup, params)
        attempt = await cur.fetchone()
        if attempt is None:
            return None
        row_ids, counts, visible_at_ms = attempt
        if visible_at_ms <= request.now_ms or not row_ids:
            return None
        groups = await _lock_groups_of_rows(conn, sql, queue_id, row_ids) if fifo else []
        cur = await conn.execute(sql.attempt_messages, {"q": queue_id, "ids": row_ids})
        current = {row[0]: row for row in await cur.fetchall()}
        for row_id, count in zip(row_ids, counts, strict=True):
            row = current.get(row_id)
            if row is None or row[5] != count or row[10] == count or row[9] != visible_at_ms:
                return None
        params |= {"ids": row_ids, "until": request.visible_until_ms}
        await conn.execute(sql.attempt_restart, params)
        if groups:
            await conn.execute(sql.recompute_groups, {"queue_ids": [queue_id] * len(groups), "group_ids": groups})
    return [stored_message(current[row_id]) for row_id in row_ids]


async def save_attempt(conn: Conn, sql: Sql, queue_id: int, request: ClaimRequest, row_ids: Sequence[int]) -> None:
    """Remember what this attempt handed out, until the attempt window ends."""
    params = {
        "q": queue_id,
        "attempt": request.attempt_id,
        "ids": list(row_ids),
        "until": request.visible_until_ms,
        "expires": request.now_ms + request.attempt_window_ms,
    }
    await conn.execute(sql.attempt_save, params)


# ---- deletes and visibility ----


def _delete_outcomes(refs: Sequence[MessageRef], rows: Sequence[Row]) -> list[DeleteOutcome]:
    """Outcomes as if the refs were deleted one after another (a repeated ref finds its message gone)."""
    gone: set[int] = set()
    outcomes: list[DeleteOutcome] = []
    for ref, (_ord, deleted, exists, *_) in zip(refs, rows, strict=True):
        if ref.row_id in gone or not exists:
            outcomes.append(DeleteOutcome.GONE)
        elif deleted:
            outcomes.append(DeleteOutcome.DELETED)
            gone.add(ref.row_id)
        else:
            outcomes.append(DeleteOutcome.STALE)
    return outcomes


def _visibility_outcome(changed: bool, exists: bool) -> VisibilityOutcome:
    if changed:
        return VisibilityOutcome.CHANGED
    return VisibilityOutcome.NOT_IN_FLIGHT if exists else VisibilityOutcome.GONE


async def delete_standard(
    conn: Conn, sql: Sql, deletes: Sequence[tuple[int, Sequence[MessageRef]]]
) -> list[list[DeleteOutcome]]:
    """One statement for many requests' deletes on standard queues (queue id, refs): each request's outcomes."""
    cur = await conn.execute(sql.delete_standard, _delete_params(deletes), prepare=True, binary=True)
    return _split_delete_outcomes(deletes, await cur.fetchall())


def _delete_params(deletes: Sequence[tuple[int, Sequence[MessageRef]]]) -> dict[str, str]:
    return {
        "del_queue_ids": int_array([queue_id for queue_id, refs in deletes for _ in refs]),
        "del_ids": int_array([r.row_id for _, refs in deletes for r in refs]),
        "del_counts": int_array([r.receive_count for _, refs in deletes for r in refs]),
    }


def _split_delete_outcomes(
    deletes: Sequence[tuple[int, Sequence[MessageRef]]], rows: Sequence[Row]
) -> list[list[DeleteOutcome]]:
    """Each request's outcomes from the rows (ord, deleted, existed) of all refs, in ref order."""
    outcomes: list[list[DeleteOutcome]] = []
    start = 0
    for _, refs in deletes:
        outcomes.append(_delete_outcomes(refs, rows[start : start + len(refs)]))
        start += len(refs)
    return outcomes


Round = tuple[list[list[SendOutcome] | BaseException], list[list[DeleteOutcome]], list[ClaimResult | BaseException]]


async def round_standard(
    conn: Conn,
    sql: Sql,
    channel: str,
    sends: Sequence[tuple[int, Sequence[NewMessage]]],
    notify: Sequence[int],
    deletes: Sequence[tuple[int, Sequence[MessageRef]]],
    claim_queue: int | None,
    claims: Sequence[ClaimRequest],
) -> Round:
    """Sends, deletes and one queue's claims of many requests in one statement (see _sql.round_standard).

    Each part's requests get the outcomes its own statement would have given them.
    """
    params = {
        "batch": _send_batch(sends),
        "queue_ids": int_array(notify),
        "channel": channel,
        "wake_key": sql.wake_key,
        "node": sql.node,
        **_delete_params(deletes),
        **_claim_params(claim_queue, claims),
    }
    cur = await conn.execute(sql.round_standard, params, prepare=True, binary=True)
    ids: dict[str, int] = {}
    delete_rows: list[Row] = []
    claimed = _Claims(len(claims))
    claimed_by = claimed.claimed
    for row in await cur.fetchall():
        part = row[0]
        if part == 1:
            ids[row[3]] = row[2]
        elif part == 2:
            delete_rows.append((row[1], row[11], row[13]))
        elif row[1]:
            claimed_by[row[1] - 1].append(StoredMessage(*row[2:11]))
        else:
            claimed.settle(row[11], row[12])
    delete_rows.sort(key=lambda row: row[0])
    return _send_outcomes(sends, ids), _split_delete_outcomes(deletes, delete_rows), claimed.results()


async def delete_fifo(
    conn: Conn, sql: Sql, queue_id: int, refs: Sequence[MessageRef], now_ms: int | None = None
) -> list[DeleteOutcome]:
    """Delete messages whose current receive matches, under their group locks; with ``now_ms``, only
    while still in flight (a receipt whose visibility timeout ran out is STALE on a FIFO queue, as on AWS)."""
    async with conn.transaction():
        groups = await _lock_groups_of_rows(conn, sql, queue_id, [r.row_id for r in refs])
        async with conn.pipeline():
            cur = await conn.execute(sql.delete_refs, {**_refs_params(queue_id, refs), "now": now_ms})
            if groups:
                await conn.execute(sql.recompute_groups, {"queue_ids": [queue_id] * len(groups), "group_ids": groups})
    return _delete_outcomes(refs, await cur.fetchall())


def _refs_params(queue_id: int, refs: Sequence[MessageRef]) -> dict[str, object]:
    return {"q": queue_id, "ids": int_array(r.row_id for r in refs), "counts": int_array(r.receive_count for r in refs)}


async def delete_grouped(
    conn: Conn, sql: Sql, queue_id: int, refs: Sequence[MessageRef]
) -> tuple[list[DeleteOutcome], list[str | None]]:
    """Delete messages of a fair queue whose current receive matches; also each ref's deleted message's group."""
    rows = await (await conn.execute(sql.delete_refs, {**_refs_params(queue_id, refs), "now": None})).fetchall()
    outcomes = _delete_outcomes(refs, rows)
    groups = [row[3] if outcome is DeleteOutcome.DELETED else None for row, outcome in zip(rows, outcomes, strict=True)]
    return outcomes, groups


async def change_visibility(
    conn: Conn,
    sql: Sql,
    channel: str,
    queue_id: int,
    changes: Sequence[tuple[MessageRef, int]],
    now_ms: int,
    fifo: bool,
) -> tuple[list[VisibilityOutcome], bool]:
    """Set the visibility of in-flight messages; return outcomes and whether any became visible now.

    A batch that names one message twice is applied in rounds, one occurrence per round, so the
    outcome is the same as applying the changes one after another.
    """
    rounds = _rounds(changes)
    ids = sorted({ref.row_id for ref, _ in changes})
    results: list[Row] = []
    if not fifo and len(rounds) == 1:
        params = _visibility_params(queue_id, rounds[0], now_ms, channel, sql)
        cur = await conn.execute(sql.change_visibility, params)
        results = await cur.fetchall()
    else:
        statement = sql.change_visibility_fifo if fifo else sql.change_visibility
        async with conn.transaction():
            groups = await _lock_groups_of_rows(conn, sql, queue_id, ids) if fifo else []
            for changes_once in rounds:
                params = _visibility_params(queue_id, changes_once, now_ms, channel, sql)
                cur = await conn.execute(statement, params)
                results += await cur.fetchall()
            if groups:
                await conn.execute(sql.recompute_groups, {"queue_ids": [queue_id] * len(groups), "group_ids": groups})
    by_index = {index: row for index, row in zip((i for r in rounds for i, _ in r), results, strict=True)}
    outcomes = [_visibility_outcome(by_index[i][1], by_index[i][2]) for i in range(len(changes))]
    return outcomes, any(row[3] for row in results)


def _rounds(changes: Sequence[tuple[MessageRef, int]]) -> list[list[tuple[int, tuple[MessageRef, int]]]]:
    """Split (index, change) pairs into rounds in which each message appears at most once."""
    rounds: list[list[tuple[int, tuple[MessageRef, int]]]] = []
    seen: list[set[int]] = []
    for index, change in enumerate(changes):
        row_id = change[0].row_id
        depth = next((d for d in range(len(seen) - 1, -1, -1) if row_id in seen[d]), -1) + 1
        if depth == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[depth].append((index, change))
        seen[depth].add(row_id)
    return rounds


def _visibility_params(
    queue_id: int, changes: Sequence[tuple[int, tuple[MessageRef, int]]], now_ms: int, channel: str, sql: Sql
) -> dict[str, Any]:
    return {
        "q": queue_id,
        "ids": [ref.row_id for _, (ref, _v) in changes],
        "counts": [ref.receive_count for _, (ref, _v) in changes],
        "visible": [visible_at for _, (_r, visible_at) in changes],
        "now": now_ms,
        "channel": channel,
        "wake_key": sql.wake_key,
        "node": sql.node,
    }


async def _lock_groups_of_rows(conn: Conn, sql: Sql, queue_id: int, ids: Sequence[int]) -> list[str]:
    cur = await conn.execute(sql.lock_groups_of_rows, {"q": queue_id, "ids": list(ids)})
    return [row[0] for row in await cur.fetchall()]


# ---- expiry ----


async def expire(conn: Conn, sql: Sql, now_ms: int, limit: int) -> int:
    """Delete up to ``limit`` expired messages; FIFO ones only under their (free) group locks."""
    cur = await conn.execute(sql.expiry_candidates, {"now": now_ms, "limit": limit})
    rows = await cur.fetchall()
    plain = [row_id for row_id, _q, group_id, fifo in rows if not (fifo and group_id is not None)]
    grouped = [(row_id, q, group_id) for row_id, q, group_id, fifo in rows if fifo and group_id is not None]
    deleted = 0
    if plain:
        cur = await conn.execute(sql.delete_expired, {"ids": plain, "now": now_ms})
        deleted += cur.rowcount
    if grouped:
        deleted += await _expire_grouped(conn, sql, grouped, now_ms)
    async with conn.pipeline():
        await conn.execute(sql.expire_dedup, {"now": now_ms, "limit": limit})
        await conn.execute(sql.expire_attempts, {"now": now_ms, "limit": limit})
        await conn.execute(sql.fold_counts, {"limit": limit})
    return deleted


async def _expire_grouped(conn: Conn, sql: Sql, rows: Sequence[tuple[int, int, str]], now_ms: int) -> int:
    pairs = sorted({(queue_id, group_id) for _id, queue_id, group_id in rows})
    async with conn.transaction():
        cur = await conn.execute(
            sql.lock_group_pairs_skip, {"queue_ids": [p[0] for p in pairs], "group_ids": [p[1] for p in pairs]}
        )
        locked = {(queue_id, group_id) for queue_id, group_id in await cur.fetchall()}
        ids = [row_id for row_id, queue_id, group_id in rows if (queue_id, group_id) in locked]
        if not ids:
            return 0
        async with conn.pipeline():
            cur = await conn.execute(sql.delete_expired, {"ids": ids, "now": now_ms})
            await conn.execute(
                sql.recompute_groups, {"queue_ids": [p[0] for p in locked], "group_ids": [p[1] for p in locked]}
            )
        return cur.rowcount
