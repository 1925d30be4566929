"""Message operations run by the writer: send, delete, change visibility, expire, count."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from loosely.core.queues.models import (
    DeleteOutcome,
    MessageRef,
    NewMessage,
    QueueCounts,
    QueueRecord,
    SendOutcome,
    StoredMessage,
    VisibilityOutcome,
)
from loosely.storage._common import QueueWaiters
from loosely.storage.sqlite import fifo
from loosely.storage.sqlite.queues import load_queue, note_added, note_removed, queue_of
from loosely.storage.sqlite.writer import Tx

MESSAGE_COLUMNS = (
    "id, message_id, body, meta, sent_ms, visible_at_ms, expires_at_ms, receive_count, first_receive_ms,"
    " group_id, dead_letter_source_arn"
)


class MessageRow(NamedTuple):
    """A ``messages`` row as selected with `MESSAGE_COLUMNS` (storage-private; `StoredMessage` is the domain)."""

    id: int
    message_id: str
    body: str
    meta: str
    sent_ms: int
    visible_at_ms: int
    expires_at_ms: int
    receive_count: int
    first_receive_ms: int
    group_id: str | None
    dead_letter_source_arn: str | None

    def to_stored(self, receive_count: int, first_receive_ms: int) -> StoredMessage:
        # Positional (in `StoredMessage`'s field order): one per message received, and keywords cost more.
        return StoredMessage(
            self.id,
            self.message_id,
            self.body,
            self.meta,
            self.sent_ms,
            receive_count,
            first_receive_ms,
            self.group_id,
            self.dead_letter_source_arn,
        )


def first_receive(row: MessageRow, now_ms: int) -> int:
    """The instant of ``row``'s first receive, ``now_ms`` if this is it."""
    return row.first_receive_ms if row.first_receive_ms > 0 else now_ms


def select_rows(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> list[MessageRow]:
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where}"
    return [MessageRow._make(r) for r in conn.execute(sql, params).fetchall()]


NOT_RECEIVED_MS = -(1 << 40)
"""``first_receive_ms`` of a message never received (rows written before this value was used hold 0).

Not 0: SQLite stores 0 in no bytes and a millisecond timestamp in six, so the first receive would
change the record's size, and SQLite rewrites a record that changes size whole, every overflow page of
a large body included (a 200 KB message cost 200 KB of WAL to receive). Stored in six bytes like the
timestamp that replaces it, the record keeps its size and SQLite overwrites in place only the pages
whose bytes changed. Likewise ``receive_count`` goes from 0 to 1 in no bytes."""

_INSERT_COLUMNS = "queue_id, message_id, body, meta, sent_ms, visible_at_ms, expires_at_ms, group_id, first_receive_ms"
_INSERT_VALUES = f"(?, ?, ?, ?, ?, ?, ?, ?, {NOT_RECEIVED_MS})"
_INSERT_CHUNK = 100
"""Most messages one multi-row INSERT carries (8 parameters each, far below SQLite's limit)."""


def send_messages(
    tx: Tx,
    waiters: QueueWaiters,
    queue_id: int,
    messages: Sequence[NewMessage],
    now_ms: int,
    dedup_window_ms: int,
    wake: Callable[[], None] | None = None,
) -> list[SendOutcome]:
    """Store the messages; once committed, ``wake`` runs, or else every long poll of the queue wakes."""
    queue = queue_of(tx, queue_id)
    if queue.key.fifo or any(m.dedup_key is not None for m in messages):
        outcomes = [_send_one(tx.conn, queue, m, now_ms, dedup_window_ms) for m in messages]
        inserted = sum(not outcome.duplicate for outcome in outcomes)
    else:
        outcomes = []
        for start in range(0, len(messages), _INSERT_CHUNK):
            outcomes.extend(_insert_plain(tx.conn, queue, messages[start : start + _INSERT_CHUNK]))
        inserted = len(outcomes)
    note_added(tx.conn, queue_id, inserted)
    tx.on_commit(wake if wake is not None else lambda: waiters.wake((queue_id,)))
    return outcomes


_INSERT_ONE = f"INSERT INTO messages ({_INSERT_COLUMNS}) VALUES {_INSERT_VALUES}"
_INSERT_MANY: dict[int, str] = {}  # the INSERT of n rows, by n (built once each)


def _insert_many(count: int) -> str:
    sql = _INSERT_MANY.get(count)
    if sql is None:
        values = ", ".join([_INSERT_VALUES] * count)
        sql = _INSERT_MANY[count] = f"INSERT INTO messages ({_INSERT_COLUMNS}) VALUES {values}"
    return sql


def _insert_plain(conn: sqlite3.Connection, queue: QueueRecord, messages: Sequence[NewMessage]) -> list[SendOutcome]:
    """Messages without deduplication (standard queues) in one statement instead of one per message.

    The row ids come from ``lastrowid``, not from ``RETURNING`` (whose result rows cost the driver
    about as much as the INSERT): with AUTOINCREMENT each row takes one more than the largest id the
    table ever had, and rows are inserted in the order of VALUES, so the n rows of one statement
    have the n consecutive ids that end at ``lastrowid``, in the messages' order.
    """
    retention_ms = queue.retention_ms
    queue_id = queue.id
    if len(messages) == 1:
        m = messages[0]
        row = (queue_id, m.message_id, m.body, m.meta, m.sent_ms, m.visible_at_ms, m.sent_ms + retention_ms, m.group_id)
        return [SendOutcome(m.message_id, int(conn.execute(_INSERT_ONE, row).lastrowid or 0))]
    params: list[object] = []
    for m in messages:
        params += (queue_id, m.message_id, m.body, m.meta, m.sent_ms, m.visible_at_ms, m.sent_ms + retention_ms)
        params.append(m.group_id)
    first = int(conn.execute(_insert_many(len(messages)), params).lastrowid or 0) - len(messages) + 1
    return [SendOutcome(m.message_id, row_id) for row_id, m in enumerate(messages, first)]


def send_to_queues(
    tx: Tx,
    waiters: QueueWaiters,
    sends: Sequence[tuple[int, Sequence[NewMessage]]],
    now_ms: int,
    dedup_window_ms: int,
    wake: Callable[[Sequence[int]], None] | None = None,
) -> None:
    """Store each queue's messages as `send_messages` would, one queue at a time, for less per message.

    Queues that need statements per message (FIFO queues, messages with a dedup id) take
    `send_messages`. The others' messages go in together: multi-row INSERTs across queues (each
    queue's messages in their order), one UPDATE of the counts of all queues given as many
    messages. Once committed, ``wake`` runs with the queues sent to (or else every long poll of
    theirs wakes). No outcomes: fan-out, the caller, has no use for the row ids.
    """
    plain: list[tuple[QueueRecord, Sequence[NewMessage]]] = []
    for queue_id, batch in sends:
        queue = queue_of(tx, queue_id)
        if queue.key.fifo or any(m.dedup_key is not None for m in batch):
            waking = None if wake is None else partial(wake, (queue_id,))
            send_messages(tx, waiters, queue_id, batch, now_ms, dedup_window_ms, waking)
        elif batch:
            plain.append((queue, batch))
    if not plain:
        return
    conn = tx.conn
    params: list[object] = []
    rows = 0
    for queue, batch in plain:
        queue_id = queue.id
        retention_ms = queue.retention_ms
        for m in batch:
            params += (queue_id, m.message_id, m.body, m.meta, m.sent_ms, m.visible_at_ms, m.sent_ms + retention_ms)
            params.append(m.group_id)
            rows += 1
            if rows == _INSERT_CHUNK:
                conn.execute(_insert_many(rows), params)
                params, rows = [], 0
    if rows:
        conn.execute(_insert_many(rows), params)
    _count_added(conn, [(queue.id, len(batch)) for queue, batch in plain])
    queue_ids = [queue.id for queue, _ in plain]
    tx.on_commit(partial(waiters.wake if wake is None else wake, queue_ids))


_COUNT_IDS = 500
"""Most queues one UPDATE of counts names (well under SQLite's limit on bound parameters)."""
_COUNT_MANY: dict[int, str] = {}  # the UPDATE of n queues' counts, by n (built once each)


def _count_added(conn: sqlite3.Connection, added: Sequence[tuple[int, int]]) -> None:
    """`note_added` for many queues: one UPDATE for all queues that had the same number added.

    Fan-out usually adds as many messages to each of a topic's queues, so this is one statement
    (a primary key lookup per queue) instead of one per queue.
    """
    by_count: dict[int, list[int]] = {}
    for queue_id, count in added:
        if count:
            by_count.setdefault(count, []).append(queue_id)
    for count, queue_ids in by_count.items():
        for start in range(0, len(queue_ids), _COUNT_IDS):
            part = queue_ids[start : start + _COUNT_IDS]
            conn.execute(_count_many(len(part)), (count, *part))


def _count_many(queues: int) -> str:
    sql = _COUNT_MANY.get(queues)
    if sql is None:
        marks = ", ".join("?" * queues)
        sql = _COUNT_MANY[queues] = f"UPDATE queue_counts SET messages = messages + ? WHERE queue_id IN ({marks})"
    return sql


def _send_one(
    conn: sqlite3.Connection, queue: QueueRecord, message: NewMessage, now_ms: int, dedup_window_ms: int
) -> SendOutcome:
    if message.dedup_key is not None:
        seen = conn.execute(
            "SELECT message_id, sequence FROM dedup WHERE queue_id = ? AND dedup_key = ? AND expires_at_ms > ?",
            (queue.id, message.dedup_key, now_ms),
        ).fetchone()
        if seen is not None:
            return SendOutcome(message_id=str(seen[0]), sequence=int(seen[1]), duplicate=True)
    cursor = conn.execute(
        _INSERT_ONE,
        (
            queue.id,
            message.message_id,
            message.body,
            message.meta,
            message.sent_ms,
            message.visible_at_ms,
            message.sent_ms + queue.retention_ms,
            message.group_id,
        ),
    )
    row_id = int(cursor.lastrowid or 0)
    if message.dedup_key is not None:
        conn.execute(
            "INSERT OR REPLACE INTO dedup (queue_id, dedup_key, message_id, sequence, expires_at_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (queue.id, message.dedup_key, message.message_id, row_id, now_ms + dedup_window_ms),
        )
    if queue.key.fifo and message.group_id is not None:
        fifo.note_sent(conn, queue.id, message.group_id, message.visible_at_ms)
    return SendOutcome(message_id=message.message_id, sequence=row_id)


def copy_message(
    conn: sqlite3.Connection, row: MessageRow, destination: QueueRecord, now_ms: int, dead_letter_source_arn: str | None
) -> None:
    """Move ``row`` to ``destination``: same id, body, meta, sent time and group, visible now.

    A move to a dead-letter queue (``dead_letter_source_arn`` given) happens on a receive, and AWS keeps
    counting: the message arrives received once more than before, its first receive kept. A move task's
    message starts afresh, received zero times, so the destination's redrive policy does not bounce it back.
    Expiry counts from the original send, as AWS keeps a standard message's enqueue time across queues; a
    FIFO message moved to a dead-letter queue starts its retention anew, because AWS resets a FIFO
    message's enqueue timestamp on that move.
    """
    dead_lettered = dead_letter_source_arn is not None
    enqueued_ms = now_ms if dead_lettered and destination.key.fifo else row.sent_ms
    receive_count, first_receive_ms = (
        (row.receive_count + 1, first_receive(row, now_ms)) if dead_lettered else (0, NOT_RECEIVED_MS)
    )
    conn.execute(
        "INSERT INTO messages (queue_id, message_id, body, meta, sent_ms, visible_at_ms, expires_at_ms, group_id,"
        " dead_letter_source_arn, receive_count, first_receive_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            destination.id,
            row.message_id,
            row.body,
            row.meta,
            row.sent_ms,
            now_ms,
            enqueued_ms + destination.retention_ms,
            row.group_id,
            dead_letter_source_arn,
            receive_count,
            first_receive_ms,
        ),
    )
    note_added(conn, destination.id, 1)
    source = conn.execute("DELETE FROM messages WHERE id = ? RETURNING queue_id", (row.id,)).fetchone()
    note_removed(conn, int(source[0]), 1)
    if destination.key.fifo and row.group_id is not None:
        fifo.note_sent(conn, destination.id, row.group_id, now_ms)


def free_bytes(tx: Tx) -> int:
    """How many bytes of the database file are free pages (`loosely.storage.sqlite.diskspace`)."""
    free_pages = tx.conn.execute("PRAGMA freelist_count").fetchone()[0]
    page_size = tx.conn.execute("PRAGMA page_size").fetchone()[0]
    return int(free_pages) * int(page_size)


_DELETE_CURRENT = "DELETE FROM messages WHERE id = ? AND queue_id = ? AND receive_count = ?"


def delete_messages(
    tx: Tx, waiters: QueueWaiters, queue_id: int, refs: Sequence[MessageRef], now_ms: int | None = None
) -> list[DeleteOutcome]:
    return _delete(tx, waiters, queue_id, refs, None, now_ms)


def delete_grouped_messages(
    tx: Tx, waiters: QueueWaiters, queue_id: int, refs: Sequence[MessageRef]
) -> tuple[list[DeleteOutcome], list[str | None]]:
    """`delete_messages`, also telling each ref's deleted message's group (None: none, or not deleted)."""
    groups: list[str | None] = []
    return _delete(tx, waiters, queue_id, refs, groups, None), groups


def _delete(
    tx: Tx,
    waiters: QueueWaiters,
    queue_id: int,
    refs: Sequence[MessageRef],
    deleted_groups: list[str | None] | None,
    now_ms: int | None,
) -> list[DeleteOutcome]:
    queue = queue_of(tx, queue_id)
    fifo_queue = queue.key.fifo
    # On a FIFO queue a receipt whose visibility timeout ran out deletes nothing (STALE), as on AWS.
    delete_fifo, fifo_params = (
        (_DELETE_CURRENT + " AND visible_at_ms > ?", (now_ms,)) if now_ms is not None else (_DELETE_CURRENT, ())
    )
    outcomes: list[DeleteOutcome] = []
    groups: set[str] = set()
    for ref in refs:
        # One statement in the common case (the receipt is current); tell GONE from STALE only when it is not.
        # Only a FIFO queue, or a caller that asks (fair queues), needs the deleted message's group, so
        # only they pay for a RETURNING row.
        params = (ref.row_id, queue_id, ref.receive_count)
        if not fifo_queue and deleted_groups is None:
            if tx.conn.execute(_DELETE_CURRENT, params).rowcount:
                outcomes.append(DeleteOutcome.DELETED)
                continue
        elif (
            deleted := tx.conn.execute(
                (delete_fifo if fifo_queue else _DELETE_CURRENT) + " RETURNING group_id",
                params + fifo_params if fifo_queue else params,
            ).fetchone()
        ) is not None:
            outcomes.append(DeleteOutcome.DELETED)
            group = None if deleted[0] is None else str(deleted[0])
            if deleted_groups is not None:
                deleted_groups.append(group)
            if fifo_queue and group is not None:
                groups.add(group)
            continue
        if deleted_groups is not None:
            deleted_groups.append(None)
        exists = tx.conn.execute("SELECT 1 FROM messages WHERE id = ? AND queue_id = ?", (ref.row_id, queue_id))
        outcomes.append(DeleteOutcome.GONE if exists.fetchone() is None else DeleteOutcome.STALE)
    note_removed(tx.conn, queue_id, outcomes.count(DeleteOutcome.DELETED))
    if fifo_queue and groups:
        # Deleting an in-flight message may unblock its group: recompute, and wake long polls.
        fifo.recompute_groups(tx.conn, queue_id, groups)
        tx.on_commit(lambda: waiters.wake((queue_id,)))
    return outcomes


_SET_VISIBILITY = "UPDATE messages SET visible_at_ms = ? WHERE id = ?"
_SET_VISIBILITY_FIFO = "UPDATE messages SET visible_at_ms = ?, visibility_changed_in = receive_count WHERE id = ?"
"""On a FIFO queue a change also records the receive it was made in: a ReceiveRequestAttemptId retry
must then claim anew, even if a later change sets the old deadline back (migration 0007). The same
one statement per message; standard queues, which have no receive attempts, record nothing."""


def change_visibility(
    tx: Tx, waiters: QueueWaiters, queue_id: int, changes: Sequence[tuple[MessageRef, int]], now_ms: int
) -> list[VisibilityOutcome]:
    queue = queue_of(tx, queue_id)
    set_visibility = _SET_VISIBILITY_FIFO if queue.key.fifo else _SET_VISIBILITY
    outcomes: list[VisibilityOutcome] = []
    groups: set[str] = set()
    sooner = False
    for ref, visible_at_ms in changes:
        row = tx.conn.execute(
            "SELECT receive_count, visible_at_ms, group_id FROM messages WHERE id = ? AND queue_id = ?",
            (ref.row_id, queue_id),
        ).fetchone()
        if row is None:
            outcomes.append(VisibilityOutcome.GONE)
        elif row[0] != ref.receive_count or row[0] == 0:
            # Received again since (the receipt is outdated), or never received. A current receipt
            # whose timeout ran out still changes the visibility, as on AWS.
            outcomes.append(VisibilityOutcome.NOT_IN_FLIGHT)
        else:
            tx.conn.execute(set_visibility, (visible_at_ms, ref.row_id))
            outcomes.append(VisibilityOutcome.CHANGED)
            sooner = sooner or visible_at_ms < row[1]
            if row[2] is not None:
                groups.add(str(row[2]))
    if queue.key.fifo:
        fifo.recompute_groups(tx.conn, queue_id, groups)
    if sooner:
        # Long polls sleep until the next known visibility; an earlier one must wake them.
        tx.on_commit(lambda: waiters.wake((queue_id,)))
    return outcomes


def expire_messages(tx: Tx, now_ms: int, limit: int) -> int:
    """Delete expired messages (oldest expiry first), then stale dedup and receive-attempt rows."""
    conn = tx.conn
    rows = conn.execute(
        "SELECT id, queue_id, group_id FROM messages WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    conn.executemany("DELETE FROM messages WHERE id = ?", [(r[0],) for r in rows])
    for queue_id, expired in Counter(int(r[1]) for r in rows).items():
        note_removed(conn, queue_id, expired)
    for queue_id, group_id in sorted({(int(r[1]), str(r[2])) for r in rows if r[2] is not None}):
        has_group = conn.execute(
            "SELECT 1 FROM fifo_groups WHERE queue_id = ? AND group_id = ?", (queue_id, group_id)
        ).fetchone()
        if has_group is not None:
            fifo.recompute_group(conn, queue_id, group_id)
    for table, key in (("dedup", "dedup_key"), ("receive_attempts", "attempt_id")):
        conn.execute(
            f"DELETE FROM {table} WHERE (queue_id, {key}) IN"
            f" (SELECT queue_id, {key} FROM {table} WHERE expires_at_ms <= ? LIMIT ?)",
            (now_ms, limit),
        )
    return len(rows)


COUNT_MESSAGES = (
    "SELECT (SELECT messages FROM queue_counts WHERE queue_id = :queue),"
    " (SELECT count(*) FROM messages INDEXED BY messages_by_expiry WHERE expires_at_ms <= :now AND queue_id = :queue),"
    " coalesce(sum(expires_at_ms > :now AND receive_count > 0), 0),"
    " coalesce(sum(expires_at_ms > :now AND receive_count = 0), 0)"
    " FROM messages INDEXED BY messages_by_visibility WHERE queue_id = :queue AND visible_at_ms > :now"
)
"""The counts in one statement (one snapshot), without reading the queue's visible messages.

The total comes from ``queue_counts``; in-flight and delayed messages are the not-visible ones,
read through ``messages_by_visibility``; expired rows the reaper has not deleted yet are read
through ``messages_by_expiry`` (the reaper keeps them few). Visible = total - those. So the cost
grows with the not-visible and expired messages, never with the visible backlog."""


def count_messages(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> QueueCounts:
    load_queue(conn, queue_id)
    total, expired, in_flight, delayed = conn.execute(COUNT_MESSAGES, {"now": now_ms, "queue": queue_id}).fetchone()
    visible = int(total or 0) - int(expired) - int(in_flight) - int(delayed)
    return QueueCounts(visible=max(visible, 0), in_flight=int(in_flight), delayed=int(delayed))
