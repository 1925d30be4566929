"""The one place where SQLite's exceptions become core errors."""

from __future__ import annotations

import logging
import sqlite3

from loosely.core.errors import LooselyError, ServiceUnavailable

log = logging.getLogger(__name__)


def map_sqlite_error(exc: BaseException) -> BaseException:
    """Translate a driver error into the core error a caller may see; leave other errors as they are.

    Every SQLite failure that reaches a caller (locked or busy database, disk I/O error, full disk,
    read-only or corrupt file) means "the store cannot serve this now", which SDKs retry as a 5xx.
    Core errors and programming errors pass through unchanged so that bugs stay visible.
    """
    if isinstance(exc, LooselyError):
        return exc
    if isinstance(exc, sqlite3.Error):
        log.warning("sqlite error: %s", exc)
        return ServiceUnavailable(f"The storage is unavailable: {exc}")
    return exc
