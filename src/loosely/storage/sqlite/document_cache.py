"""Recently read documents and children listings, kept in memory so reads skip the writer.

Every Publish reads its topic, and every fan-out reads the topic and lists its subscriptions. On
SQLite a read through the writer waits for the group commit in progress and then for a group of
its own: a Publish paid two commits' latency (the topic read, then its outbox write) and a fan-out
three. Documents change rarely (they are control-plane resources), so reads are answered from here.

Coherent by construction, like the queue cache: this backend is the database's only writer, and
the cache changes only in after-commit hooks of writer items, which run in commit order on the
event loop. A read that missed fills the cache in a hook of its own item, so a write committed
after that read always lands after it and is never overwritten with the older value. Writes are
barriers: their hooks run once the change is durable, so no reader sees a change that could still
be lost (``synchronous=PIPELINED``).

Bounded: past `MAX_ENTRIES` documents (or listings) the map is emptied and refills on demand.
"""

from __future__ import annotations

from collections.abc import Iterable

from loosely.core.documents import Document

MAX_ENTRIES = 10_000
"""Documents kept (and, separately, children listings kept) before the map starts over."""


class DocumentCache:
    """Documents by (kind, key) and complete children listings by (kind, parent), as last committed.

    Only what exists is kept: a miss means "not known here", never "absent", so a lookup of a
    document that does not exist always asks the database.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._documents: dict[tuple[str, str], Document] = {}
        self._children: dict[tuple[str, str], tuple[Document, ...]] = {}

    # ---- lookups ----

    def get(self, kind: str, key: str) -> Document | None:
        return self._documents.get((kind, key))

    def children(self, kind: str, parent: str) -> list[Document] | None:
        """Every document of ``kind`` under ``parent`` in key order, or None when not known."""
        listing = self._children.get((kind, parent))
        return None if listing is None else list(listing)

    # ---- filled by reads (in after-commit hooks of the read's item) ----

    def read(self, document: Document) -> None:
        if len(self._documents) >= self._max:
            self._documents.clear()
        self._documents[(document.kind, document.key)] = document

    def listed(self, kind: str, parent: str, documents: Iterable[Document]) -> None:
        if len(self._children) >= self._max:
            self._children.clear()
        self._children[(kind, parent)] = tuple(documents)

    # ---- changed by writes (in after-commit hooks, once durable) ----

    def stored(self, document: Document, previous_parent: str | None) -> None:
        """A put: the new version replaces a cached old one, and listings of its old and new parent are dropped.

        A document not cached yet stays out until it is read: write-mostly kinds do not fill the cache.
        """
        key = (document.kind, document.key)
        if key in self._documents:
            self._documents[key] = document
        self._forget_listing(document.kind, previous_parent)
        self._forget_listing(document.kind, document.parent)

    def deleted(self, kind: str, key: str, parent: str | None) -> None:
        self._documents.pop((kind, key), None)
        self._forget_listing(kind, parent)

    def children_deleted(self, kind: str, parent: str) -> None:
        gone = [k for k, doc in self._documents.items() if doc.kind == kind and doc.parent == parent]
        for k in gone:
            del self._documents[k]
        self._forget_listing(kind, parent)

    def _forget_listing(self, kind: str, parent: str | None) -> None:
        if parent is not None:
            self._children.pop((kind, parent), None)
