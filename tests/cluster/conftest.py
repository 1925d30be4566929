"""Fixtures for cluster tests: real ``loosely serve`` nodes sharing one PostgreSQL schema.

Each test gets its own schema (``?schema=`` on the database URL), dropped afterwards, so tests never
see each other's queues. `Cluster.start` launches a node subprocess on a free port; every node is
stopped at teardown (SIGTERM, then SIGKILL), including those a test killed itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from loosely.server.testing import ServerProcess

pytestmark = pytest.mark.postgres


def node_env() -> dict[str, str]:
    """The parent's environment minus LOOSELY_* settings that would change what tests expect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    env["LOOSELY_LOG_LEVEL"] = "error"
    return env


def with_query(url: str, **params: object) -> str:
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


class Cluster:
    """The nodes a test started, all on ``database_url`` unless told otherwise."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self._tmp_path = tmp_path
        self.nodes: list[ServerProcess] = []

    def start(self, database_url: str | None = None) -> ServerProcess:
        node = ServerProcess(
            self._tmp_path / f"node{len(self.nodes)}",
            args=["--database", database_url or self.database_url],
            env=node_env(),
        )
        self.nodes.append(node)
        node.start()
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop(timeout_s=10)


@pytest.fixture
def schema_name(postgres_url: str) -> Iterator[str]:
    name = f"cluster_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def cluster(postgres_url: str, schema_name: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(with_query(postgres_url, schema=schema_name), tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
