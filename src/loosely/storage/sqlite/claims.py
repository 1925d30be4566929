"""Claims: hand out visible messages atomically, with FIFO groups, dead letters and receive attempts.

Every claim is index-backed: a standard claim walks ``(queue_id, visible_at_ms)`` from the oldest
visible instant; a FIFO claim walks ``fifo_groups (queue_id, ready_at_ms)`` and then each chosen
group's first messages by row id. Expired messages met on the way are deleted (they would be by
the reaper anyway), so each is scanned at most once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import ClaimRequest, ClaimResult, QueueRecord, StoredMessage
from loosely.storage._common import QueueWaiters
from loosely.storage._fair import LOOK_AHEAD, FairQueues, fair_order, needs_tail
from loosely.storage.sqlite import fifo
from loosely.storage.sqlite.messages import MESSAGE_COLUMNS, MessageRow, copy_message, first_receive, select_rows
from loosely.storage.sqlite.queues import note_removed, queue_of
from loosely.storage.sqlite.writer import Tx

_PAGE = 16
MAX_PASSED_OVER = 256
"""Most expired or dead-lettered messages one claim handles before returning what it has.

Bounds one claim's transaction when a backlog of poison or expired messages sits at the head:
the next claims continue where this one stopped (the reaper also helps)."""


@dataclass(slots=True)
class _Claim:
    """One claim in progress: the request, its dead-letter queue and what it has done so far."""

    conn: sqlite3.Connection
    queue: QueueRecord
    request: ClaimRequest
    dead_letter: QueueRecord | None
    taken: list[StoredMessage] = field(default_factory=list)
    taken_ids: set[int] = field(default_factory=set)
    unwritten: list[int] = field(default_factory=list)
    moved: int = 0
    passed_over: int = 0

    @property
    def remaining(self) -> int:
        """How many more messages this claim may take (zero once it has passed over too many)."""
        if self.passed_over >= MAX_PASSED_OVER:
            return 0
        return self.request.max_messages - len(self.taken)

    def consider(self, row: MessageRow) -> bool:
        """Take, dead-letter or drop one visible candidate; return whether it was taken."""
        now = self.request.now_ms
        if row.expires_at_ms <= now:
            self.conn.execute("DELETE FROM messages WHERE id = ?", (row.id,))
            note_removed(self.conn, self.queue.id, 1)
            self.passed_over += 1
            return False
        target = self.request.dead_letter
        if self.dead_letter is not None and target is not None and row.receive_count >= target.max_receive_count:
            copy_message(self.conn, row, self.dead_letter, now, target.source_arn)
            self.moved += 1
            self.passed_over += 1
            return False
        self.taken.append(row.to_stored(row.receive_count + 1, first_receive(row, now)))
        self.taken_ids.add(row.id)
        self.unwritten.append(row.id)
        return True

    def write(self) -> None:
        """Record the messages taken so far as received: one UPDATE for all of them, not one each.

        Called before anything reads them back (a FIFO group's recompute) and at the end. The
        values are the ones `consider` handed out: the count plus one, the first receive kept.
        """
        if not self.unwritten:
            return
        ids = self.unwritten
        self.conn.execute(
            "UPDATE messages SET visible_at_ms = ?, receive_count = receive_count + 1,"
            " first_receive_ms = CASE WHEN first_receive_ms > 0 THEN first_receive_ms ELSE ? END"
            f" WHERE id IN ({', '.join('?' * len(ids))})",
            (self.request.visible_until_ms, self.request.now_ms, *ids),
        )
        self.unwritten = []


def claim_messages(
    tx: Tx, waiters: QueueWaiters, fair: FairQueues, queue_id: int, request: ClaimRequest
) -> ClaimResult:
    conn = tx.conn
    queue = queue_of(tx, queue_id)
    if request.attempt_id is not None:
        repeated = _repeat_attempt(conn, queue, request)
        if repeated is not None:
            return ClaimResult(messages=repeated, next_visible_at_ms=_next_visible(conn, queue, request.now_ms))
    claim = _Claim(conn, queue, request, _dead_letter_queue(tx, queue, request))
    if queue.key.fifo:
        _claim_fifo(claim)
    else:
        noisy = fair.noisy(queue.id, request.now_ms)
        if noisy is None:
            noisy = fair.record(queue.id, request.now_ms, conn.execute(_IN_FLIGHT_BY_GROUP, (queue.id, request.now_ms)))
        if noisy:
            _claim_fair(claim, noisy)
        else:
            _claim_standard(claim)
        fair.learn(queue.id, claim.taken)
    claim.write()
    if request.attempt_id is not None:
        _remember_attempt(conn, queue.id, request, claim.taken)
    if claim.moved and claim.dead_letter is not None:
        dead_letter_id = claim.dead_letter.id
        tx.on_commit(lambda: waiters.wake((dead_letter_id,)))
    # Stopped early after passing over many messages: more may be deliverable right now.
    stopped_early = claim.passed_over >= MAX_PASSED_OVER
    return ClaimResult(
        messages=claim.taken,
        next_visible_at_ms=request.now_ms if stopped_early else _next_visible(conn, queue, request.now_ms),
        moved_to_dead_letter=claim.moved,
    )


def nothing_visible(tx: Tx, queue_id: int, now_ms: int) -> bool:
    """Whether a claim now would certainly find nothing: a standard queue without a visible message.

    False for FIFO queues (visible messages may sit in blocked groups: not worth telling apart).
    """
    if queue_of(tx, queue_id).key.fifo:
        return False
    row = tx.conn.execute(
        "SELECT 1 FROM messages WHERE queue_id = ? AND visible_at_ms <= ? LIMIT 1", (queue_id, now_ms)
    ).fetchone()
    return row is None


def _dead_letter_queue(tx: Tx, queue: QueueRecord, request: ClaimRequest) -> QueueRecord | None:
    """The dead-letter queue to move to, or None (no policy, a missing queue, or the queue itself)."""
    target = request.dead_letter
    if target is None or target.queue_id == queue.id:
        return None
    try:
        return queue_of(tx, target.queue_id)
    except QueueDoesNotExist:
        return None


def _claim_standard(claim: _Claim) -> None:
    """Visible messages oldest first, in pages (each page is fetched whole before anything is written).

    A page is as long as what the claim still wants: most claims take every row of their first
    page, and rows fetched beyond it (with their bodies) would be thrown away.
    """
    conn, queue_id, now_ms = claim.conn, claim.queue.id, claim.request.now_ms
    after = (-1, -1)
    while (wanted := min(claim.remaining, _PAGE)) > 0:
        rows = select_rows(
            conn,
            "queue_id = ? AND visible_at_ms <= ? AND (visible_at_ms, id) > (?, ?) ORDER BY visible_at_ms, id LIMIT ?",
            (queue_id, now_ms, after[0], after[1], wanted),
        )
        for row in rows:
            if row.id not in claim.taken_ids:
                claim.consider(row)
            if claim.remaining <= 0:
                return
        if len(rows) < wanted:
            return
        after = (rows[-1].visible_at_ms, rows[-1].id)


# In flight per group (fair queues): the rows received, not visible again yet and not expired,
# through messages_by_visibility (O(in flight), whatever the visible backlog).
_IN_FLIGHT_BY_GROUP = (
    "SELECT group_id, count(*) FROM messages WHERE queue_id = ?1 AND visible_at_ms > ?2 AND receive_count > 0"
    " AND expires_at_ms > ?2 GROUP BY group_id"
)
_HEAD = "SELECT id, group_id, visible_at_ms FROM messages WHERE queue_id = ? AND visible_at_ms <= ?"


def _claim_fair(claim: _Claim, noisy: Mapping[str, int]) -> None:
    """A claim while some tenant is noisy: quiet tenants first, within the look-ahead (see storage._fair).

    The windows are read without bodies; the rows chosen are then read whole, a claim's worth at
    a time, and considered as in a plain claim (expired rows dropped, dead letters moved).
    """
    conn, queue_id, now_ms = claim.conn, claim.queue.id, claim.request.now_ms
    head = conn.execute(_HEAD + " ORDER BY visible_at_ms, id LIMIT ?", (queue_id, now_ms, LOOK_AHEAD)).fetchall()
    tail = []
    if needs_tail(head, noisy, claim.remaining):
        tail = conn.execute(
            _HEAD + " ORDER BY visible_at_ms DESC, id DESC LIMIT ?", (queue_id, now_ms, LOOK_AHEAD)
        ).fetchall()
    order = [row[0] for row in fair_order(head, tail, noisy)]
    at = 0
    while (wanted := claim.remaining) > 0 and at < len(order):
        ids = order[at : at + wanted]
        at += len(ids)
        rows = {row.id: row for row in select_rows(conn, f"id IN ({', '.join('?' * len(ids))})", ids)}
        for row_id in ids:
            row = rows.get(row_id)
            if row is not None:
                claim.consider(row)
            if claim.remaining <= 0:
                return


def _claim_fifo(claim: _Claim) -> None:
    """Deliverable groups in ready order; from each, its consecutive visible prefix."""
    conn, queue_id, now = claim.conn, claim.queue.id, claim.request.now_ms
    done: set[str] = set()
    after: tuple[int, str] = (-1, "")
    while claim.remaining > 0:
        groups = conn.execute(
            "SELECT ready_at_ms, group_id FROM fifo_groups WHERE queue_id = ? AND ready_at_ms <= ?"
            " AND (ready_at_ms, group_id) > (?, ?) ORDER BY ready_at_ms, group_id LIMIT ?",
            (queue_id, now, after[0], after[1], max(claim.remaining, 1)),
        ).fetchall()
        if not groups:
            return
        for _ready_at, group_id in groups:
            if group_id not in done:
                done.add(group_id)
                _take_prefix(claim, group_id)
                claim.write()
                fifo.recompute_group(conn, queue_id, group_id)
            if claim.remaining <= 0:
                return
        after = (int(groups[-1][0]), str(groups[-1][1]))


def _take_prefix(claim: _Claim, group_id: str) -> None:
    """Take the group's messages in order until one is not visible, the claim is full or ten are taken."""
    conn, queue_id, now = claim.conn, claim.queue.id, claim.request.now_ms
    budget = min(claim.remaining, fifo.WINDOW)
    after_id = -1
    while budget > 0 and claim.remaining > 0:
        page = budget + 1
        rows = select_rows(
            conn, "queue_id = ? AND group_id = ? AND id > ? ORDER BY id LIMIT ?", (queue_id, group_id, after_id, page)
        )
        for row in rows:
            if row.visible_at_ms > now and row.expires_at_ms > now:
                return  # in flight or delayed: nothing behind it may be delivered before it
            if claim.consider(row):
                budget -= 1
            if budget == 0 or claim.remaining <= 0:
                return
        if len(rows) < page:
            return
        after_id = rows[-1].id


def _next_visible(conn: sqlite3.Connection, queue: QueueRecord, now_ms: int) -> int | None:
    if queue.key.fifo:
        return fifo.next_ready_at(conn, queue.id, now_ms)
    row = conn.execute(
        "SELECT min(visible_at_ms) FROM messages WHERE queue_id = ? AND visible_at_ms > ?", (queue.id, now_ms)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


# ---- receive attempts ----

_ATTEMPT_ROW = f"SELECT {MESSAGE_COLUMNS}, visibility_changed_in FROM messages WHERE id = ? AND queue_id = ?"


def _repeat_attempt(conn: sqlite3.Connection, queue: QueueRecord, request: ClaimRequest) -> list[StoredMessage] | None:
    """The messages of an earlier claim with this attempt id, if it is repeatable; its visibility restarts.

    Repeatable while the attempt is within its window and every message it handed out is still
    in flight from it, unmodified: not deleted, not received again (its receive count moved on)
    and not given another visibility in this receive (``visibility_changed_in``, migration 0007),
    even one set back to the deadline the attempt left.
    """
    found = conn.execute(
        "SELECT refs FROM receive_attempts WHERE queue_id = ? AND attempt_id = ? AND expires_at_ms > ?",
        (queue.id, request.attempt_id, request.now_ms),
    ).fetchone()
    if found is None:
        return None
    refs: list[list[int]] = json.loads(found[0])
    rows: list[MessageRow] = []
    for row_id, receive_count, visible_at_ms in refs:
        current = conn.execute(_ATTEMPT_ROW, (row_id, queue.id)).fetchone()
        if current is None:
            return None
        row = MessageRow._make(current[:-1])
        if row.receive_count != receive_count or current[-1] == receive_count:
            return None
        if row.visible_at_ms != visible_at_ms or row.visible_at_ms <= request.now_ms:
            return None
        rows.append(row)
    if not rows:
        return None
    conn.executemany(
        "UPDATE messages SET visible_at_ms = ? WHERE id = ?", [(request.visible_until_ms, r.id) for r in rows]
    )
    new_refs = [[r.id, r.receive_count, request.visible_until_ms] for r in rows]
    conn.execute(
        "UPDATE receive_attempts SET refs = ? WHERE queue_id = ? AND attempt_id = ?",
        (json.dumps(new_refs), queue.id, request.attempt_id),
    )
    if queue.key.fifo:
        fifo.recompute_groups(conn, queue.id, (r.group_id for r in rows))
    return [r.to_stored(r.receive_count, r.first_receive_ms) for r in rows]


def _remember_attempt(
    conn: sqlite3.Connection, queue_id: int, request: ClaimRequest, taken: list[StoredMessage]
) -> None:
    refs = [[m.row_id, m.receive_count, request.visible_until_ms] for m in taken]
    conn.execute(
        "INSERT OR REPLACE INTO receive_attempts (queue_id, attempt_id, refs, expires_at_ms) VALUES (?, ?, ?, ?)",
        (queue_id, request.attempt_id, json.dumps(refs), request.now_ms + request.attempt_window_ms),
    )
