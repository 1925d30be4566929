"""FIFO group bookkeeping: one ``fifo_groups`` row per non-empty group, saying when it can deliver.

Invariant: the messages of a group that are in flight are always among its first `WINDOW`
messages by row id. It holds because a claim hands out only a consecutive prefix of a group's
visible messages (at most `WINDOW` of them), and only when nothing of the group is in flight.

So a group's ``ready_at_ms`` is the later of its head's visibility and the visibility of every
already-received message among its first `WINDOW`: a claim finds deliverable groups with one
range scan of ``(queue_id, ready_at_ms)``, however many groups or messages the queue holds.
Delayed messages (never received) block the group only when they are at its head.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

WINDOW = 10


def recompute_group(conn: sqlite3.Connection, queue_id: int, group_id: str) -> None:
    """Bring the group's row up to date after any change to its messages (or delete it when empty)."""
    rows = conn.execute(
        "SELECT visible_at_ms, receive_count FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT ?",
        (queue_id, group_id, WINDOW),
    ).fetchall()
    if not rows:
        conn.execute("DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?", (queue_id, group_id))
        return
    ready_at = int(rows[0][0])
    for visible_at, receive_count in rows:
        if receive_count > 0 and visible_at > ready_at:
            ready_at = int(visible_at)
    conn.execute(
        "INSERT INTO fifo_groups (queue_id, group_id, ready_at_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (queue_id, group_id) DO UPDATE SET ready_at_ms = excluded.ready_at_ms",
        (queue_id, group_id, ready_at),
    )


def recompute_groups(conn: sqlite3.Connection, queue_id: int, group_ids: Iterable[str | None]) -> None:
    for group_id in sorted({g for g in group_ids if g is not None}):
        recompute_group(conn, queue_id, group_id)


def note_sent(conn: sqlite3.Connection, queue_id: int, group_id: str, visible_at_ms: int) -> None:
    """A message joined the group's tail: only a new group changes (its head is the new message)."""
    conn.execute(
        "INSERT INTO fifo_groups (queue_id, group_id, ready_at_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (queue_id, group_id) DO NOTHING",
        (queue_id, group_id, visible_at_ms),
    )


def rebuild_groups(conn: sqlite3.Connection, queue_id: int) -> None:
    """Recompute every group of the queue from its messages (after a bulk change such as a purge)."""
    conn.execute("DELETE FROM fifo_groups WHERE queue_id = ?", (queue_id,))
    rows = conn.execute(
        "SELECT DISTINCT group_id FROM messages WHERE queue_id = ? AND group_id IS NOT NULL", (queue_id,)
    ).fetchall()
    recompute_groups(conn, queue_id, (str(r[0]) for r in rows))


def next_ready_at(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> int | None:
    """When the next group becomes deliverable, after ``now_ms``."""
    row = conn.execute(
        "SELECT min(ready_at_ms) FROM fifo_groups WHERE queue_id = ? AND ready_at_ms > ?", (queue_id, now_ms)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
