"""Start the systems under test: the reference app, and one or more loosely nodes over one database."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import _procs
from benchmarks._procs import ServerProcess
from benchmarks._sqs import Endpoint, is_healthy

DEFAULT_SERVER_ARGV = (sys.executable, "-m", "loosely", "serve", "--port", "0", "--data-dir", "{data_dir}")


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
        if self.database:
            argv += ["--database", self.database]
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
