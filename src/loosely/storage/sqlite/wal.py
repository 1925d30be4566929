"""Pipelined durability: commit without fsync, then sync the WAL on another thread before answering.

With ``synchronous=PIPELINED`` the connection runs at SQLite's ``synchronous=NORMAL`` with
``wal_autocheckpoint=0``, and this module supplies the missing fsync: `WalFile.sync` calls
``fdatasync`` on a descriptor of the database's ``-wal`` file. The writer
(`loosely.storage.sqlite.writer`) commits a group on its thread (the COMMIT only ``write()``s WAL
frames into the OS page cache), hands the sync to a second thread, and answers the group's
callers only when a sync that *began after their COMMIT returned* has completed. While that sync
runs, the loop executes and commits the next groups; the next sync covers all of them at once,
so syncs coalesce by themselves.

Why an acknowledged write is on disk — the argument, step by step:

1. *The commit's frames reach the disk.* A COMMIT in WAL mode appends the transaction's pages
   and a commit frame to the ``-wal`` file with ``write()`` and returns. ``fdatasync`` on any
   descriptor of that file flushes all of the file's dirty data and the metadata needed to read
   it back (its size) — on Linux, fsync and fdatasync act on the inode, not on the descriptor.
   The writer starts a sync only after the COMMITs it covers returned, so their ``write()`` calls
   precede it. The ``-wal`` file's directory entry is synced by SQLite itself: its first sync of
   a newly created WAL also syncs the directory.
2. *Nothing overwrites those frames before they are also in the database file.* SQLite writes a
   WAL from its start again ("restarts" it) only when every frame in it has been copied back
   into the database (backfilled) by a checkpoint. The writer connection has
   ``wal_autocheckpoint=0`` and no other connection writes, so checkpoints happen only where
   the writer runs them: on its thread, while no group runs or commits, after first
   syncing the WAL itself (so every commit so far is durable before the checkpoint starts,
   whatever the checkpoint does). SQLite's checkpoint at ``synchronous=NORMAL`` syncs the WAL
   before copying and the database file after copying, before it records the frames as
   backfilled (SQLite's documentation of ``PRAGMA synchronous``: "the WAL file is synchronized
   before each checkpoint and the database file is synchronized after each completed
   checkpoint"). A frame can therefore be overwritten only once its page is durable in the
   database file.
3. *A restarted WAL is never confused with the old one.* When SQLite restarts the WAL it writes a
   new header (new salts) and, at ``synchronous=NORMAL``, syncs that header before writing the
   first new frame ("the WAL file header is synchronized when a WAL file begins to be reused").
   Recovery after a crash stops at the first frame whose salt or checksum does not match, so
   stale frames of the previous cycle are ignored, never replayed.
4. *Nothing else is answered early.* A group that wrote nothing (an empty receive, a read) still
   waits for the sync of every group committed before it, since it may have read their effects.
   Work whose effect is visible outside the writer (queue records, which requests read from an
   in-memory cache without a trip to the writer) is a barrier: its cache update runs only after
   its sync, and no later group starts before that.

What may see a commit before its sync: the approximate message counts, which are read on a
second connection (`loosely.storage.sqlite.reader`); after a power loss a count may have included
a message whose send was never acknowledged. Nothing a caller was *told* is lost.

Cost and trade-offs. Checkpoints pause new groups for about two fsyncs every `CHECKPOINT_EVERY`
write groups, as SQLite's own automatic checkpoint (inside a COMMIT) does in ``FULL`` mode. If
``fdatasync`` fails the store stops accepting work: after a failed fsync the kernel may have
dropped the dirty pages, and no later sync could make them durable again (the same reason
PostgreSQL stops on a failed fsync).

Why this is not the default (measured on the 2-core development machine, docs/architecture.md):
with clients that each wait for their answer, a request committed while a sync runs can only be
covered by the *next* sync, so both modes settle at about half the clients per sync; this disk
serialises flushes (parallel fdatasyncs did not raise the rate), so overlapping syncs cannot help;
and pipelining makes smaller groups (each COMMIT while a sync runs is one more group), which costs
CPU where the event loop is the bottleneck. In-process and HTTP runs showed no throughput gain
beyond the noise of a shared machine, and a simulated fast disk (150 µs syncs) showed a loss. It
may pay off with a fast disk and spare cores, where a group's statements take as long as a sync.

``synchronous=FULL`` (the default) and ``EXTRA`` keep SQLite's in-line behaviour (the WAL synced
inside every COMMIT, which runs on the writer thread); ``NORMAL`` and ``OFF`` are SQLite's, with
their weaker guarantees.
"""

from __future__ import annotations

import os
from collections.abc import Callable

CHECKPOINT_EVERY = 256
"""Write groups committed between two checkpoints (a group writes a few pages, so the WAL stays a few MiB)."""


def _fdatasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)  # fdatasync is missing on macOS
    sync(fd)


class WalFile:
    """A descriptor of the database's ``-wal`` file, kept open to sync it without SQLite's help.

    The file exists from the first read of a WAL-mode database (the writer opens it during its
    setup) and SQLite deletes it only when the last connection closes, which the writer's does at
    stop, after its last sync. ``sync`` is replaceable for tests that need to hold a sync back.
    """

    def __init__(self, database_path: str, sync: Callable[[int], None] = _fdatasync) -> None:
        self.path = database_path + "-wal"
        self._sync = sync
        self._fd: int | None = None
        self.syncs = 0

    def open(self) -> None:
        """Open the ``-wal`` file (it must exist: open it after the writer's connection has read the database)."""
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def sync(self) -> None:
        """Make every byte written to the WAL so far durable (blocks; call it off the event loop)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not open")
        self._sync(self._fd)
        self.syncs += 1

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
