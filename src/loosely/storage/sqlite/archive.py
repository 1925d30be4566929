"""The FIFO topic message archive on SQLite (see `loosely.core.ports.ArchiveStore`).

Rows are written by `archive_publication` inside the outbox's `add_publications` work item, so a
message is archived exactly when its publication commits. Reads and purges are writer items too
(one writer owns the connection); each is an index walk of at most ``limit`` rows.
"""

from __future__ import annotations

import sqlite3

from loosely.core.documents import NewPublication
from loosely.core.ports import ArchiveStore
from loosely.core.topics.archive import ArchivedMessage
from loosely.storage.sqlite.writer import Tx, Writer


def archive_publication(conn: sqlite3.Connection, publication: NewPublication, sequence: int, now_ms: int) -> None:
    """Keep a copy of a publication just added (``sequence`` is its id) until ``archive_until_ms``."""
    conn.execute(
        "INSERT INTO sns_archive (topic_arn, sequence, published_ms, expires_ms, payload) VALUES (?, ?, ?, ?, ?)",
        (publication.topic_arn, sequence, now_ms, publication.archive_until_ms, publication.payload),
    )


def read_archive(tx: Tx, topic_arn: str, after_sequence: int | None, from_ms: int, limit: int) -> list[ArchivedMessage]:
    conn = tx.conn
    if after_sequence is None:
        first = conn.execute(
            "SELECT sequence FROM sns_archive INDEXED BY sns_archive_by_time"
            " WHERE topic_arn = ? AND published_ms >= ? ORDER BY published_ms, sequence LIMIT 1",
            (topic_arn, from_ms),
        ).fetchone()
        if first is None:
            return []
        after_sequence = int(first[0]) - 1
    rows = conn.execute(
        "SELECT sequence, published_ms, payload FROM sns_archive INDEXED BY sns_archive_by_topic"
        " WHERE topic_arn = ? AND sequence > ? ORDER BY sequence LIMIT ?",
        (topic_arn, after_sequence, limit),
    ).fetchall()
    return [ArchivedMessage(int(row[0]), int(row[1]), str(row[2])) for row in rows]


def purge_archive(tx: Tx, now_ms: int, limit: int) -> int:
    cursor = tx.conn.execute(
        "DELETE FROM sns_archive WHERE id IN"
        " (SELECT id FROM sns_archive INDEXED BY sns_archive_by_expiry"
        " WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?)",
        (now_ms, limit),
    )
    return int(cursor.rowcount)


class SqliteArchive(ArchiveStore):
    """`ArchiveStore` methods of `SqliteStore`, which provides the writer."""

    _writer: Writer

    async def read_archive(
        self, topic_arn: str, after_sequence: int | None, from_ms: int, limit: int
    ) -> list[ArchivedMessage]:
        return await self._writer.submit(lambda tx: read_archive(tx, topic_arn, after_sequence, from_ms, limit))

    async def purge_archive(self, now_ms: int, limit: int) -> int:
        return await self._writer.submit(lambda tx: purge_archive(tx, now_ms, limit))
