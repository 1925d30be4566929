"""Message move tasks (redrive out of a dead-letter queue) on PostgreSQL.

A task row is leased to one node at a time (``lease_task`` takes a free row ``FOR UPDATE SKIP
LOCKED``), so each task advances on exactly one node while its lease lasts; a node that dies
simply lets its lease run out and another node picks the task up. The partial unique index
``move_tasks_one_active`` enforces one active task per source queue across nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors as pgerrors

from loosely.core.errors import UnsupportedOperation
from loosely.core.queues.models import MoveTask, MoveTaskStatus
from loosely.storage.postgres._messages import Conn, Row
from loosely.storage.postgres._sql import Sql

_ACTIVE_TASK_MESSAGE = (
    "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
)


def move_task(row: Row) -> MoveTask:
    """A row of _sql.TASK_COLUMNS as a MoveTask."""
    return MoveTask(
        task_handle=row[0],
        source_queue_id=row[1],
        source_arn=row[2],
        destination_arn=row[3],
        max_per_second=row[4],
        status=MoveTaskStatus(row[5]),
        approximate_to_move=row[6],
        moved=row[7],
        started_ms=row[8],
        failure_reason=row[9],
        lease_owner=row[10],
        lease_until_ms=row[11],
    )


async def create_task(conn: Conn, sql: Sql, task: MoveTask) -> None:
    values = (
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
    try:
        await conn.execute(sql.insert_task, values)
    except pgerrors.UniqueViolation as error:
        raise UnsupportedOperation(_ACTIVE_TASK_MESSAGE) from error


async def update_task(conn: Conn, sql: Sql, task: MoveTask) -> None:
    params = {
        "status": task.status.value,
        "to_move": task.approximate_to_move,
        "moved": task.moved,
        "reason": task.failure_reason,
        "owner": task.lease_owner,
        "until": task.lease_until_ms,
        "handle": task.task_handle,
    }
    try:
        await conn.execute(sql.update_task, params)
    except pgerrors.UniqueViolation as error:  # back to RUNNING while another task is active
        raise UnsupportedOperation(_ACTIVE_TASK_MESSAGE) from error


async def lease_task(conn: Conn, sql: Sql, owner: str, now_ms: int, lease_ms: int) -> MoveTask | None:
    cur = await conn.execute(sql.lease_task, {"owner": owner, "until": now_ms + lease_ms, "now": now_ms})
    row = await cur.fetchone()
    return None if row is None else move_task(row)


# ---- moving messages ----


async def move_messages(
    conn: Conn, sql: Sql, channel: str, source: tuple[int, bool], destination_id: int | None, limit: int, now_ms: int
) -> tuple[int, list[int]]:
    """Move up to ``limit`` visible messages out of ``source`` (id, fifo); return count and woken queues.

    Candidates are locked (SKIP LOCKED: rows or, on FIFO sources, whole ready groups) with their
    destinations resolved, destination FIFO groups are locked in key order, then rows are moved
    and every touched group is recomputed, all in one transaction.
    """
    source_id, source_fifo = source
    async with conn.transaction():
        params = {"q": source_id, "now": now_ms, "limit": limit, "dest": destination_id}
        if source_fifo:
            chosen = await _fifo_candidates(conn, sql, params, limit)
        else:
            cur = await conn.execute(sql.move_candidates_standard, params)
            chosen = await cur.fetchall()
        if not chosen:
            return 0, []
        dest_pairs = sorted({(dest, group or "") for _, group, dest, fifo in chosen if fifo})
        async with conn.pipeline():
            if dest_pairs:
                await conn.execute(sql.lock_group_pairs, _pairs(dest_pairs))
            cur = await conn.execute(
                sql.move_rows, {"ids": [c[0] for c in chosen], "dests": [c[2] for c in chosen], "now": now_ms}
            )
            if dest_pairs:
                await conn.execute(sql.settle_new_groups, _pairs(dest_pairs))
            if source_fifo:
                source_pairs = sorted({(source_id, group or "") for _, group, _, _ in chosen})
                await conn.execute(sql.recompute_groups, _pairs(source_pairs))
        moved = {queue_id: count for queue_id, count in await cur.fetchall()}
        if moved:
            await conn.execute(
                sql.notify, {"channel": channel, "queue_ids": list(moved), "wake_key": sql.wake_key, "node": sql.node}
            )
    return sum(moved.values()), list(moved)


async def _fifo_candidates(conn: Conn, sql: Sql, params: dict[str, Any], limit: int) -> list[Row]:
    """Up to ``limit`` messages of a FIFO source that may move now, as (id, group, destination id, fifo).

    Groups are locked first (ready, none in flight, SKIP LOCKED), then read under the locks; each
    group gives its messages in send order up to the first one that is delayed or cannot be moved
    (its source queue is gone), so nothing ever overtakes a message of its group.
    """
    cur = await conn.execute(sql.move_lock_fifo_groups, params)
    groups = [row[0] for row in await cur.fetchall()]
    if not groups:
        return []
    cur = await conn.execute(sql.move_candidates_fifo, params | {"groups": groups})
    chosen: list[Row] = []
    blocked: set[str] = set()
    for row_id, group_id, dest_id, dest_fifo, visible, alive, busy in await cur.fetchall():
        if busy or group_id in blocked or not alive:
            continue
        if not visible or dest_id is None:
            blocked.add(group_id)
            continue
        chosen.append((row_id, group_id, dest_id, dest_fifo))
        if len(chosen) >= limit:
            break
    return chosen


def _pairs(pairs: Sequence[tuple[int, str]]) -> dict[str, Any]:
    return {"queue_ids": [p[0] for p in pairs], "group_ids": [p[1] for p in pairs]}
