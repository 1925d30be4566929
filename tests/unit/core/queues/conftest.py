"""Fixtures for QueueService tests: a real SQLite store, fake time and predictable ids.

``loosely.storage`` is imported inside the fixture so the pure-module tests in this directory
never load a storage driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loosely.core.clock import FakeClock
from loosely.core.ids import SequentialIds
from loosely.core.ports import QueueStore
from loosely.core.queues.models import QueueKey
from loosely.core.queues.service import QueueService, QueueSettings

ACCOUNT = "000000000000"
REGION = "us-east-1"


def key(name: str) -> QueueKey:
    return QueueKey(account_id=ACCOUNT, region=REGION, name=name)


class AdvancingWaits:
    """Wraps a store so a long poll's wait moves the fake clock by its timeout instead of sleeping."""

    def __init__(self, inner: QueueStore, clock: FakeClock) -> None:
        self.inner = inner
        self.clock = clock
        self.waits: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None:
        self.waits.append(timeout_s)
        self.clock.advance(round(timeout_s * 1000))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[QueueStore]:
    from loosely.storage import open_store

    opened = open_store("sqlite:///" + str(tmp_path / "loosely.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now_ms=1_700_000_000_000)


@pytest.fixture
def waits(store: QueueStore, clock: FakeClock) -> AdvancingWaits:
    return AdvancingWaits(store, clock)


@pytest.fixture
def settings() -> QueueSettings:
    return QueueSettings(recreate_delay_ms=60_000, purge_interval_ms=60_000, dedup_window_ms=300_000)


@pytest.fixture
def service(waits: AdvancingWaits, clock: FakeClock, settings: QueueSettings) -> QueueService:
    return QueueService(waits, clock, SequentialIds(), settings)  # type: ignore[arg-type]
