"""The FIFO topic message archive on PostgreSQL (see `loosely.core.ports.ArchiveStore`).

Rows are inserted by `archive_publication` inside `_outbox.add_publications`' transaction, so a
message is archived exactly when its publication commits. Reads are one index walk; purges delete
expired rows ``FOR UPDATE SKIP LOCKED``, so nodes purging at once take disjoint rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from loosely.core.documents import NewPublication
from loosely.core.ports import ArchiveStore
from loosely.core.topics.archive import ArchivedMessage
from loosely.storage.postgres._messages import Conn

T = TypeVar("T")

_INSERT = """
    INSERT INTO {s}.sns_archive (topic_arn, sequence, published_ms, expires_ms, payload)
    VALUES (%s, %s, %s, %s, %s)"""
_FIRST = """
    SELECT sequence FROM {s}.sns_archive WHERE topic_arn = %s AND published_ms >= %s
    ORDER BY published_ms, sequence LIMIT 1"""
_READ = """
    SELECT sequence, published_ms, payload FROM {s}.sns_archive WHERE topic_arn = %s AND sequence > %s
    ORDER BY sequence LIMIT %s"""
_PURGE = """
    DELETE FROM {s}.sns_archive WHERE id IN (
        SELECT id FROM {s}.sns_archive WHERE expires_ms <= %s ORDER BY expires_ms LIMIT %s FOR UPDATE SKIP LOCKED)"""


def _q(template: str, schema: str) -> str:
    return template.replace("{s}", f'"{schema}"')


async def archive_publication(conn: Conn, schema: str, publication: NewPublication, sequence: int, now_ms: int) -> None:
    """Keep a copy of a publication just added (``sequence`` is its id) until ``archive_until_ms``."""
    await conn.execute(
        _q(_INSERT, schema),
        (publication.topic_arn, sequence, now_ms, publication.archive_until_ms, publication.payload),
    )


class PostgresArchive(ArchiveStore):
    """`ArchiveStore` methods of `PostgresStore`, which provides the pool."""

    schema: str

    if TYPE_CHECKING:

        async def _run(self, work: Callable[[Conn], Awaitable[T]], *, bulk: bool = False) -> T: ...

    async def read_archive(
        self, topic_arn: str, after_sequence: int | None, from_ms: int, limit: int
    ) -> list[ArchivedMessage]:
        schema = self.schema

        async def read(conn: Conn) -> list[ArchivedMessage]:
            cursor = after_sequence
            if cursor is None:
                cur = await conn.execute(_q(_FIRST, schema), (topic_arn, from_ms))
                first = await cur.fetchone()
                if first is None:
                    return []
                cursor = int(first[0]) - 1
            cur = await conn.execute(_q(_READ, schema), (topic_arn, cursor, limit))
            return [ArchivedMessage(int(r[0]), int(r[1]), str(r[2])) for r in await cur.fetchall()]

        return await self._run(read)

    async def purge_archive(self, now_ms: int, limit: int) -> int:
        schema = self.schema

        async def purge(conn: Conn) -> int:
            cur = await conn.execute(_q(_PURGE, schema), (now_ms, limit))
            return int(cur.rowcount)

        return await self._run(purge)
