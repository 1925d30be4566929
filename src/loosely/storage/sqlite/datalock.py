"""One node per database file: an exclusive lock beside it, held while the store is open.

The SQLite store keeps state in memory beside the file (queue records, wake-ups of parked
receives, counts, the writer's group numbers), so a second process writing the same file would
not wake the first one's long polls and would serve queue records the first one no longer has.
SQLite itself would let both in. So the store takes an exclusive ``flock`` on ``<database>.lock``
when it opens and keeps it until it closes; a second ``loosely serve`` on the same data directory
refuses to start and names the process that holds it. The kernel drops the lock when its holder
dies, even by ``kill -9``, so a crash never leaves a stale lock behind (the file stays, empty of
meaning: its content is only the holder's pid, for the message).
"""

from __future__ import annotations

import fcntl
import os

from loosely.storage import StoreOpenError


class DatabaseLock:
    """The held lock of one database file; `release` it when the store closes."""

    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}.lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreOpenError(
                f"{database_path} is in use by another loosely process (pid {holder}); "
                "stop it, or give this one a --data-dir of its own"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
