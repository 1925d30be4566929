"""The document store on SQLite: versioned JSON documents by kind and key, run by the writer thread.

Reads that miss the in-memory `DocumentCache` go through the writer: it is the only connection that
sees every acknowledged write (and a read-only item commits without an fsync), so a caller always
reads its own writes. Hits (a topic read per Publish, a topic and its subscriptions per fan-out) cost
no trip to the writer. Every lookup is one primary-key probe or one index range, whatever the number
of stored documents.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from loosely.core.documents import Document
from loosely.core.ports import DocumentStore
from loosely.storage._documents import next_version, prefix_upper_bound
from loosely.storage.sqlite.document_cache import DocumentCache
from loosely.storage.sqlite.writer import Tx, Writer

_COLUMNS = "kind, key, parent, body, version, updated_ms"


def _document(row: tuple[Any, ...]) -> Document:
    kind, key, parent, body, version, updated_ms = row
    return Document(
        kind=str(kind),
        key=str(key),
        parent=None if parent is None else str(parent),
        body=str(body),
        version=int(version),
        updated_ms=int(updated_ms),
    )


def get_document(conn: sqlite3.Connection, kind: str, key: str) -> Document | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return None if row is None else _document(row)


def put_document(
    tx: Tx,
    cache: DocumentCache,
    kind: str,
    key: str,
    body: str,
    now_ms: int,
    parent: str | None,
    if_absent: bool,
    expected_version: int | None,
) -> tuple[Document, bool]:
    """Read and write in one work item: the writer runs items one at a time, so the check cannot race."""
    current = get_document(tx.conn, kind, key)
    version = next_version(None if current is None else current.version, if_absent, expected_version)
    if version is None:
        assert current is not None  # next_version returns None only for an existing document
        return current, False
    tx.conn.execute(
        f"INSERT INTO documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, key) DO UPDATE SET parent = excluded.parent, body = excluded.body,"
        " version = excluded.version, updated_ms = excluded.updated_ms",
        (kind, key, parent, body, version, now_ms),
    )
    stored = Document(kind, key, parent, body, version, now_ms)
    previous_parent = None if current is None else current.parent
    tx.on_commit(lambda: cache.stored(stored, previous_parent))
    return stored, True


def list_documents(
    conn: sqlite3.Connection, kind: str, parent: str | None, prefix: str, after: str, limit: int | None
) -> list[Document]:
    """One index range: ``(kind, key)`` or, for a parent's children, ``(kind, parent, key)``."""
    where = ["kind = ?"]
    params: list[object] = [kind]
    if parent is not None:
        where.append("parent = ?")
        params.append(parent)
    lower = max(prefix, after)
    if lower:
        where.append("key > ?" if after >= prefix else "key >= ?")
        params.append(lower)
    upper = prefix_upper_bound(prefix) if prefix else None
    if upper is not None:
        where.append("key < ?")
        params.append(upper)
    params.append(-1 if limit is None else limit)
    # Without statistics the planner prefers the primary key; a parent's children are few among many.
    source = "documents" if parent is None else "documents INDEXED BY documents_by_parent"
    sql = f"SELECT {_COLUMNS} FROM {source} WHERE {' AND '.join(where)} ORDER BY key LIMIT ?"
    return [_document(row) for row in conn.execute(sql, params).fetchall()]


def delete_document(tx: Tx, cache: DocumentCache, kind: str, key: str) -> bool:
    rows = tx.conn.execute("DELETE FROM documents WHERE kind = ? AND key = ? RETURNING parent", (kind, key)).fetchall()
    if not rows:
        return False
    parent = None if rows[0][0] is None else str(rows[0][0])
    tx.on_commit(lambda: cache.deleted(kind, key, parent))
    return True


def delete_children(tx: Tx, cache: DocumentCache, kind: str, parent: str) -> int:
    cursor = tx.conn.execute("DELETE FROM documents WHERE kind = ? AND parent = ?", (kind, parent))
    tx.on_commit(lambda: cache.children_deleted(kind, parent))
    return cursor.rowcount


def read_document(tx: Tx, cache: DocumentCache, kind: str, key: str) -> Document | None:
    """A read that missed the cache; what it found joins the cache in step with later writes."""
    found = get_document(tx.conn, kind, key)
    if found is not None:
        tx.on_commit(lambda: cache.read(found))
    return found


def read_children(tx: Tx, cache: DocumentCache, kind: str, parent: str) -> list[Document]:
    """A whole children listing that missed the cache (see `read_document`)."""
    found = list_documents(tx.conn, kind, parent, "", "", None)
    tx.on_commit(lambda: cache.listed(kind, parent, found))
    return found


class SqliteDocuments(DocumentStore):
    """`DocumentStore` methods of `SqliteStore`, which provides the writer.

    Writes are writer barriers, so the cache learns a change only once it is durable.
    """

    _writer: Writer
    _document_cache: DocumentCache | None = None

    @property
    def _documents_cached(self) -> DocumentCache:
        if self._document_cache is None:
            self._document_cache = DocumentCache()
        return self._document_cache

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
        cache = self._documents_cached
        return await self._writer.submit(
            lambda tx: put_document(tx, cache, kind, key, body, now_ms, parent, if_absent, expected_version),
            barrier=True,
        )

    async def get_document(self, kind: str, key: str) -> Document | None:
        cache = self._documents_cached
        found = cache.get(kind, key)
        if found is not None:
            return found
        return await self._writer.submit(lambda tx: read_document(tx, cache, kind, key))

    async def list_documents(
        self, kind: str, parent: str | None = None, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[Document]:
        whole_family = parent is not None and not prefix and not after and limit is None
        if not whole_family:
            return await self._writer.submit(lambda tx: list_documents(tx.conn, kind, parent, prefix, after, limit))
        assert parent is not None
        cache = self._documents_cached
        found = cache.children(kind, parent)
        if found is not None:
            return found
        return await self._writer.submit(lambda tx: read_children(tx, cache, kind, parent))

    async def delete_document(self, kind: str, key: str) -> bool:
        cache = self._documents_cached
        return await self._writer.submit(lambda tx: delete_document(tx, cache, kind, key), barrier=True)

    async def delete_children(self, kind: str, parent: str) -> int:
        cache = self._documents_cached
        return await self._writer.submit(lambda tx: delete_children(tx, cache, kind, parent), barrier=True)
