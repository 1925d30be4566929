"""Support for the TopicService tests: a real store (SQLite in tmp_path) and a reader of its outbox.

The service runs over the same SQLite backend the server uses, so its rules are tested against
real documents, versions and publications. No tests live in this module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from loosely.core.clock import FakeClock
from loosely.core.ids import SequentialIds
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.topics.admission import PublishAdmission
from loosely.core.topics.models import PublishedMessage, PushDelivery, decode_publication
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AccountScope, TopicSettings
from loosely.storage import open_store

ACCOUNT = "123456789012"
REGION = "us-east-1"
SCOPE = AccountScope(ACCOUNT, REGION)
OTHER = AccountScope("210987654321", REGION)


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
async def topic_service(
    tmp_path: Path, settings: TopicSettings | None = None, admission: PublishAdmission | None = None
) -> AsyncIterator[Harness]:
    """A TopicService over a fresh SQLite store, with a fake clock and sequential ids."""
    clock = FakeClock()
    store = open_store(f"sqlite:///{tmp_path / 'topics.db'}")
    await store.open()
    try:
        service = TopicService(store, store, clock, SequentialIds(), settings, admission)  # type: ignore[arg-type]
        yield Harness(service, store, clock)  # type: ignore[arg-type]
    finally:
        await store.close()


def policy_json(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
