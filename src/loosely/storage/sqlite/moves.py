"""Message move tasks (redrive out of a dead-letter queue) and the moves themselves."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from loosely.core.errors import UnsupportedOperation
from loosely.core.queues.models import MoveTask, MoveTaskStatus, QueueKey, QueueRecord
from loosely.storage._common import QueueWaiters
from loosely.storage.sqlite import fifo
from loosely.storage.sqlite.messages import MessageRow, copy_message, select_rows
from loosely.storage.sqlite.queues import find_queue, load_queue
from loosely.storage.sqlite.writer import Tx

_TASK_COLUMNS = (
    "task_handle, source_queue_id, source_arn, destination_arn, max_per_second, status, approximate_to_move,"
    " moved, started_ms, failure_reason, lease_owner, lease_until_ms"
)
_ACTIVE = (MoveTaskStatus.RUNNING.value, MoveTaskStatus.CANCELLING.value)
_PAGE = 64


def _task_from_row(row: tuple[object, ...]) -> MoveTask:
    values = list(row)
    values[5] = MoveTaskStatus(values[5])
    return MoveTask(*values)  # type: ignore[arg-type]


def _task_values(task: MoveTask) -> tuple[object, ...]:
    return (
        task.task_handle,
        task.source_queue_id,
        task.source_arn,
        task.destination_arn,
        task.max_per_second,
        task.status.value,
        task.approximate_to_move,
        task.moved,
        task.started_ms,
        task.failure_reason,
        task.lease_owner,
        task.lease_until_ms,
    )


def create_move_task(tx: Tx, task: MoveTask) -> None:
    active = tx.conn.execute(
        "SELECT 1 FROM move_tasks WHERE source_arn = ? AND status IN (?, ?)", (task.source_arn, *_ACTIVE)
    ).fetchone()
    if active is not None:
        raise UnsupportedOperation("There is already a task running. Only one active task is allowed for a source.")
    tx.conn.execute(f"INSERT INTO move_tasks ({_TASK_COLUMNS}) VALUES ({', '.join('?' * 12)})", _task_values(task))


def get_move_task(conn: sqlite3.Connection, task_handle: str) -> MoveTask | None:
    row = conn.execute(f"SELECT {_TASK_COLUMNS} FROM move_tasks WHERE task_handle = ?", (task_handle,)).fetchone()
    return None if row is None else _task_from_row(row)


def list_move_tasks(conn: sqlite3.Connection, source_arn: str, limit: int) -> list[MoveTask]:
    rows = conn.execute(
        f"SELECT {_TASK_COLUMNS} FROM move_tasks WHERE source_arn = ? ORDER BY started_ms DESC, seq DESC LIMIT ?",
        (source_arn, limit),
    ).fetchall()
    return [_task_from_row(r) for r in rows]


def update_move_task(tx: Tx, task: MoveTask) -> None:
    values = _task_values(task)
    tx.conn.execute(
        "UPDATE move_tasks SET source_queue_id = ?, source_arn = ?, destination_arn = ?, max_per_second = ?,"
        " status = ?, approximate_to_move = ?, moved = ?, started_ms = ?, failure_reason = ?, lease_owner = ?,"
        " lease_until_ms = ? WHERE task_handle = ?",
        (*values[1:], values[0]),
    )


def lease_move_task(tx: Tx, owner: str, now_ms: int, lease_ms: int) -> MoveTask | None:
    """The oldest-leased active task whose lease expired, now leased to ``owner``.

    Not also a task this owner still holds: a step ends by leasing its task until the next step is
    due, so the lease is the task's rate limit, and the owner that just ran it must wait like any other.
    """
    row = tx.conn.execute(
        f"SELECT {_TASK_COLUMNS} FROM move_tasks WHERE status IN (?, ?) AND lease_until_ms <= ?"
        " ORDER BY lease_until_ms, seq LIMIT 1",
        (*_ACTIVE, now_ms),
    ).fetchone()
    if row is None:
        return None
    task = _task_from_row(row)
    tx.conn.execute(
        "UPDATE move_tasks SET lease_owner = ?, lease_until_ms = ? WHERE task_handle = ?",
        (owner, now_ms + lease_ms, task.task_handle),
    )
    return get_move_task(tx.conn, task.task_handle)


def move_messages(
    tx: Tx, waiters: QueueWaiters, source_queue_id: int, destination_queue_id: int | None, limit: int, now_ms: int
) -> int:
    """Move up to ``limit`` visible messages, oldest first; leave those whose source queue is gone.

    A FIFO source gives up a group's messages in send order and never one behind a message of its
    group that is in flight or cannot be moved (see `_fifo_groups_to_move`).
    """
    conn = tx.conn
    source = load_queue(conn, source_queue_id)
    fixed = None if destination_queue_id is None else load_queue(conn, destination_queue_id)
    move = _Move(conn, source, fixed, limit, now_ms)
    if source.key.fifo:
        for group_id in _fifo_groups_to_move(conn, source.id, now_ms):
            for row in _group_prefix(conn, source.id, group_id, now_ms):
                if not move.take(row) or move.full:
                    break
            if move.full:
                break
        fifo.recompute_groups(conn, source.id, move.groups)
    else:
        for row in _visible_rows(conn, source.id, now_ms):
            move.take(row)
            if move.full:
                break
    woken = move.woken
    tx.on_commit(lambda: waiters.wake(woken))
    return move.moved


class _Move:
    """One step of a move task: what it moved so far and to where."""

    def __init__(
        self, conn: sqlite3.Connection, source: QueueRecord, fixed: QueueRecord | None, limit: int, now_ms: int
    ) -> None:
        self.conn, self.source, self.fixed, self.limit, self.now_ms = conn, source, fixed, limit, now_ms
        self.moved = 0
        self.groups: set[str] = set()
        self.woken: set[int] = set()

    @property
    def full(self) -> bool:
        return self.moved >= self.limit

    def take(self, row: MessageRow) -> bool:
        """Move the row to its destination; False when it has none (its source queue is gone)."""
        destination = self.fixed or _original_queue(self.conn, row.dead_letter_source_arn)
        if destination is None or destination.id == self.source.id:
            return False
        copy_message(self.conn, row, destination, self.now_ms, None)
        self.moved += 1
        self.woken.add(destination.id)
        if row.group_id is not None:
            self.groups.add(row.group_id)
        return True


def _visible_rows(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> Iterator[MessageRow]:
    """Visible, unexpired messages in visibility order, in pages."""
    after = (-1, -1)
    while True:
        rows = select_rows(
            conn,
            "queue_id = ? AND visible_at_ms <= ? AND (visible_at_ms, id) > (?, ?) ORDER BY visible_at_ms, id LIMIT ?",
            (queue_id, now_ms, after[0], after[1], _PAGE),
        )
        yield from (row for row in rows if row.expires_at_ms > now_ms)
        if len(rows) < _PAGE:
            return
        after = (rows[-1].visible_at_ms, rows[-1].id)


def _fifo_groups_to_move(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> Iterator[str]:
    """The ready groups of a FIFO queue (head visible) that have no message in flight, in ready order.

    A group with a message in flight gives nothing: what is behind that message must not reach the
    destination before it, and what is before it would be received there while its successor is
    still being processed here. Busy groups are found through the visibility index, so this costs
    the queue's not-visible messages, not its depth.
    """
    busy = {
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT group_id FROM messages"
            " WHERE queue_id = ? AND visible_at_ms > ? AND receive_count > 0 AND expires_at_ms > ?",
            (queue_id, now_ms, now_ms),
        )
        if r[0] is not None
    }
    after: tuple[int, str] = (-1, "")
    while True:
        groups = conn.execute(
            "SELECT ready_at_ms, group_id FROM fifo_groups WHERE queue_id = ? AND ready_at_ms <= ?"
            " AND (ready_at_ms, group_id) > (?, ?) ORDER BY ready_at_ms, group_id LIMIT ?",
            (queue_id, now_ms, after[0], after[1], _PAGE),
        ).fetchall()
        yield from (str(group_id) for _ready, group_id in groups if group_id not in busy)
        if len(groups) < _PAGE:
            return
        after = (int(groups[-1][0]), str(groups[-1][1]))


def _group_prefix(conn: sqlite3.Connection, queue_id: int, group_id: str, now_ms: int) -> Iterator[MessageRow]:
    """The group's messages in send order up to the first one that is not visible (delayed), as a claim takes them."""
    after_id = -1
    while True:
        rows = select_rows(
            conn, "queue_id = ? AND group_id = ? AND id > ? ORDER BY id LIMIT ?", (queue_id, group_id, after_id, _PAGE)
        )
        for row in rows:
            if row.expires_at_ms <= now_ms:
                continue  # gone for every purpose; the reaper deletes it
            if row.visible_at_ms > now_ms:
                return
            yield row
        if len(rows) < _PAGE:
            return
        after_id = rows[-1].id


def _original_queue(conn: sqlite3.Connection, source_arn: str | None) -> QueueRecord | None:
    key = None if source_arn is None else QueueKey.from_arn(source_arn)
    return None if key is None else find_queue(conn, key)
