"""Fixtures for PostgreSQL-only tests: a fresh schema per test and stores ("nodes") on it.

Several `PostgresStore` objects on one schema behave as several loosely nodes sharing one
database: separate pools, separate LISTEN connections, no shared memory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from loosely.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

NodeFactory = Callable[..., Awaitable[PostgresStore]]


@pytest.fixture
def schema(postgres_url: str) -> Any:
    name = f"pgtest_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def open_node(postgres_url: str, schema: str) -> AsyncIterator[NodeFactory]:
    """Open a store on the test's schema (``url`` overrides the server, e.g. through a proxy)."""
    opened: list[PostgresStore] = []

    async def factory(url: str | None = None, **options: Any) -> PostgresStore:
        options.setdefault("pool_min", 1)
        options.setdefault("pool_max", 4)
        store = PostgresStore(url or postgres_url, schema=schema, **options)
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()
