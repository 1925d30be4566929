"""Changing many messages in chunks: what PurgeQueue and DeleteQueue leave to delete (migration 0008),
and the expiry a new retention period gives every stored message of a queue (migration 0009).

A queue's sweep is a row of ``message_sweeps``: delete its messages sent at or before an instant
(a purge) or all of them (a deleted queue, whose messages no operation can reach any more). Each
`sweep_chunk` is one work item of the writer, so sends, receives and deletes of other queues commit
between chunks instead of waiting behind one long DELETE, and the WAL holds one chunk at a time.
The row is written in the same transaction as the purge or queue deletion that starts the sweep and
removed in the one that deletes the last message, so a sweep interrupted by a crash is still there
when the store opens (`pending_sweeps`) and is finished then.
"""

from __future__ import annotations

import sqlite3

from loosely.core.errors import QueueDoesNotExist
from loosely.storage.sqlite import fifo
from loosely.storage.sqlite.queues import note_removed, queue_of
from loosely.storage.sqlite.writer import Tx

SWEEP_CHUNK = 2_000
"""Messages deleted per work item: about 4 ms of the writer's time for small messages."""

EVERY_MESSAGE = 1 << 62
"""``sent_before_ms`` of a deleted queue's sweep: later than any message's send."""


def start_sweep(conn: sqlite3.Connection, queue_id: int, sent_before_ms: int) -> None:
    """Record that the queue's messages sent at or before ``sent_before_ms`` are to be deleted.

    A sweep already recorded for the queue is widened, never narrowed: a queue deleted while its
    purge is being swept loses every message.
    """
    conn.execute(
        "INSERT INTO message_sweeps (queue_id, sent_before_ms) VALUES (?, ?) ON CONFLICT (queue_id)"
        " DO UPDATE SET sent_before_ms = max(sent_before_ms, excluded.sent_before_ms)",
        (queue_id, sent_before_ms),
    )


def sweep_chunk(tx: Tx, queue_id: int) -> bool:
    """Delete up to `SWEEP_CHUNK` of the sweep's messages; return whether the sweep is over (its row gone).

    On a FIFO queue the groups that lost messages are recomputed, so that their heads are right
    between chunks; a deleted queue's groups went with it.
    """
    conn = tx.conn
    found = conn.execute("SELECT sent_before_ms FROM message_sweeps WHERE queue_id = ?", (queue_id,)).fetchone()
    if found is None:
        return True
    try:
        fifo_queue = queue_of(tx, queue_id).key.fifo
    except QueueDoesNotExist:
        fifo_queue = False
    chunk = (
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages INDEXED BY messages_by_visibility"
        " WHERE queue_id = ? AND sent_ms <= ? LIMIT ?)"
    )
    limit = SWEEP_CHUNK
    params = (queue_id, int(found[0]), limit)
    if fifo_queue:
        groups = conn.execute(chunk + " RETURNING group_id", params).fetchall()
        deleted = len(groups)
        fifo.recompute_groups(conn, queue_id, (group for (group,) in groups))
    else:
        deleted = conn.execute(chunk, params).rowcount
    note_removed(conn, queue_id, deleted)
    if deleted < limit:
        conn.execute("DELETE FROM message_sweeps WHERE queue_id = ?", (queue_id,))
        return True
    return False


def pending_sweeps(conn: sqlite3.Connection) -> list[int]:
    """The queues whose sweep has not finished (interrupted by a crash or a shutdown)."""
    return [int(row[0]) for row in conn.execute("SELECT queue_id FROM message_sweeps ORDER BY queue_id")]


REWRITE_SPAN = 4_000
"""Row ids one chunk of a retention rewrite covers. It walks the table in id order (the queue's own
index is ordered by visibility, which receives change under the walk), so a chunk reads the rows of
every queue in its span and rewrites its queue's: at most this many, a few milliseconds."""


def start_retention_rewrite(conn: sqlite3.Connection, queue_id: int, retention_ms: int) -> bool:
    """Record that the queue's stored messages expire ``retention_ms`` after their send; False if none are stored.

    A rewrite already under way starts over with the newer period.
    """
    last = conn.execute("SELECT max(id) FROM messages").fetchone()[0]
    if last is None:
        return False
    conn.execute(
        "INSERT INTO retention_rewrites (queue_id, retention_ms, after_id, last_id) VALUES (?, ?, 0, ?)"
        " ON CONFLICT (queue_id) DO UPDATE SET retention_ms = excluded.retention_ms, after_id = 0,"
        " last_id = excluded.last_id",
        (queue_id, retention_ms, int(last)),
    )
    return True


def rewrite_chunk(tx: Tx, queue_id: int) -> bool:
    """Rewrite the expiry of the queue's messages in the next span of ids; return whether the rewrite is over."""
    conn = tx.conn
    found = conn.execute(
        "SELECT retention_ms, after_id, last_id FROM retention_rewrites WHERE queue_id = ?", (queue_id,)
    ).fetchone()
    if found is None:
        return True
    retention_ms, after_id, last_id = (int(value) for value in found)
    first = conn.execute("SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT 1", (after_id,)).fetchone()
    upto = last_id if first is None else min(int(first[0]) - 1 + REWRITE_SPAN, last_id)
    if first is not None and int(first[0]) <= last_id:
        conn.execute(  # +queue_id: walk the ids, not the queue's index
            "UPDATE messages SET expires_at_ms = sent_ms + ? WHERE id BETWEEN ? AND ? AND +queue_id = ?",
            (retention_ms, int(first[0]), upto, queue_id),
        )
    if upto >= last_id:
        conn.execute("DELETE FROM retention_rewrites WHERE queue_id = ?", (queue_id,))
        return True
    conn.execute("UPDATE retention_rewrites SET after_id = ? WHERE queue_id = ?", (upto, queue_id))
    return False


def pending_rewrites(conn: sqlite3.Connection) -> list[int]:
    """The queues whose retention rewrite has not finished (interrupted by a crash or a shutdown)."""
    return [int(row[0]) for row in conn.execute("SELECT queue_id FROM retention_rewrites ORDER BY queue_id")]
