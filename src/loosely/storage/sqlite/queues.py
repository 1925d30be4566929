"""Queue records: the table, the in-memory cache, and the queue-level operations run by the writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from typing import Any

from loosely.core.errors import PurgeQueueInProgress, QueueDeletedRecently, QueueDoesNotExist
from loosely.core.queues.models import QueueKey, QueueRecord
from loosely.storage._common import dump_mapping, load_mapping
from loosely.storage.sqlite.writer import Tx

QUEUE_COLUMNS = "id, account_id, region, name, attributes, tags, created_ms, modified_ms, retention_ms, last_purge_ms"


def queue_from_row(row: tuple[Any, ...]) -> QueueRecord:
    (qid, account_id, region, name, attributes, tags, created_ms, modified_ms, retention_ms, last_purge_ms) = row
    return QueueRecord(
        id=int(qid),
        key=QueueKey(str(account_id), str(region), str(name)),
        attributes=load_mapping(str(attributes)),
        tags=load_mapping(str(tags)),
        created_ms=int(created_ms),
        modified_ms=int(modified_ms),
        retention_ms=int(retention_ms),
        last_purge_ms=None if last_purge_ms is None else int(last_purge_ms),
    )


class QueueCache:
    """Every queue record, in memory, so lookups need no trip to the writer thread.

    Coherent by construction: this backend is the database's only writer, and every change to a
    queue record is a writer barrier: the cache is updated once the change is durable, before its
    caller is told and before any later work runs. Readers may see a change a moment before its
    caller is told, never after, and never one that could still be lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, QueueRecord] = {}
        self._by_key: dict[QueueKey, int] = {}

    def load(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues").fetchall()
        for row in rows:
            self.put(queue_from_row(row))

    def put(self, record: QueueRecord) -> None:
        with self._lock:
            self._by_id[record.id] = record
            self._by_key[record.key] = record.id

    def remove(self, queue_id: int) -> None:
        with self._lock:
            record = self._by_id.pop(queue_id, None)
            if record is not None:
                self._by_key.pop(record.key, None)

    def by_id(self, queue_id: int) -> QueueRecord | None:
        with self._lock:
            return self._by_id.get(queue_id)

    def by_key(self, key: QueueKey) -> QueueRecord | None:
        with self._lock:
            queue_id = self._by_key.get(key)
            return None if queue_id is None else self._by_id.get(queue_id)

    def listing(self, account_id: str, region: str, prefix: str) -> list[QueueRecord]:
        with self._lock:
            records = list(self._by_id.values())
        found = [
            r
            for r in records
            if r.key.account_id == account_id and r.key.region == region and r.key.name.startswith(prefix)
        ]
        return sorted(found, key=lambda r: r.key.name)


_PARSED: dict[tuple[Any, ...], QueueRecord] = {}
_PARSED_MAX = 4096


def load_queue(conn: sqlite3.Connection, queue_id: int) -> QueueRecord:
    """The queue as the current transaction sees it; raise QueueDoesNotExist.

    Work items read queues from the database, not the cache, so that an item sees the changes
    of earlier items of its own group (which the cache learns only after the COMMIT). Every send,
    claim and delete starts here, so the parsed record is memoised by the row's exact content:
    the same row needs no JSON decoding twice, and any change to the row is a new key.
    """
    row = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues WHERE id = ?", (queue_id,)).fetchone()
    if row is None:
        raise QueueDoesNotExist()
    record = _PARSED.get(row)
    if record is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        record = _PARSED[row] = queue_from_row(row)
    return record


def note_added(conn: sqlite3.Connection, queue_id: int, count: int) -> None:
    """Count ``count`` messages inserted into the queue (see 0006_count_inserts_per_statement.sql).

    Every statement that inserts messages calls this with what it inserted, in the same transaction,
    once per statement: a row trigger cost a batch of ten one counter update per row.
    """
    if count:
        conn.execute("UPDATE queue_counts SET messages = messages + ? WHERE queue_id = ?", (count, queue_id))


def note_removed(conn: sqlite3.Connection, queue_id: int, count: int) -> None:
    """Count ``count`` messages deleted from the queue (see 0004_queue_counts.sql).

    Every statement that deletes messages calls this with what it deleted, in the same transaction.
    """
    if count:
        conn.execute("UPDATE queue_counts SET messages = messages - ? WHERE queue_id = ?", (count, queue_id))


def queue_of(tx: Tx, queue_id: int) -> QueueRecord:
    """`load_queue` for a work item: from the writer's record of the queue when it has one (no SELECT).

    Exact, not a cache that may lag: every change to a queue row goes through this module, which
    drops the record (`_changed`), and the writer drops them all on any rollback (see `Tx.queues`).
    """
    record = tx.queues.get(queue_id)
    if record is None:
        record = tx.queues[queue_id] = load_queue(tx.conn, queue_id)
    return record


def _changed(tx: Tx, queue_id: int) -> None:
    """The item changed this queue's row: the next `queue_of` reads it again."""
    tx.queues.pop(queue_id, None)


def find_queue(conn: sqlite3.Connection, key: QueueKey) -> QueueRecord | None:
    row = conn.execute(
        f"SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = ? AND region = ? AND name = ?",
        (key.account_id, key.region, key.name),
    ).fetchone()
    return None if row is None else queue_from_row(row)


def create_queue(
    tx: Tx,
    cache: QueueCache,
    key: QueueKey,
    attributes: Mapping[str, str],
    tags: Mapping[str, str],
    retention_ms: int,
    now_ms: int,
    deleted_since_ms: int | None,
) -> tuple[QueueRecord, bool]:
    existing = find_queue(tx.conn, key)
    if existing is not None:
        return existing, False
    if deleted_since_ms is not None:
        tomb = tx.conn.execute(
            "SELECT deleted_ms FROM queue_tombstones WHERE account_id = ? AND region = ? AND name = ?",
            (key.account_id, key.region, key.name),
        ).fetchone()
        if tomb is not None and tomb[0] >= deleted_since_ms:
            raise QueueDeletedRecently(
                "You must wait 60 seconds after deleting a queue before you can create another with the same name."
            )
    cursor = tx.conn.execute(
        "INSERT INTO queues (account_id, region, name, attributes, tags, created_ms, modified_ms, retention_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.account_id,
            key.region,
            key.name,
            dump_mapping(attributes),
            dump_mapping(tags),
            now_ms,
            now_ms,
            retention_ms,
        ),
    )
    record = load_queue(tx.conn, int(cursor.lastrowid or 0))
    tx.on_commit(lambda: cache.put(record))
    return record, True


def update_queue(
    tx: Tx,
    cache: QueueCache,
    queue_id: int,
    now_ms: int,
    attributes: Mapping[str, str] | None,
    retention_ms: int | None,
    tags: Mapping[str, str] | None,
) -> QueueRecord:
    """Change the record; the stored messages' expiry under a new retention period is the caller's
    to rewrite (`loosely.storage.sqlite.sweeps.start_retention_rewrite`)."""
    current = load_queue(tx.conn, queue_id)
    conn = tx.conn
    if attributes is not None:
        conn.execute(
            "UPDATE queues SET attributes = ?, modified_ms = ? WHERE id = ?",
            (dump_mapping(attributes), now_ms, queue_id),
        )
    if tags is not None:
        conn.execute("UPDATE queues SET tags = ? WHERE id = ?", (dump_mapping(tags), queue_id))
    if retention_ms is not None and retention_ms != current.retention_ms:
        conn.execute(
            "UPDATE queues SET retention_ms = ?, modified_ms = ? WHERE id = ?", (retention_ms, now_ms, queue_id)
        )
    _changed(tx, queue_id)
    record = load_queue(conn, queue_id)
    tx.on_commit(lambda: cache.put(record))
    return record


def delete_queue(tx: Tx, cache: QueueCache, queue_id: int, now_ms: int) -> None:
    record = load_queue(tx.conn, queue_id)
    conn = tx.conn
    # Its messages are left to a sweep (`loosely.storage.sqlite.sweeps`): nothing reaches them by now.
    for table in ("fifo_groups", "dedup", "receive_attempts", "retention_rewrites"):
        conn.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue_id,))  # table names are constants
    conn.execute("DELETE FROM queues WHERE id = ?", (queue_id,))  # its queue_counts row goes with it (trigger)
    _changed(tx, queue_id)
    key = record.key
    conn.execute(
        "INSERT INTO queue_tombstones (account_id, region, name, deleted_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id, region, name) DO UPDATE SET deleted_ms = excluded.deleted_ms",
        (key.account_id, key.region, key.name, now_ms),
    )
    tx.on_commit(lambda: cache.remove(queue_id))


def purge_queue(tx: Tx, cache: QueueCache, queue_id: int, now_ms: int, min_interval_ms: int) -> None:
    """Check the interval and record the purge in one step, so two racing purges cannot both pass the check.

    The messages themselves are deleted by a sweep (`loosely.storage.sqlite.sweeps`) that the caller
    starts in the same transaction.
    """
    record = load_queue(tx.conn, queue_id)
    if record.last_purge_ms is not None and now_ms - record.last_purge_ms < min_interval_ms:
        raise PurgeQueueInProgress(f"Only one PurgeQueue operation on {record.key.name} is allowed every 60 seconds.")
    conn = tx.conn
    conn.execute("UPDATE queues SET last_purge_ms = ? WHERE id = ?", (now_ms, queue_id))
    _changed(tx, queue_id)
    conn.execute("DELETE FROM receive_attempts WHERE queue_id = ?", (queue_id,))
    updated = load_queue(conn, queue_id)
    tx.on_commit(lambda: cache.put(updated))
