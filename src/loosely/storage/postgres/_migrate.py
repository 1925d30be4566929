"""Schema creation and numbered migrations, safe when many nodes start at once.

Migrations are the files ``migrations/NNNN_<name>.sql`` shipped with the package, applied in
order inside one transaction that holds a transaction-scoped advisory lock keyed on the schema.
A second node starting at the same moment waits on that lock, then finds every version recorded
in ``schema_migrations`` and applies nothing. PostgreSQL DDL is transactional, so a migration that
fails leaves no trace and the next start retries it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection, sql

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    script: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, by ascending version."""
    found: list[Migration] = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


async def migrate(conn: AsyncConnection[object], schema: str) -> list[int]:
    """Create ``schema`` if needed and apply the missing migrations; return the versions applied."""
    ident = sql.Identifier(schema)
    applied: list[int] = []
    async with conn.transaction():
        # hashtext() spreads schemas over the lock space; collisions only serialize start-ups.
        await conn.execute("SELECT pg_advisory_xact_lock(8135, hashtext(%s))", (schema,))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {int(str(row[0])) for row in await cur.fetchall()}  # type: ignore[index]
        for migration in available_migrations():
            if migration.version in done:
                continue
            logger.info("applying migration %04d_%s to schema %s", migration.version, migration.name, schema)
            await conn.execute(migration.script.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
            applied.append(migration.version)
    return applied
