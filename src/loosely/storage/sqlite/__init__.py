"""The SQLite backend: durable on one machine, one writer thread with group commit."""

from loosely.storage.sqlite.backend import SqliteStore

__all__ = ["SqliteStore"]
