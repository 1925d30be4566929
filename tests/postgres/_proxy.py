"""A TCP proxy in front of PostgreSQL that tests can take down or black-hole.

Stopping the shared PostgreSQL server would disturb every other test on the machine, so database
failures are simulated on the link instead:

* ``down``: every open link is cut and new connections are closed at once (a crashed server or a
  refused port; clients see errors immediately);
* ``blackhole``: links stay open but nothing is forwarded (a hung server or a partition; clients
  see nothing at all and must rely on their own deadlines);
* ``up``: normal forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib


class FlakyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.mode = "up"
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def down(self) -> None:
        self.mode = "down"
        self._cut_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def up(self) -> None:
        self.mode = "up"

    def _cut_all(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "down":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await source.read(65536):
                if self.mode == "blackhole":
                    continue  # swallowed: the peer waits forever
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
        self._links.discard(sink)
