"""The storage-only reference for PostgreSQL: what the database itself allows for a queue workload.

A plain table, and per worker a loop of: insert 10 rows; claim 10 visible rows with
``FOR UPDATE SKIP LOCKED`` (setting a new visibility deadline); delete the claimed rows. Each statement
commits on its own (autocommit, ``synchronous_commit`` as configured: durable by default), mirroring
what a queue server must do per SendMessageBatch / ReceiveMessage / DeleteMessageBatch. The score is
messages through insert → claim → delete per second over 4 connections: an upper bound for loosely's
Postgres pipeline on the same database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psycopg

from benchmarks._load import own_cpu_s
from benchmarks._procs import postgres_cpu_s
from loosely.storage.postgres.backend import split_url_settings

TABLE = "loosely_bench_reference"
_SETUP = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    id bigserial PRIMARY KEY,
    queue_id int NOT NULL,
    visible_at timestamptz NOT NULL DEFAULT now(),
    body text NOT NULL
);
CREATE INDEX ON {TABLE} (queue_id, visible_at, id);
"""
_INSERT = f"INSERT INTO {TABLE} (queue_id, body) SELECT 1, %s FROM generate_series(1, 10)"
_CLAIM = f"""
UPDATE {TABLE} SET visible_at = now() + interval '60 seconds'
WHERE id IN (
    SELECT id FROM {TABLE} WHERE queue_id = 1 AND visible_at <= now()
    ORDER BY visible_at, id LIMIT 10 FOR UPDATE SKIP LOCKED
) RETURNING id, body
"""
_DELETE = f"DELETE FROM {TABLE} WHERE id = ANY(%s)"


@dataclass(frozen=True)
class PgReferenceResult:
    messages: int
    elapsed_s: float
    connections: int
    db_cpu_s: float
    client_cpu_s: float
    """CPU of this process's loop driving the workers (psycopg's share of a node's work)."""

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s else 0.0


async def _worker(dsn: str, body: str, deadline: float, counts: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while time.perf_counter() < deadline:
            await conn.execute(_INSERT, (body,))
            cursor = await conn.execute(_CLAIM)
            ids = [row[0] for row in await cursor.fetchall()]
            if ids:
                await conn.execute(_DELETE, (ids,))
                counts.append(len(ids))


async def run_pg_reference(
    dsn: str, duration_s: float, connections: int = 4, body_size: int = 256
) -> PgReferenceResult:
    dsn, _ = split_url_settings(dsn)  # loosely's own parameters (``?schema=``...) are not libpq's
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(_SETUP)
    counts: list[int] = []
    db0, own0, t0 = postgres_cpu_s(), own_cpu_s(), time.perf_counter()
    body = "x" * body_size
    await asyncio.gather(*(_worker(dsn, body, t0 + duration_s, counts) for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    db_cpu, client_cpu = postgres_cpu_s() - db0, own_cpu_s() - own0
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return PgReferenceResult(
        messages=sum(counts), elapsed_s=elapsed, connections=connections, db_cpu_s=db_cpu, client_cpu_s=client_cpu
    )
