"""Message move tasks (redrive out of a dead-letter queue) and the moves themselves."""

from __future__ import annotations

import sqlite3

from loosely.core.errors import UnsupportedOperation
from loosely.core.queues.models import MoveTask, MoveTaskStatus, QueueKey, QueueRecord
from loosely.storage._common import QueueWaiters
from loosely.storage.sqlite import fifo
from loosely.storage.sqlite.messages import copy_message, select_rows
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
    """The oldest-leased active task that is free (or already this owner's), now leased to ``owner``."""
    row = tx.conn.execute(
        f"SELECT {_TASK_COLUMNS} FROM move_tasks WHERE status IN (?, ?) AND (lease_until_ms <= ? OR lease_owner = ?)"
        " ORDER BY lease_until_ms, seq LIMIT 1",
        (*_ACTIVE, now_ms, owner),
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
    """Move up to ``limit`` visible messages, oldest first; leave those whose source queue is gone."""
    conn = tx.conn
    source = load_queue(conn, source_queue_id)
    fixed = None if destination_queue_id is None else load_queue(conn, destination_queue_id)
    moved = 0
    groups: set[str] = set()
    woken: set[int] = set()
    after = (-1, -1)
    while moved < limit:
        rows = select_rows(
            conn,
            "queue_id = ? AND visible_at_ms <= ? AND (visible_at_ms, id) > (?, ?) ORDER BY visible_at_ms, id LIMIT ?",
            (source.id, now_ms, after[0], after[1], _PAGE),
        )
        for row in rows:
            destination = fixed or _original_queue(conn, row.dead_letter_source_arn)
            if row.expires_at_ms <= now_ms or destination is None or destination.id == source.id:
                continue
            copy_message(conn, row, destination, now_ms, None)
            moved += 1
            woken.add(destination.id)
            if row.group_id is not None:
                groups.add(row.group_id)
            if moved >= limit:
                break
        if len(rows) < _PAGE:
            break
        after = (rows[-1].visible_at_ms, rows[-1].id)
    if source.key.fifo:
        fifo.recompute_groups(conn, source.id, groups)
    tx.on_commit(lambda: waiters.wake(woken))
    return moved


def _original_queue(conn: sqlite3.Connection, source_arn: str | None) -> QueueRecord | None:
    key = None if source_arn is None else QueueKey.from_arn(source_arn)
    return None if key is None else find_queue(conn, key)
