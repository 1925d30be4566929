"""An operation's deadline, enforced without a task per operation.

Cancelling a task in the middle of a query is not a deadline: psycopg answers a cancellation by
asking the server to cancel the query and waiting (up to seconds) for it, which on a dead link is
exactly the wait we must not make. So when the deadline passes:

* if the operation holds a connection, its socket is shut down: psycopg's pending read fails at
  once with a connection error (the pool then discards the connection), and the operation reports
  ``ServiceUnavailable`` like any lost connection;
* if it is still waiting for a pooled connection, the task is cancelled (nothing is in flight),
  and the cancellation is turned into ``ServiceUnavailable`` by `Deadline.expired_error`.

A timer handle is all this costs per operation (an earlier design ran each operation as its own
task and waited on it, about 90 µs of client CPU per operation).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from psycopg import AsyncConnection


class Deadline:
    """The deadline of one operation running in the current task (use as a context manager)."""

    __slots__ = ("_cancelled", "_task", "_timer", "conn", "expired")

    def __init__(self, seconds: float) -> None:
        self.conn: AsyncConnection[Any] | None = None  # set while the operation holds one
        self.expired = False
        self._cancelled = False
        self._task = asyncio.current_task()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._fire)

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()

    def owns(self, error: asyncio.CancelledError) -> bool:
        """Whether ``error`` is this deadline's own cancellation (then it is consumed here)."""
        if not self._cancelled or self._task is None:
            return False
        self._cancelled = False
        return self._task.uncancel() == 0

    def _fire(self) -> None:
        self.expired = True
        if self.conn is not None:
            sever(self.conn)
        elif self._task is not None:
            self._cancelled = True
            self._task.cancel()


def sever(conn: AsyncConnection[Any]) -> None:
    """Shut the connection's socket down, so whatever waits on it fails now (the fd stays open)."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        with socket.socket(fileno=socket.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
