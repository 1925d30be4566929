"""Opening the database: pragmas in one place, and numbered migrations applied at open."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA", "OFF", "PIPELINED")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def pipelined(path: str, synchronous: str) -> bool:
    """Whether the store makes commits durable with its own WAL syncs (`loosely.storage.sqlite.wal`).

    ``PIPELINED`` on a file: yes. An in-memory database has no file to sync (it runs as ``FULL``).
    """
    return synchronous.upper() == "PIPELINED" and path != ":memory:"


def connect(path: str, synchronous: str = "FULL", *, pipelined: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (the writer issues BEGIN/COMMIT itself) with our pragmas.

    WAL lets the count queries read beside the writer. ``synchronous``, with the guarantee a
    caller gets once a write is acknowledged:

    * ``FULL`` (default): on disk; survives kill -9, an OS crash and power loss. SQLite syncs the
      WAL inside every COMMIT; group commit keeps this cheap under load.
    * ``PIPELINED``: the same guarantee. With ``pipelined`` (the store's choice for a file) SQLite
      runs at ``NORMAL`` with automatic checkpoints off, and the writer syncs the WAL on a thread
      of its own and checkpoints itself before answering (see `loosely.storage.sqlite.wal`).
    * ``EXTRA``: as ``FULL`` in WAL mode.
    * ``NORMAL``: the WAL is fsynced only at checkpoints. Still safe against a crash of the
      process (kill -9), because committed frames are in the OS page cache, but a power loss or
      kernel crash may lose the most recent acknowledged writes (never corrupts the database).
    * ``OFF``: never fsynced; for throwaway test data only (a power loss may corrupt the file).
    """
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    # Used by one thread at a time, but not always the same one: the writer runs statements on the
    # event loop and commits, syncs and checkpoints on its own thread (see `loosely.storage.sqlite.writer`).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    if pipelined:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
    else:
        conn.execute(f"PRAGMA synchronous={'FULL' if mode == 'PIPELINED' else mode}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-32000")
    # Set, not left to the build: Debian's SQLite (and so Python on Debian and Ubuntu) defaults to ON,
    # which zeroes every freed page and so writes a deleted message's whole body again (twice: WAL and
    # checkpoint); most other builds default to OFF. FAST zeroes deleted content only on pages the
    # delete writes anyway: a small message's bytes go, a large body's overflow pages are left to be
    # reused, at no extra I/O.
    conn.execute("PRAGMA secure_delete=FAST")
    return conn


def migrations() -> list[tuple[int, str, str]]:
    """The packaged migrations as (version, file name, SQL), in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("loosely.storage.sqlite").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: sqlite3.Connection, now_ms: int) -> list[int]:
    """Apply every migration not yet recorded in ``schema_migrations``; return the versions applied.

    Each migration runs in its own transaction together with its bookkeeping row, so a crash
    mid-way leaves the schema at the previous version.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[int] = []
    for version, _name, sql in migrations():
        if version in done:
            continue
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO schema_migrations VALUES ({version:d}, {now_ms:d});\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied
