"""Support for the TopicService tests: a real store (SQLite in tmp_path) and a recorder of the outbox.

The service runs over the SQLite backend once it implements `DocumentStore` and `OutboxStore`;
until then over `MemoryStore` below, a small reference implementation of just the methods the
service calls, so the service's rules are tested either way. No tests live in this module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from loosely.core.clock import FakeClock
from loosely.core.documents import Document, NewPublication, Publication, PublishOutcome
from loosely.core.errors import ConcurrentUpdate
from loosely.core.ids import SequentialIds
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.topics.models import PublishedMessage, PushDelivery, decode_publication
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AccountScope, TopicSettings

ACCOUNT = "123456789012"
REGION = "us-east-1"
SCOPE = AccountScope(ACCOUNT, REGION)
OTHER = AccountScope("210987654321", REGION)


class MemoryStore(DocumentStore, OutboxStore):  # type: ignore[misc]
    """Documents and publications in dicts: the contract, minus durability and claims."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Document] = {}
        self.publications: list[Publication] = []
        self._dedup: dict[str, tuple[int, PublishOutcome]] = {}

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
        current = self.docs.get((kind, key))
        if if_absent and current is not None:
            return current, False
        if expected_version is not None and (current is None or current.version != expected_version):
            raise ConcurrentUpdate("version moved")
        doc = Document(kind, key, parent, body, (current.version + 1) if current else 1, now_ms)
        self.docs[(kind, key)] = doc
        return doc, True

    async def get_document(self, kind: str, key: str) -> Document | None:
        return self.docs.get((kind, key))

    async def list_documents(
        self, kind: str, parent: str | None = None, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[Document]:
        found = sorted(
            (d for (k, key), d in self.docs.items() if k == kind and key.startswith(prefix) and key > after),
            key=lambda d: d.key,
        )
        found = [d for d in found if parent is None or d.parent == parent]
        return found[:limit] if limit is not None else found

    async def delete_document(self, kind: str, key: str) -> bool:
        return self.docs.pop((kind, key), None) is not None

    async def delete_children(self, kind: str, parent: str) -> int:
        keys = [k for k, d in self.docs.items() if k[0] == kind and d.parent == parent]
        for k in keys:
            del self.docs[k]
        return len(keys)

    async def add_publications(
        self, publications: Sequence[NewPublication], now_ms: int, dedup_window_ms: int
    ) -> list[PublishOutcome]:
        outcomes = []
        for p in publications:
            seen = self._dedup.get(f"{p.topic_arn}\n{p.dedup_key}") if p.dedup_key else None
            if seen is not None and now_ms - seen[0] < dedup_window_ms:
                outcomes.append(PublishOutcome(seen[1].message_id, seen[1].sequence, duplicate=True))
                continue
            sequence = len(self.publications) + 1
            self.publications.append(Publication(sequence, p.topic_arn, p.message_id, p.payload, now_ms, sequence))
            outcome = PublishOutcome(p.message_id, sequence)
            if p.dedup_key:
                self._dedup[f"{p.topic_arn}\n{p.dedup_key}"] = (now_ms, outcome)
            outcomes.append(outcome)
        return outcomes

    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        claimed, self.publications = self.publications[:limit], self.publications[limit:]
        return claimed

    async def complete_publication(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    async def claim_deliveries(self, *args: object, **kwargs: object) -> list[object]:  # type: ignore[override]
        raise NotImplementedError

    async def finish_delivery(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    async def retry_delivery(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    async def wait_for_outbox(self, timeout_s: float) -> None:
        return None


def sqlite_has_documents() -> bool:
    from loosely.storage.sqlite import SqliteStore

    return issubclass(SqliteStore, DocumentStore) and issubclass(SqliteStore, OutboxStore)


@dataclass
class Harness:
    service: TopicService
    store: DocumentStore
    clock: FakeClock

    async def drain(self) -> list[PublishedMessage | PushDelivery]:
        """Everything recorded in the outbox since the last drain, decoded, oldest first."""
        assert isinstance(self.store, OutboxStore)
        claimed = await self.store.claim_publications("test", self.clock.now_ms(), 60_000, 1_000)
        return [decode_publication(p.payload) for p in claimed]

    async def pushes(self) -> list[PushDelivery]:
        return [p for p in await self.drain() if isinstance(p, PushDelivery)]


@asynccontextmanager
async def topic_service(tmp_path: Path, settings: TopicSettings | None = None) -> AsyncIterator[Harness]:
    """A TopicService over a fresh store, with a fake clock and sequential ids."""
    clock = FakeClock()
    if sqlite_has_documents():
        from loosely.storage import open_store

        store = open_store(f"sqlite:///{tmp_path / 'topics.db'}")
        await store.open()
        try:
            service = TopicService(store, store, clock, SequentialIds(), settings)  # type: ignore[arg-type]
            yield Harness(service, store, clock)  # type: ignore[arg-type]
        finally:
            await store.close()
        return
    memory = MemoryStore()
    yield Harness(TopicService(memory, memory, clock, SequentialIds(), settings), memory, clock)


def policy_json(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
