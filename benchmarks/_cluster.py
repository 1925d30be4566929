"""Start the systems under test: the reference app, and one or more loosely nodes over one database."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import _procs
from benchmarks._procs import ServerProcess
from benchmarks._sqs import Endpoint, is_healthy

DEFAULT_SERVER_ARGV = (sys.executable, "-m", "loosely", "serve", "--port", "0", "--data-dir", "{data_dir}")
_SCHEMAS = itertools.count(1)


@dataclass
class Node:
    server: ServerProcess
    endpoint: Endpoint
    listening_s: float
    healthy_s: float


@dataclass
class Cluster:
    """``nodes`` loosely processes; with PostgreSQL they share the database, with SQLite there is one."""

    server_argv: Sequence[str]
    database: str | None
    data_root: Path
    log_dir: Path
    nodes: list[Node] = field(default_factory=list)
    schema: str | None = field(init=False, default=None)
    node_database: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        """Each cluster gets a schema of its own, dropped by `drop_schema`, unless the URL names one.

        Why: a shared schema keeps the dead rows of earlier runs until autovacuum catches up, and
        scanning past a million of them once made the long-poll wake p99 a hundred times slower.
        """
        if self.database and "schema=" not in self.database:
            self.schema = f"bench_{os.getpid()}_{next(_SCHEMAS)}"
            joiner = "&" if "?" in self.database else "?"
            self.node_database = f"{self.database}{joiner}schema={self.schema}"
        else:
            self.node_database = self.database

    async def drop_schema(self) -> None:
        """Drop the cluster's own schema (nothing when the URL named one)."""
        if self.schema is None or self.database is None:
            return
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.database.split("?")[0], autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    @property
    def endpoints(self) -> list[Endpoint]:
        return [node.endpoint for node in self.nodes]

    @property
    def servers(self) -> list[ServerProcess]:
        return [node.server for node in self.nodes]

    async def start(self, count: int) -> None:
        for index in range(count):
            self.nodes.append(await self._start_node(index))

    async def _start_node(self, index: int) -> Node:
        data_dir = self.data_root / f"node{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [part.replace("{data_dir}", str(data_dir)) for part in self.server_argv]
        if self.node_database:
            argv += ["--database", self.node_database]
        server = _procs.start(f"loosely-node{index}", argv, self.log_dir)
        endpoint = Endpoint(server.host, server.port)
        print(f"{server.name} pid {server.pid} listening on {endpoint.url}", file=sys.stderr, flush=True)
        try:
            waited = await _procs.wait_healthy(lambda: is_healthy(endpoint))
        except BaseException:
            server.stop()
            raise
        return Node(server, endpoint, server.started_s, server.started_s + waited)

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()
        self.nodes.clear()


async def start_reference(log_dir: Path) -> Node:
    server = _procs.start("reference", _procs.python_argv("benchmarks.refapp"), log_dir)
    return Node(server, Endpoint(server.host, server.port), server.started_s, server.started_s)
