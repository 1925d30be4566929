"""Background workers: started with the app, retried after failures, stopped before the store closes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, cast

import pytest

from loosely.config import Settings
from loosely.core.ports import QueueStore
from loosely.core.queues.service import QueueService
from loosely.server import app as app_module
from loosely.server.app import build_app


class FakeStore:
    closed = False

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


async def test_workers_run_and_stop_before_store_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    store = FakeStore()

    async def expire(self: QueueService) -> int:
        assert not store.closed
        calls.append("expire")
        return 0

    async def move(self: QueueService, owner: str) -> bool:
        assert not store.closed
        calls.append(f"move:{owner.count(':')}")
        return False

    monkeypatch.setattr(QueueService, "expire_messages_once", expire)
    monkeypatch.setattr(QueueService, "run_move_tasks_once", move)

    async def handler(request: Any, context: Any) -> Any:
        raise AssertionError("no requests here")

    app = build_app(Settings(data_dir=tmp_path), store_factory=lambda _: cast(QueueStore, store), handler=handler)
    await app.startup()
    for _ in range(20):
        await asyncio.sleep(0)
    await app.shutdown()
    assert "expire" in calls
    assert "move:2" in calls  # owner = host:pid:random
    assert store.closed


async def test_failing_step_is_logged_once_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "MOVE_IDLE_INTERVAL_S", 0.001)
    attempts = 0

    async def step() -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 5:
            raise RuntimeError("store hiccup")
        return 0

    caplog.set_level(logging.INFO, logger="loosely.server.app")
    task = asyncio.create_task(app_module._repeat("test worker", step, lambda _: 10.0))
    for _ in range(200):
        if attempts >= 5:
            break
        await asyncio.sleep(0.002)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert attempts == 5
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert any("recovered" in r.getMessage() for r in caplog.records)
