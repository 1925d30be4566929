"""The storage contract: one body of tests, run against every backend.

Each test gets a fresh, opened store from the ``store`` fixture (and ``harness`` when it needs to
close and reopen the same database):

* ``sqlite``: a file in the test's tmp_path (``synchronous=FULL``, the default).
* ``sqlite-pipelined``: the same with ``synchronous=PIPELINED`` (the writer's own WAL syncs).
* ``postgres``: ``open_store(url, schema=<unique name>)`` on the server of ``postgres_url``
  (see tests/conftest.py). **The PostgreSQL backend must accept a ``schema`` option** and keep
  all its tables in that schema (creating it when missing); the fixture drops the schema
  afterwards. Skipped when ``loosely.storage.postgres.PostgresStore`` is missing or the server is
  unreachable, except under CI=true, where that fails.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from loosely.core.ports import QueueStore
from loosely.storage import open_store


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail under CI=true (as tests/conftest.py does for an unreachable server)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)")
    pytest.skip(reason)


class Harness:
    """Opens stores on one database, and reopens them (persistence tests)."""

    def __init__(self, backend: str, factory: Callable[[], QueueStore]) -> None:
        self.backend = backend
        self._factory = factory
        self.store: QueueStore | None = None

    async def open(self) -> QueueStore:
        store = self._factory()
        await store.open()
        self.store = store
        return store

    async def reopen(self) -> QueueStore:
        await self.close()
        return await self.open()

    async def close(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()


def _postgres_factory(request: pytest.FixtureRequest) -> tuple[Callable[[], QueueStore], Callable[[], None]]:
    url: str = request.getfixturevalue("postgres_url")
    try:
        module = importlib.import_module("loosely.storage.postgres")
        module.PostgresStore  # noqa: B018 - presence check
    except (ImportError, AttributeError) as exc:
        skip_or_fail(f"the PostgreSQL backend is not available: {exc}")
    schema = f"contract_{uuid.uuid4().hex[:16]}"

    def drop() -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return (lambda: open_store(url, schema=schema)), drop


@pytest.fixture(params=["sqlite", "sqlite-pipelined", pytest.param("postgres", marks=pytest.mark.postgres)])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    drop: Callable[[], None] | None = None
    if request.param.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/loosely.db"
        synchronous = "PIPELINED" if request.param == "sqlite-pipelined" else "FULL"
        factory: Callable[[], QueueStore] = lambda: open_store(url, synchronous=synchronous)  # noqa: E731
    else:
        factory, drop = _postgres_factory(request)
    h = Harness(request.param, factory)
    await h.open()
    try:
        yield h
    finally:
        await h.close()
        if drop is not None:
            drop()


@pytest.fixture
def store(harness: Harness) -> QueueStore:
    assert harness.store is not None
    return harness.store
