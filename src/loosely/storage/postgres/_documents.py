"""The document store on PostgreSQL: versioned JSON documents by kind and key, shared by every node.

A write reads the current version under a row lock and decides with the rule the SQLite store
uses (`loosely.storage._documents.next_version`), so compare-and-set behaves the same on both. A
document that does not exist yet cannot be row-locked: its creation is ``INSERT ... ON CONFLICT
DO NOTHING``, and a writer that loses that race decides again against the winner's row. Every
lookup is a primary-key probe or one index range, whatever the number of stored documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from loosely.core.documents import Document
from loosely.core.errors import ConcurrentUpdate
from loosely.core.ports import DocumentStore
from loosely.storage._documents import next_version, prefix_upper_bound
from loosely.storage.postgres._messages import Conn, Row

T = TypeVar("T")

_COLUMNS = "kind, key, parent, body, version, updated_ms"
_RACES = 3  # creations lost to a concurrent creator before giving up with ConcurrentUpdate


class DocumentSql:
    """The statements of one store's schema (names are schema-qualified, as in `_sql.Sql`)."""

    def __init__(self, schema: str) -> None:
        t = f'"{schema}".documents'
        self.table = t
        self.get = f"SELECT {_COLUMNS} FROM {t} WHERE kind = %s AND key = %s"
        self.lock = f"SELECT {_COLUMNS} FROM {t} WHERE kind = %s AND key = %s FOR UPDATE"
        self.create = (
            f"INSERT INTO {t} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (kind, key) DO NOTHING RETURNING 1"
        )
        self.update = (
            f"UPDATE {t} SET parent = %s, body = %s, version = %s, updated_ms = %s WHERE kind = %s AND key = %s"
        )
        self.delete = f"DELETE FROM {t} WHERE kind = %s AND key = %s"
        self.delete_children = f"DELETE FROM {t} WHERE kind = %s AND parent = %s"

    def listing(self, parent: bool, lower_op: str | None, upper: bool) -> str:
        """One of a few fixed texts (so each is prepared once): one index range, in key order."""
        where = ["kind = %(kind)s"]
        if parent:
            where.append("parent = %(parent)s")
        if lower_op is not None:
            where.append(f"key {lower_op} %(lower)s")
        if upper:
            where.append("key < %(upper)s")
        return f"SELECT {_COLUMNS} FROM {self.table} WHERE {' AND '.join(where)} ORDER BY key LIMIT %(limit)s"


def document(row: Row) -> Document:
    return Document(kind=row[0], key=row[1], parent=row[2], body=row[3], version=row[4], updated_ms=row[5])


async def put_document(
    conn: Conn,
    sql: DocumentSql,
    doc: Document,
    if_absent: bool,
    expected_version: int | None,
) -> tuple[Document, bool]:
    """Write ``doc`` (its version is decided here) under the row lock, or create it if nobody did first."""
    for _ in range(_RACES):
        async with conn.transaction():
            cur = await conn.execute(sql.lock, (doc.kind, doc.key))
            row = await cur.fetchone()
            current = None if row is None else document(row)
            version = next_version(None if current is None else current.version, if_absent, expected_version)
            if version is None:
                assert current is not None  # next_version returns None only for an existing document
                return current, False
            stored = Document(doc.kind, doc.key, doc.parent, doc.body, version, doc.updated_ms)
            if current is not None:
                await conn.execute(sql.update, (doc.parent, doc.body, version, doc.updated_ms, doc.kind, doc.key))
                return stored, True
            cur = await conn.execute(sql.create, (doc.kind, doc.key, doc.parent, doc.body, version, doc.updated_ms))
            if await cur.fetchone() is not None:
                return stored, True
        # Another writer created it between our read and our insert: decide again against its row.
    raise ConcurrentUpdate("The document was changed by another request; read it again and retry.")


def listing_params(
    kind: str, parent: str | None, prefix: str, after: str, limit: int | None
) -> tuple[tuple[bool, str | None, bool], dict[str, Any]]:
    """The statement shape and parameters of a listing (the same bounds as the SQLite store's)."""
    lower = max(prefix, after)
    op = None if not lower else (">" if after >= prefix else ">=")
    upper = prefix_upper_bound(prefix) if prefix else None
    params = {"kind": kind, "parent": parent, "lower": lower, "upper": upper, "limit": limit}
    return (parent is not None, op, upper is not None), params


class PostgresDocuments(DocumentStore):
    """`DocumentStore` methods of `PostgresStore`, which provides ``_run`` and the schema."""

    schema: str
    _documents_sql: DocumentSql | None = None

    if TYPE_CHECKING:

        async def _run(self, work: Callable[[Conn], Awaitable[T]], *, bulk: bool = False) -> T: ...

    @property
    def _doc_sql(self) -> DocumentSql:
        if self._documents_sql is None:
            self._documents_sql = DocumentSql(self.schema)
        return self._documents_sql

    async def put_document(
        self,
        kind: str,
        key: str,
        body: str,
        now_ms: int,
        parent: str | None = None,
        if_absent: bool = False,
        expected_version: int | None = None,
    ) -> tuple[Document, bool]:
        doc = Document(kind, key, parent, body, 0, now_ms)
        return await self._run(lambda conn: put_document(conn, self._doc_sql, doc, if_absent, expected_version))

    async def get_document(self, kind: str, key: str) -> Document | None:
        async def fetch(conn: Conn) -> Row | None:
            cur = await conn.execute(self._doc_sql.get, (kind, key))
            return await cur.fetchone()

        row = await self._run(fetch)
        return None if row is None else document(row)

    async def list_documents(
        self, kind: str, parent: str | None = None, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[Document]:
        shape, params = listing_params(kind, parent, prefix, after, limit)
        statement = self._doc_sql.listing(*shape)

        async def fetch(conn: Conn) -> list[Row]:
            cur = await conn.execute(statement, params)
            return await cur.fetchall()

        return [document(row) for row in await self._run(fetch)]

    async def delete_document(self, kind: str, key: str) -> bool:
        async def delete(conn: Conn) -> int:
            cur = await conn.execute(self._doc_sql.delete, (kind, key))
            return cur.rowcount

        return await self._run(delete) > 0

    async def delete_children(self, kind: str, parent: str) -> int:
        async def delete(conn: Conn) -> int:
            cur = await conn.execute(self._doc_sql.delete_children, (kind, parent))
            return cur.rowcount

        return await self._run(delete, bulk=True)
