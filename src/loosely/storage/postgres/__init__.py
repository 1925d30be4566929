"""PostgreSQL queue store: many loosely nodes sharing one database (see docs/deploy.md)."""

from loosely.storage.postgres.backend import PostgresStore

__all__ = ["PostgresStore"]
