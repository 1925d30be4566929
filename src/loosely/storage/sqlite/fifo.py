"""FIFO group bookkeeping: one ``fifo_groups`` row per non-empty group, saying when it can deliver.

A group is ready when its head (its first message by row id) is visible: its ``ready_at_ms`` is
the head's ``visible_at_ms``. As on AWS, a head whose visibility ran out (or was set to 0) is
delivered again even while later messages of its group are still in flight; order holds because a
claim takes only the group's *consecutive* visible prefix from the head and stops at the first
message that is in flight or delayed. A group whose head is in flight or delayed is not ready, so
nothing behind an unfinished message is ever delivered.

So a claim finds deliverable groups with one range scan of ``(queue_id, ready_at_ms)``, however
many groups or messages the queue holds, and keeping a row current costs one indexed lookup of
the head after any change to the group's messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

WINDOW = 10
"""Most messages one claim takes from one group (a receive returns at most ten)."""


def recompute_group(conn: sqlite3.Connection, queue_id: int, group_id: str) -> None:
    """Bring the group's row up to date after any change to its messages (or delete it when empty)."""
    head = conn.execute(
        "SELECT visible_at_ms FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT 1",
        (queue_id, group_id),
    ).fetchone()
    if head is None:
        conn.execute("DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?", (queue_id, group_id))
        return
    conn.execute(
        "INSERT INTO fifo_groups (queue_id, group_id, ready_at_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (queue_id, group_id) DO UPDATE SET ready_at_ms = excluded.ready_at_ms",
        (queue_id, group_id, int(head[0])),
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


def next_ready_at(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> int | None:
    """When the next group becomes deliverable, after ``now_ms``."""
    row = conn.execute(
        "SELECT min(ready_at_ms) FROM fifo_groups WHERE queue_id = ? AND ready_at_ms > ?", (queue_id, now_ms)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
