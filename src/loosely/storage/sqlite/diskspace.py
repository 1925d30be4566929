"""A free-disk-space watermark: below it the store refuses new messages, never the writes that drain.

Every write SQLite makes needs disk space, receives and deletes included (a receive records the
message's visibility, a delete frees its pages through the WAL), so a queue that filled the disk
could not even be drained to make room: every request would fail until someone freed space by
hand. As a RabbitMQ broker does with its disk alarm, the store keeps a margin instead: while the
file system holding the database has less than the limit free, the writes that add data (SQS
sends, SNS publications and the messages their fan-out writes) are refused with
``ServiceUnavailable`` (503, which SDKs retry with backoff), and everything that drains
(receives, deletes, visibility changes, purges, deleting queues) goes on in the margin. Nothing
stored is lost and nothing refused was acknowledged.

The database's own free pages count as free space: deleted messages leave pages that later
inserts reuse without growing the file, so a queue drained to empty takes messages again even
though the file has not shrunk.

The free space is read (one ``statvfs``, and the database's free pages only when the disk alone is
under the limit) once per `CHECK_EVERY_S` on the monotonic clock, or sooner once the writes admitted
since the last reading add up to a quarter of the limit: between two readings a send pays a clock
read and an addition. So the limit is a margin, not an exact boundary: what is admitted between two
readings (at most about a quarter of it, plus the largest single write) comes out of the margin.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

from loosely.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""How long a reading of the free space stands."""

_MIB = 1024 * 1024


class DiskSpace:
    """Whether the store still takes new data, from the free space around ``directory``.

    ``free_in_database`` returns how many bytes of the database file are free pages (an awaitable,
    since reading them is a statement on the store's connection). A limit of 0 turns the check off.
    """

    def __init__(
        self,
        directory: str,
        limit_bytes: int,
        free_in_database: Callable[[], Awaitable[int]],
        *,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.limit_bytes = limit_bytes
        self._free_in_database = free_in_database
        self._statvfs = statvfs
        self._monotonic = monotonic
        self._next_reading = float("-inf")
        self._admitted = 0  # bytes admitted since the last reading
        self._reading_every_bytes = max(1, limit_bytes // 4)
        self._low = False

    @property
    def low(self) -> bool:
        """Whether the last reading found less free space than the limit."""
        return self._low

    def admit_at_once(self, size: int) -> bool:
        """Admit ``size`` bytes on the standing reading when it is fresh and not low; False: await `admit`.

        The hot path of every send: no coroutine, a clock read and a few comparisons.
        """
        if self.limit_bytes <= 0:
            return True
        admitted = self._admitted + size
        if self._low or admitted >= self._reading_every_bytes or self._monotonic() >= self._next_reading:
            return False
        self._admitted = admitted
        return True

    async def admit(self, size: int) -> None:
        """Return when ``size`` more bytes may be written; raise ``ServiceUnavailable`` while space is low."""
        if self.limit_bytes <= 0:
            return
        now = self._monotonic()
        self._admitted += size
        if now >= self._next_reading or self._admitted >= self._reading_every_bytes:
            # Set first: concurrent callers use the last reading meanwhile.
            self._next_reading, self._admitted = now + CHECK_EVERY_S, 0
            await self._read()
        if self._low:
            raise ServiceUnavailable(
                f"The storage is unavailable: less than {_describe(self.limit_bytes)} of disk space is free"
                " (--disk-free-limit); new messages are refused until space is freed, receives and deletes"
                " go on."
            )

    async def _read(self) -> None:
        free = self._free_on_disk()
        if free < self.limit_bytes:
            free += await self._free_in_database()
        low = free < self.limit_bytes
        if low and not self._low:
            log.warning(
                "free disk space for %s is %s, under the limit of %s: refusing new messages until space is freed",
                self.directory,
                _describe(free),
                _describe(self.limit_bytes),
            )
        elif self._low and not low:
            log.warning(
                "free disk space for %s is back to %s: taking new messages again", self.directory, _describe(free)
            )
        self._low = low

    def _free_on_disk(self) -> int:
        """Bytes an unprivileged writer may still use on the database's file system (``f_bavail``)."""
        try:
            reading = self._statvfs(self.directory)
        except OSError as exc:  # a vanished directory fails every write anyway; do not add a second error
            log.warning("cannot read the free space of %s: %s", self.directory, exc)
            return self.limit_bytes
        return reading.f_bavail * reading.f_frsize


def _describe(size: int) -> str:
    return f"{size / _MIB:.1f} MiB" if size % _MIB else f"{size // _MIB} MiB"
