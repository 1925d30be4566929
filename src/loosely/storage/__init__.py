"""Storage backends implementing `loosely.core.ports` (SQLite embedded, PostgreSQL shared).

`open_store` is the one place that maps a URL to a backend class.
"""

from __future__ import annotations

import importlib
from typing import Any

from loosely.core.ports import QueueStore

__all__ = ["StoreOpenError", "open_store"]


class StoreOpenError(Exception):
    """The store cannot open for a reason its operator can fix; the message says what and how (no traceback)."""


def open_store(url: str, **options: Any) -> QueueStore:
    """A store for ``url``, not yet opened (the caller awaits ``.open()``).

    * ``sqlite:///abs/path/loosely.db`` (three slashes, then an absolute path) or
      ``sqlite://:memory:`` (a private in-memory database, for tests). Option:
      ``synchronous`` = ``"FULL"`` (default) or ``"NORMAL"``.
    * ``postgresql://user@host:port/db`` (or ``postgres://``): `loosely.storage.postgres.PostgresStore`,
      which receives the URL and the options unchanged (e.g. ``schema``).
    """
    if url.startswith("sqlite://"):
        from loosely.storage.sqlite import SqliteStore

        return SqliteStore(_sqlite_path(url), **options)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported by name so that this module needs neither psycopg nor the postgres package to load.
        postgres = importlib.import_module("loosely.storage.postgres")
        store: QueueStore = postgres.PostgresStore(url, **options)
        return store
    raise ValueError(f"unsupported storage URL {url!r}: use sqlite:///path or postgresql://...")


def _sqlite_path(url: str) -> str:
    rest = url.removeprefix("sqlite://")
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"a SQLite URL needs an absolute path (sqlite:///abs/path.db), not {url!r}")
    return "/" + rest.lstrip("/")  # sqlite:////abs/path.db names the same file
