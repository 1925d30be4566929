"""SNS protocol test helpers: a botocore ``sns`` client whose requests `dispatch.handle` serves in process.

The TopicService behind it is real, over `MemoryDocuments`: a dict-backed document store and
outbox with just what the service calls, so these tests check the wire (names, shapes, errors)
and not storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from loosely.core.clock import FakeClock
from loosely.core.documents import Document, NewPublication, Publication, PublishOutcome
from loosely.core.errors import ConcurrentUpdate
from loosely.core.ids import SequentialIds
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.topics.service import TopicService
from loosely.protocols._wire import ServerContext
from loosely.protocols.dispatch import handle

from .._support import _Raw, wire_request

ENDPOINT = "http://localhost:4575"
ACCOUNT = "123456789012"


class MemoryDocuments(DocumentStore, OutboxStore):  # type: ignore[misc]
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Document] = {}
        self.publications: list[NewPublication] = []

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
            raise ConcurrentUpdate("moved")
        doc = Document(kind, key, parent, body, current.version + 1 if current else 1, now_ms)
        self.docs[(kind, key)] = doc
        return doc, True

    async def get_document(self, kind: str, key: str) -> Document | None:
        return self.docs.get((kind, key))

    async def list_documents(
        self, kind: str, parent: str | None = None, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[Document]:
        found = sorted(
            (
                d
                for (k, key), d in self.docs.items()
                if k == kind and key.startswith(prefix) and key > after and (parent is None or d.parent == parent)
            ),
            key=lambda d: d.key,
        )
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
        self.publications.extend(publications)
        return [PublishOutcome(p.message_id, len(self.publications)) for p in publications]

    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        return []

    async def complete_publication(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def claim_deliveries(self, *args: Any, **kwargs: Any) -> list[Any]:  # type: ignore[override]
        raise NotImplementedError

    async def finish_delivery(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def retry_delivery(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def wait_for_outbox(self, timeout_s: float) -> None:
        return None


@dataclass
class SnsBridge:
    client: Any
    store: MemoryDocuments
    ctx: ServerContext
    responses: list[Any] = field(default_factory=list)


def make_sns_bridge(access_key: str = ACCOUNT) -> SnsBridge:
    store = MemoryDocuments()
    topics = TopicService(store, store, FakeClock(), SequentialIds())
    ctx = ServerContext(queues=None, topics=topics, default_account_id="000000000000")  # type: ignore[arg-type]
    session = botocore.session.get_session()
    client = session.create_client(
        "sns",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    bridge = SnsBridge(client, store, ctx)

    def serve(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        response = asyncio.run(handle(wire_request(request), ctx))
        bridge.responses.append(response)
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))  # type: ignore[arg-type]

    client.meta.events.register("before-send.sns", serve)
    return bridge
