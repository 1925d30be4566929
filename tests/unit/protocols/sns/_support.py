"""SNS protocol test helpers: a botocore ``sns`` client whose requests `dispatch.handle` serves in process.

The TopicService behind it is real, over a real SQLite store in a temporary directory, so these
tests check the wire (names, shapes, errors) against the same storage the server uses. The bridge
owns one event loop for its whole life: the store's writer thread answers on the loop that opened it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from loosely.core.clock import FakeClock
from loosely.core.ids import SequentialIds
from loosely.core.topics.models import PublishedMessage, PushDelivery, decode_publication
from loosely.core.topics.service import TopicService
from loosely.protocols._wire import ServerContext
from loosely.protocols.dispatch import handle
from loosely.storage import open_store

from .._support import _Raw, wire_request

ENDPOINT = "http://localhost:4575"
ACCOUNT = "123456789012"
T = TypeVar("T")


@dataclass
class SnsBridge:
    client: Any
    store: Any
    ctx: ServerContext
    runner: asyncio.Runner
    clock: FakeClock
    responses: list[Any] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` on the bridge's loop (the one the store was opened on)."""
        return self.runner.run(coro)

    def published(self) -> list[PublishedMessage | PushDelivery]:
        """Everything the outbox recorded since the last call, decoded, oldest first."""
        claimed = self.run(self.store.claim_publications("test", self.clock.now_ms(), 60_000, 1_000))
        return [decode_publication(p.payload) for p in claimed]


@contextmanager
def sns_bridge(tmp_path: Path, access_key: str = ACCOUNT) -> Iterator[SnsBridge]:
    """A bridge over a fresh SQLite store in ``tmp_path``; the store and the loop close on exit."""
    runner = asyncio.Runner()
    store = open_store(f"sqlite:///{tmp_path / 'topics.db'}")
    runner.run(store.open())
    try:
        clock = FakeClock()
        topics = TopicService(store, store, clock, SequentialIds())  # type: ignore[arg-type]
        ctx = ServerContext(queues=None, topics=topics, default_account_id="000000000000")  # type: ignore[arg-type]
        yield _wire_client(SnsBridge(None, store, ctx, runner, clock), access_key)
    finally:
        runner.run(store.close())
        runner.close()


def _wire_client(bridge: SnsBridge, access_key: str) -> SnsBridge:
    """Points a botocore ``sns`` client at ``handle``, served on the bridge's loop."""
    session = botocore.session.get_session()
    bridge.client = session.create_client(
        "sns",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def serve(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        response = bridge.run(handle(wire_request(request), bridge.ctx))
        bridge.responses.append(response)
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))

    bridge.client.meta.events.register("before-send.sns", serve)
    return bridge
