"""The publication outbox on PostgreSQL: publications, their fan-out and push deliveries, across nodes.

Locking rules (on top of `_sql`'s):

* Publications with an ordering key (a FIFO topic) or a deduplication key are added while holding
  a transaction-scoped advisory lock on the key (``outbox_lock_key`` + ``hashtext(key)``), taken in
  hash order. So ids of one key are drawn in commit order, the dedup check cannot race, and "is
  this the key's first row" (its ``head`` flag) is decided once. Completing a publication of a key
  holds the same lock while it deletes the row and promotes the next one to head.
* Claims lock heads ``FOR UPDATE SKIP LOCKED`` oldest first (concurrent claimers on any node get
  disjoint rows), then the free rows that follow each ordered head in id order. Row locks are
  always taken in ascending id within a key, by claims and completions alike.
* Deliveries are claimed ``FOR UPDATE SKIP LOCKED`` by ``due_ms``; a lease is ``due_ms`` in the
  future, so an expired lease makes the row due again with no sweeper.

Fanning out sends SQS messages with the queue store's own statements (`_messages.send_standard`,
`send_fifo`: dedup, FIFO groups, expiry, wake-ups) inside the transaction that records the
deliveries and deletes the publication; a queue that is gone raises `QueuesGone` and rolls it all
back, so fan-out looks its queues up again (a queue deleted and created again has a new id) rather
than the message going nowhere. Completing a batch (`complete_publications`) holds its target
queues ``FOR KEY SHARE`` first, in id order: a queue deleted before is found gone before anything
is sent, a deletion waits for the commit (and then removes what was sent), and the sends need no
savepoints (two round trips fewer per queue). Outbox wake-ups travel like a queue's, under the reserved id
`OUTBOX_WAKE_KEY` (no queue has id 0): a change notifies only while some node waits on the outbox.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from loosely.core.documents import (
    Delivery,
    DeliveryState,
    DocumentGuard,
    FanOutResult,
    NewDelivery,
    NewPublication,
    Publication,
    PublishOutcome,
)
from loosely.core.errors import ConcurrentUpdate, QueueDoesNotExist, QueuesGone
from loosely.core.ports import OutboxStore
from loosely.core.queues.models import NewMessage
from loosely.storage._documents import DEAD_LETTER_DEDUP_WINDOW_MS, check_finished_state
from loosely.storage.postgres import _messages
from loosely.storage.postgres._archive import archive_publication
from loosely.storage.postgres._messages import Conn, Row
from loosely.storage.postgres._notify import Waiters
from loosely.storage.postgres._queuecache import QueueCache
from loosely.storage.postgres._sql import Sql

T = TypeVar("T")

OUTBOX_WAKE_KEY = 0
"""The wake-up id of the outbox among queue ids (BIGSERIAL ids start at 1)."""

_DEDUP_SWEEP = 2
"""Expired dedup rows removed per deduplicated publication added: the table stays at its live size.
Publications without a dedup key (standard topics, the common case) skip the sweep."""
_PUBLICATION_COLUMNS = "id, topic_arn, message_id, payload, created_ms"
_DELIVERY_COLUMNS = "id, subscription_arn, payload, attempts, next_attempt_ms, created_ms, last_error"


def outbox_lock_key(schema: str) -> int:
    """The first half of the advisory lock keys of ordering and deduplication keys (per schema)."""
    return zlib.crc32(f"loosely-outbox:{schema}".encode()) - 2**31


_TEMPLATES = {
    "lock_keys": """
        SELECT pg_advisory_xact_lock(%(lock)s, h)
        FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(%(keys)s::text[]) AS k ORDER BY 1) AS s""",
    "sweep_dedup": """
        DELETE FROM {s}.publication_dedup WHERE (topic_arn, dedup_key) IN (
            SELECT topic_arn, dedup_key FROM {s}.publication_dedup WHERE expires_at_ms <= %(now)s
            LIMIT %(n)s FOR UPDATE SKIP LOCKED)""",
    # One publication: name the original when its dedup key is live, else store it (first of its
    # ordering key = head) and remember its dedup key. Runs under the key's advisory lock.
    "add": """
        WITH seen AS (
            SELECT message_id, sequence FROM {s}.publication_dedup
            WHERE topic_arn = %(topic)s AND dedup_key = %(dedup)s AND expires_at_ms > %(now)s),
        ins AS (
            INSERT INTO {s}.publications (topic_arn, message_id, payload, ordering_key, created_ms, head)
            SELECT %(topic)s, %(message_id)s, %(payload)s, %(okey)s, %(now)s,
                   %(okey)s::text IS NULL
                   OR NOT EXISTS (SELECT 1 FROM {s}.publications p WHERE p.ordering_key = %(okey)s)
            WHERE NOT EXISTS (SELECT 1 FROM seen)
            RETURNING id),
        remember AS (
            INSERT INTO {s}.publication_dedup AS d (topic_arn, dedup_key, message_id, sequence, expires_at_ms)
            SELECT %(topic)s, %(dedup)s, %(message_id)s, ins.id, %(now)s + %(window)s FROM ins
            WHERE %(dedup)s::text IS NOT NULL
            ON CONFLICT (topic_arn, dedup_key) DO UPDATE
                SET message_id = excluded.message_id, sequence = excluded.sequence,
                    expires_at_ms = excluded.expires_at_ms
            RETURNING 1)
        SELECT (SELECT id FROM ins), (SELECT message_id FROM seen), (SELECT sequence FROM seen),
               (SELECT count(*) FROM remember)""",
    # Publications with neither ordering nor dedup key (standard topics): one autocommit statement,
    # ids drawn in the given order, outbox workers woken.
    # A guard (kind, key, body) lets the insert happen only while that document is stored as given.
    "add_plain": """
        WITH ins AS (
            INSERT INTO {s}.publications (topic_arn, message_id, payload, ordering_key, created_ms, head)
            SELECT t.topic, t.message_id, t.payload, NULL, %(now)s, true
            FROM unnest(%(topics)s::text[], %(message_ids)s::text[], %(payloads)s::text[])
                 WITH ORDINALITY AS t(topic, message_id, payload, o)
            WHERE %(gkind)s::text IS NULL OR EXISTS (
                SELECT 1 FROM {s}.documents d WHERE d.kind = %(gkind)s AND d.key = %(gkey)s AND d.body = %(gbody)s)
            ORDER BY t.o
            RETURNING id)
        SELECT (SELECT array_agg(id ORDER BY id) FROM ins),
               {s}.wake_other_waiters(%(channel)s, 0, %(wake_key)s::integer, %(node)s::text)""",
    "guard": "SELECT 1 FROM {s}.documents WHERE kind = %s AND key = %s AND body = %s",
    "wake": "SELECT {s}.wake_other_waiters(%(channel)s, 0, %(wake_key)s::integer, %(node)s::text)",
    "claim_heads": """
        SELECT id, ordering_key FROM {s}.publications
        WHERE head AND lease_until_ms <= %(now)s ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED""",
    "followers": """
        SELECT id, lease_until_ms FROM {s}.publications
        WHERE ordering_key = %(okey)s AND id > %(head)s ORDER BY id LIMIT %(n)s FOR UPDATE""",
    "lease_publications": f"""
        UPDATE {{s}}.publications SET lease_owner = %(owner)s, lease_until_ms = %(until)s
        WHERE id = ANY(%(ids)s::bigint[]) RETURNING {_PUBLICATION_COLUMNS}""",
    # Leases handed back by a stopping fan-out: other nodes are woken when any was released.
    "release_publications": """
        WITH u AS (
            UPDATE {s}.publications SET lease_owner = NULL, lease_until_ms = 0
            WHERE id = ANY(%(ids)s::bigint[]) AND lease_owner = %(owner)s RETURNING id)
        SELECT {s}.wake_other_waiters(%(channel)s, 0, %(wake_key)s::integer, %(node)s::text)
        WHERE EXISTS (SELECT 1 FROM u)""",
    "publication_key": "SELECT ordering_key FROM {s}.publications WHERE id = %s",
    "publication_keys": "SELECT id, ordering_key FROM {s}.publications WHERE id = ANY(%s::bigint[])",
    "retire_many": "DELETE FROM {s}.publications WHERE id = ANY(%s::bigint[]) RETURNING id, ordering_key",
    # The queues a fan-out sends to, held until commit so none is deleted under it (a deletion waits).
    "hold_queues": "SELECT id FROM {s}.queues WHERE id = ANY(%s::bigint[]) ORDER BY id FOR KEY SHARE",
    "retire": "DELETE FROM {s}.publications WHERE id = %s RETURNING head, ordering_key",
    "promote": """
        UPDATE {s}.publications SET head = true
        WHERE id = (SELECT min(id) FROM {s}.publications WHERE ordering_key = %s) RETURNING id""",
    "insert_deliveries": """
        INSERT INTO {s}.deliveries (subscription_arn, payload, next_attempt_ms, due_ms, created_ms)
        SELECT t.sub, t.payload, t.due, t.due, %(now)s
        FROM unnest(%(subs)s::text[], %(payloads)s::text[], %(dues)s::bigint[])
             WITH ORDINALITY AS t(sub, payload, due, o)
        ORDER BY t.o""",
    "claim_deliveries": f"""
        WITH c AS (
            SELECT id, due_ms FROM {{s}}.deliveries WHERE due_ms <= %(now)s
            ORDER BY due_ms, id LIMIT %(n)s FOR UPDATE SKIP LOCKED)
        UPDATE {{s}}.deliveries d SET due_ms = %(until)s, lease_owner = %(owner)s FROM c WHERE d.id = c.id
        RETURNING c.due_ms, {", ".join("d." + c for c in _DELIVERY_COLUMNS.split(", "))}""",
    "delete_delivery": "DELETE FROM {s}.deliveries WHERE id = %s RETURNING id",
    "delete_deliveries": "DELETE FROM {s}.deliveries WHERE id = ANY(%s::bigint[])",
    "retry_delivery": """
        WITH u AS (
            UPDATE {s}.deliveries SET attempts = attempts + 1, last_error = %(error)s, next_attempt_ms = %(next)s,
                   due_ms = %(next)s, lease_owner = NULL
            WHERE id = %(id)s RETURNING id)
        SELECT {s}.wake_other_waiters(%(channel)s, 0, %(wake_key)s::integer, %(node)s::text) FROM u""",
    "release_delivery": """
        WITH u AS (
            UPDATE {s}.deliveries SET next_attempt_ms = %(next)s, due_ms = %(next)s, lease_owner = NULL
            WHERE id = %(id)s RETURNING id)
        SELECT {s}.wake_other_waiters(%(channel)s, 0, %(wake_key)s::integer, %(node)s::text) FROM u""",
}


class OutboxSql:
    """The outbox statements of one store's schema (names schema-qualified, as in `_sql.Sql`)."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        self.schema = schema
        self.lock_key = outbox_lock_key(schema)
        for name, template in _TEMPLATES.items():
            setattr(self, name, template.replace("{s}", s))

    schema: str
    lock_key: int
    lock_keys: str
    sweep_dedup: str
    add: str
    add_plain: str
    guard: str
    wake: str
    claim_heads: str
    followers: str
    lease_publications: str
    release_publications: str
    publication_key: str
    publication_keys: str
    retire: str
    retire_many: str
    hold_queues: str
    promote: str
    insert_deliveries: str
    claim_deliveries: str
    delete_delivery: str
    delete_deliveries: str
    retry_delivery: str
    release_delivery: str


def _locked_key(publication: NewPublication) -> str | None:
    """What serialises this publication with others: its ordering key, or its topic when it has a dedup key."""
    if publication.ordering_key is not None:
        return publication.ordering_key
    return publication.topic_arn if publication.dedup_key is not None else None


def publication(row: Row) -> Publication:
    return Publication(
        id=row[0], topic_arn=row[1], message_id=row[2], payload=row[3], created_ms=row[4], sequence=row[0]
    )


def delivery(row: Row) -> Delivery:
    return Delivery(
        id=row[0],
        subscription_arn=row[1],
        payload=row[2],
        attempts=row[3],
        next_attempt_ms=row[4],
        created_ms=row[5],
        last_error=row[6],
    )


class Fanout:
    """What the fan-out of one publication needs from the store: statements, channel, queue kinds.

    ``local``: standard queues whose new messages this node's own waiting receivers will take
    (`Waiters.reserve`): their sends do not NOTIFY, as a node's SendMessage does not
    (`_rounds.Rounds._plan_wakes`).
    """

    def __init__(
        self, sql: Sql, outbox: OutboxSql, channel: str, fifo: dict[int, bool], local: frozenset[int] = frozenset()
    ) -> None:
        self.sql = sql
        self.outbox = outbox
        self.channel = channel
        self.fifo = fifo  # queue id -> FIFO, for the queues that existed before the transaction
        self.local = local

    @property
    def wake_params(self) -> dict[str, Any]:
        return {"channel": self.channel, "wake_key": self.sql.wake_key, "node": self.sql.node}

    async def send(self, conn: Conn, queue_id: int, batch: Sequence[NewMessage], now_ms: int, window_ms: int) -> bool:
        """Send ``batch`` in a savepoint; False (nothing kept) when the queue is gone."""
        if queue_id not in self.fifo:
            return False
        with contextlib.suppress(QueueDoesNotExist):
            async with conn.transaction():
                await self._send(conn, queue_id, batch, now_ms, window_ms)
                return True
        return False

    async def send_held(
        self, conn: Conn, queue_id: int, batch: Sequence[NewMessage], now_ms: int, window_ms: int
    ) -> bool:
        """Send ``batch`` to a queue this transaction holds (`OutboxSql.hold_queues`): no savepoint needed."""
        if queue_id not in self.fifo:
            return False
        with contextlib.suppress(QueueDoesNotExist):
            await self._send(conn, queue_id, batch, now_ms, window_ms)
            return True
        return False

    async def _send(self, conn: Conn, queue_id: int, batch: Sequence[NewMessage], now_ms: int, window_ms: int) -> None:
        """The queue's kind of send; raises QueueDoesNotExist when the queue is gone."""
        if self.fifo[queue_id]:
            await _messages.send_fifo(conn, self.sql, self.channel, queue_id, batch, now_ms, window_ms)
            return
        notify = () if queue_id in self.local else (queue_id,)
        [outcome] = await _messages.send_standard(conn, self.sql, self.channel, [(queue_id, batch)], notify)
        if isinstance(outcome, BaseException):
            raise outcome


async def add_publications(
    conn: Conn,
    fan: Fanout,
    publications: Sequence[NewPublication],
    now_ms: int,
    window_ms: int,
    guard: DocumentGuard | None = None,
) -> list[PublishOutcome]:
    sql = fan.outbox
    if all(p.ordering_key is None and p.dedup_key is None and p.archive_until_ms is None for p in publications):
        return await _add_plain(conn, fan, publications, now_ms, guard)
    keys = sorted({k for k in map(_locked_key, publications) if k is not None})
    outcomes: list[PublishOutcome] = []
    async with conn.transaction():
        if guard is not None:
            cur = await conn.execute(sql.guard, (guard.kind, guard.key, guard.body))
            if await cur.fetchone() is None:
                raise _changed()
        if keys:
            await conn.execute(sql.lock_keys, {"lock": sql.lock_key, "keys": keys})
        if any(p.dedup_key is not None for p in publications):
            await conn.execute(sql.sweep_dedup, {"now": now_ms, "n": _DEDUP_SWEEP * len(publications)})
        for p in publications:
            params = {
                "topic": p.topic_arn,
                "message_id": p.message_id,
                "payload": p.payload,
                "okey": p.ordering_key,
                "dedup": p.dedup_key,
                "now": now_ms,
                "window": window_ms,
            }
            cur = await conn.execute(sql.add, params)
            row = await cur.fetchone()
            assert row is not None  # the final SELECT always returns one row
            new_id, original_id, original_seq, _ = row
            if new_id is None:
                outcomes.append(PublishOutcome(message_id=original_id, sequence=original_seq, duplicate=True))
            else:
                outcomes.append(PublishOutcome(message_id=p.message_id, sequence=new_id))
                if p.archive_until_ms is not None:
                    await archive_publication(conn, sql.schema, p, new_id, now_ms)
        if any(not o.duplicate for o in outcomes):
            await conn.execute(sql.wake, fan.wake_params)
    return outcomes


async def _add_plain(
    conn: Conn, fan: Fanout, publications: Sequence[NewPublication], now_ms: int, guard: DocumentGuard | None
) -> list[PublishOutcome]:
    """Publications nothing serialises or deduplicates: one statement, no explicit transaction."""
    params = {
        "topics": [p.topic_arn for p in publications],
        "message_ids": [p.message_id for p in publications],
        "payloads": [p.payload for p in publications],
        "now": now_ms,
        "gkind": None if guard is None else guard.kind,
        "gkey": None if guard is None else guard.key,
        "gbody": None if guard is None else guard.body,
        **fan.wake_params,
    }
    cur = await conn.execute(fan.outbox.add_plain, params)
    row = await cur.fetchone()
    assert row is not None  # the final SELECT always returns one row
    if row[0] is None:  # nothing inserted: only a failed guard does that
        raise _changed()
    ids: list[int] = row[0]
    return [PublishOutcome(message_id=p.message_id, sequence=i) for p, i in zip(publications, ids, strict=True)]


def _changed() -> ConcurrentUpdate:
    return ConcurrentUpdate("The document was changed by another request; read it again and retry.")


async def claim_publications(
    conn: Conn, sql: OutboxSql, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[Publication]:
    async with conn.transaction():
        cur = await conn.execute(sql.claim_heads, {"now": now_ms, "n": limit})
        heads = sorted(await cur.fetchall())
        chosen: list[int] = []
        for head_id, ordering_key in heads:
            if len(chosen) >= limit:
                break
            chosen.append(head_id)
            room = limit - len(chosen)
            if ordering_key is not None and room > 0:
                cur = await conn.execute(sql.followers, {"okey": ordering_key, "head": head_id, "n": room})
                for row_id, lease_until_ms in await cur.fetchall():
                    if lease_until_ms > now_ms:
                        break  # still leased from an earlier claim: the key's batch ends here
                    chosen.append(row_id)
        if not chosen:
            return []
        cur = await conn.execute(sql.lease_publications, {"owner": owner, "until": now_ms + lease_ms, "ids": chosen})
        rows = await cur.fetchall()
    return sorted((publication(row) for row in rows), key=lambda p: p.id)


async def complete_publication(
    conn: Conn,
    fan: Fanout,
    publication_id: int,
    queue_messages: Sequence[tuple[int, NewMessage]],
    deliveries: Sequence[NewDelivery],
    now_ms: int,
    window_ms: int,
) -> list[int]:
    """Fan out and retire the publication; return the queues sent to (nothing when it was already retired)."""
    sql = fan.outbox
    async with conn.transaction():
        cur = await conn.execute(sql.publication_key, (publication_id,))
        found = await cur.fetchone()
        if found is None:
            return []
        if found[0] is not None:
            await conn.execute(sql.lock_keys, {"lock": sql.lock_key, "keys": [found[0]]})
        cur = await conn.execute(sql.retire, (publication_id,))
        retired = await cur.fetchone()
        if retired is None:
            return []  # another node completed it while we waited for the key
        sends = _by_queue(queue_messages)
        sent = [q for q, batch in sends if await fan.send(conn, q, batch, now_ms, window_ms)]
        if len(sent) < len(sends):
            raise QueuesGone({q for q, _ in sends} - set(sent))  # rolls the transaction back
        await _insert_deliveries(conn, sql.insert_deliveries, deliveries, now_ms)
        promoted = False
        if retired[0] and retired[1] is not None:
            cur = await conn.execute(sql.promote, (retired[1],))
            promoted = await cur.fetchone() is not None
        if deliveries or promoted:
            await conn.execute(sql.wake, fan.wake_params)
    return sent


async def complete_publications(
    conn: Conn, fan: Fanout, results: Sequence[FanOutResult], now_ms: int, window_ms: int
) -> list[int]:
    """Fan many publications out and retire them in one transaction; return the queues sent to.

    Takes the advisory locks of every ordering key involved at once (in hash order, as adding does),
    so completing never waits on a key while holding another out of order.
    """
    sql = fan.outbox
    ids = [r.publication_id for r in results]
    async with conn.transaction():
        cur = await conn.execute(sql.publication_keys, (ids,))
        keys = sorted({key for _, key in await cur.fetchall() if key is not None})
        if keys:
            await conn.execute(sql.lock_keys, {"lock": sql.lock_key, "keys": keys})
        cur = await conn.execute(sql.retire_many, (ids,))
        retired: dict[int, str | None] = {row[0]: row[1] for row in await cur.fetchall()}  # not completed elsewhere
        live = [r for r in results if r.publication_id in retired]
        if not live:
            return []
        sends = _by_queue([pair for r in live for pair in r.queue_messages])
        held: set[int] = set()
        if sends:
            cur = await conn.execute(sql.hold_queues, (sorted(q for q, _ in sends),))
            held = {row[0] for row in await cur.fetchall()}
        gone = {q for q, _ in sends if q not in held or q not in fan.fifo}
        if gone:
            raise QueuesGone(gone)  # before anything is sent; rolls the retirements back
        sent = [q for q, batch in sends if await fan.send_held(conn, q, batch, now_ms, window_ms)]
        if len(sent) < len(sends):
            raise QueuesGone({q for q, _ in sends} - set(sent))
        deliveries = [d for r in live for d in r.deliveries]
        await _insert_deliveries(conn, sql.insert_deliveries, deliveries, now_ms)
        promoted = False
        for key in sorted({k for k in retired.values() if k is not None}):
            cur = await conn.execute(sql.promote, (key,))
            promoted = await cur.fetchone() is not None or promoted
        if deliveries or promoted:
            await conn.execute(sql.wake, fan.wake_params)
    return sent


async def _insert_deliveries(conn: Conn, statement: str, deliveries: Sequence[NewDelivery], now_ms: int) -> None:
    """The push deliveries of a fan-out as one statement over arrays (none when there are none)."""
    if not deliveries:
        return
    await conn.execute(
        statement,
        {
            "now": now_ms,
            "subs": [d.subscription_arn for d in deliveries],
            "payloads": [d.payload for d in deliveries],
            "dues": [d.next_attempt_ms for d in deliveries],
        },
    )


def _by_queue(queue_messages: Sequence[tuple[int, NewMessage]]) -> list[tuple[int, list[NewMessage]]]:
    """Messages grouped by queue, each group in the given order (one send per queue)."""
    grouped: dict[int, list[NewMessage]] = {}
    for queue_id, message in queue_messages:
        grouped.setdefault(queue_id, []).append(message)
    return list(grouped.items())


async def finish_delivery(
    conn: Conn, fan: Fanout, delivery_id: int, now_ms: int, dead_letter: tuple[int, NewMessage] | None
) -> bool:
    """Delete the delivery and send its dead letter, atomically; return whether a dead letter was sent.

    A dead-letter queue that no longer exists raises `QueuesGone`, which rolls the deletion back.
    """
    async with conn.transaction():
        cur = await conn.execute(fan.outbox.delete_delivery, (delivery_id,))
        if await cur.fetchone() is None or dead_letter is None:
            return False
        queue_id, message = dead_letter
        if not await fan.send(conn, queue_id, [message], now_ms, DEAD_LETTER_DEDUP_WINDOW_MS):
            raise QueuesGone({queue_id})
        return True


class PostgresOutbox(OutboxStore):
    """`OutboxStore` methods of `PostgresStore`, which provides the pool, statements and wake-ups."""

    schema: str
    _sql: Sql
    _channel: str
    _waiters: Waiters
    _claim_epoch: ContextVar[tuple[int, int, int] | None]
    _outbox_sql_cache: OutboxSql | None = None
    _queues: QueueCache

    if TYPE_CHECKING:

        async def _run(self, work: Callable[[Conn], Awaitable[T]], *, bulk: bool = False) -> T: ...

        async def _is_fifo(self, queue_id: int) -> bool: ...

        async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None: ...

        async def _notify(self, queue_ids: Sequence[int]) -> None: ...

        def _in_background(self, work: Awaitable[None]) -> None: ...

    @property
    def _outbox_sql(self) -> OutboxSql:
        if self._outbox_sql_cache is None:
            self._outbox_sql_cache = OutboxSql(self.schema)
        return self._outbox_sql_cache

    async def _fanout(self, queue_ids: Sequence[int]) -> Fanout:
        """Which of the queues exist, and which are FIFO (each a cached lookup after the first)."""
        kinds: dict[int, bool] = {}
        for queue_id in set(queue_ids):
            with contextlib.suppress(QueueDoesNotExist):
                kinds[queue_id] = await self._is_fifo(queue_id)
        return Fanout(self._sql, self._outbox_sql, self._channel, kinds)

    def _woken(self, queue_ids: Sequence[int] = (), outbox: bool = True) -> None:
        """Local wake-ups after a commit (other nodes hear the NOTIFY)."""
        for queue_id in queue_ids:
            self._waiters.wake(queue_id)
        if outbox:
            self._waiters.wake(OUTBOX_WAKE_KEY)

    def _claiming(self) -> None:
        self._claim_epoch.set((OUTBOX_WAKE_KEY, self._waiters.epoch(OUTBOX_WAKE_KEY), 0))

    async def add_publications(
        self,
        publications: Sequence[NewPublication],
        now_ms: int,
        dedup_window_ms: int,
        guard: DocumentGuard | None = None,
    ) -> list[PublishOutcome]:
        batch = list(publications)
        if not batch:
            return []
        fan = await self._fanout(())
        with self._waking_outbox_on_failure():
            outcomes = await self._run(lambda conn: add_publications(conn, fan, batch, now_ms, dedup_window_ms, guard))
        self._woken(outbox=any(not o.duplicate for o in outcomes))
        return outcomes

    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        self._claiming()
        if limit <= 0:
            return []
        return await self._run(lambda conn: claim_publications(conn, self._outbox_sql, owner, now_ms, lease_ms, limit))

    async def release_publications(self, owner: str, publication_ids: Sequence[int]) -> None:
        params = {
            "ids": list(publication_ids),
            "owner": owner,
            "channel": self._channel,
            "wake_key": self._sql.wake_key,
            "node": self._sql.node,
        }
        if not params["ids"]:
            return

        async def release(conn: Conn) -> Row | None:
            cur = await conn.execute(self._outbox_sql.release_publications, params)
            return await cur.fetchone()

        with self._waking_outbox_on_failure():
            released = await self._run(release)
        if released is not None:
            self._woken()

    async def complete_publication(
        self,
        publication_id: int,
        queue_messages: Sequence[tuple[int, NewMessage]],
        deliveries: Sequence[NewDelivery],
        now_ms: int,
        dedup_window_ms: int,
    ) -> None:
        sends, pushes = list(queue_messages), list(deliveries)
        fan = await self._fanout([q for q, _ in sends])
        with self._forgetting_gone_queues(), self._waking_outbox_on_failure():
            sent = await self._run(
                lambda conn: complete_publication(conn, fan, publication_id, sends, pushes, now_ms, dedup_window_ms)
            )
        self._woken(sent)

    async def complete_publications(self, results: Sequence[FanOutResult], now_ms: int, dedup_window_ms: int) -> None:
        batch = list(results)
        if not batch:
            return
        fan = await self._fanout([q for r in batch for q, _ in r.queue_messages])
        counts, delayed = self._reserve(fan, (pair for r in batch for pair in r.queue_messages), now_ms)
        with self._forgetting_gone_queues(), self._waking_outbox_on_failure():
            sent = await self._run(lambda conn: complete_publications(conn, fan, batch, now_ms, dedup_window_ms))
        self._woken_after_fanout(fan, sent, counts, delayed)

    def _reserve(
        self, fan: Fanout, queue_messages: Iterable[tuple[int, NewMessage]], now_ms: int
    ) -> tuple[dict[int, int], set[int]]:
        """Mark the standard queues whose new messages, all visible now, this node's own waiting receivers
        have room for (`Waiters.reserve`): their sends skip the NOTIFY. Returns the messages per queue,
        and the queues sent delayed messages.

        Otherwise every other node's receivers on the queue would wake, and so would this node's once
        more when the notification comes back, to claim what the first ones woken already took.
        Delayed messages and FIFO queues notify as before.
        """
        counts: dict[int, int] = {}
        delayed: set[int] = set()
        for queue_id, message in queue_messages:
            counts[queue_id] = counts.get(queue_id, 0) + 1
            if message.visible_at_ms > now_ms:
                delayed.add(queue_id)
        fan.local = frozenset(
            queue_id
            for queue_id, count in counts.items()
            if fan.fifo.get(queue_id) is False and queue_id not in delayed and self._waiters.reserve(queue_id, count)
        )
        return counts, delayed

    def _woken_after_fanout(self, fan: Fanout, sent: Sequence[int], counts: dict[int, int], delayed: set[int]) -> None:
        """`_woken`, and a NOTIFY after all for a queue whose waiters here were gone by the commit
        (timed out, woken by another send), so that no other node's receiver sleeps through the messages.

        A standard queue sent only messages visible now wakes just enough waiters to take them
        (`Waiters.wake_some`, as a SendMessage does); FIFO queues and delayed messages wake them all."""
        everyone = {queue_id for queue_id in sent if fan.fifo.get(queue_id) is not False or queue_id in delayed}
        late = self._waiters.wake_after_write({q: counts.get(q, 0) for q in sent}, fan.local, everyone)
        self._waiters.wake(OUTBOX_WAKE_KEY)
        if late:
            self._in_background(self._notify(late))

    @contextlib.contextmanager
    def _waking_outbox_on_failure(self) -> Iterator[None]:
        """The outbox statements notify only other nodes' workers (`wake_other_waiters`): this node wakes its
        own after the commit. A failure may hide a commit (a connection lost at commit), so it wakes them too:
        at worst they claim in vain, where a missed wake-up would leave the work to their timed fallback."""
        try:
            yield
        except BaseException:
            self._waiters.wake(OUTBOX_WAKE_KEY)
            raise

    @contextlib.contextmanager
    def _forgetting_gone_queues(self) -> Iterator[None]:
        """Drop the cached records of queues found gone, so the caller's next lookup reads the database
        (another node's deletion may not have been notified here yet)."""
        try:
            yield
        except QueuesGone as gone:
            for queue_id in gone.queue_ids:
                self._queues.invalidate(queue_id)
            raise

    async def claim_deliveries(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Delivery]:
        self._claiming()
        params = {"now": now_ms, "n": limit, "until": now_ms + lease_ms, "owner": owner}

        async def claim(conn: Conn) -> list[Row]:
            cur = await conn.execute(self._outbox_sql.claim_deliveries, params)
            return await cur.fetchall()

        rows = sorted(await self._run(claim), key=lambda r: (r[0], r[1]))
        return [delivery(row[1:]) for row in rows]

    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        now_ms: int,
        error: str | None = None,
        dead_letter: tuple[int, NewMessage] | None = None,
    ) -> None:
        check_finished_state(state, dead_letter)
        fan = await self._fanout([] if dead_letter is None else [dead_letter[0]])
        with self._forgetting_gone_queues():
            sent = await self._run(lambda conn: finish_delivery(conn, fan, delivery_id, now_ms, dead_letter))
        if sent:
            assert dead_letter is not None
            self._woken([dead_letter[0]], outbox=False)

    async def finish_deliveries(self, delivery_ids: Sequence[int], state: DeliveryState, now_ms: int) -> None:
        check_finished_state(state, None)
        ids = list(delivery_ids)
        if not ids:
            return

        async def delete(conn: Conn) -> None:
            await conn.execute(self._outbox_sql.delete_deliveries, (ids,))

        await self._run(delete)

    async def retry_delivery(self, delivery_id: int, next_attempt_ms: int, error: str | None) -> None:
        await self._reschedule(self._outbox_sql.retry_delivery, delivery_id, next_attempt_ms, error)

    async def release_delivery(self, delivery_id: int, next_attempt_ms: int) -> None:
        await self._reschedule(self._outbox_sql.release_delivery, delivery_id, next_attempt_ms, None)

    async def _reschedule(self, statement: str, delivery_id: int, next_attempt_ms: int, error: str | None) -> None:
        params = {
            "id": delivery_id,
            "next": next_attempt_ms,
            "error": error,
            "channel": self._channel,
            "wake_key": self._sql.wake_key,
            "node": self._sql.node,
        }

        async def update(conn: Conn) -> Row | None:
            cur = await conn.execute(statement, params)
            return await cur.fetchone()

        with self._waking_outbox_on_failure():
            updated = await self._run(update)
        if updated is not None:
            self._woken()

    async def wait_for_outbox(self, timeout_s: float) -> None:
        """As a long poll waits on a queue (registration, NOTIFY, timed fallback), on the outbox's id."""
        await self.wait_for_messages(OUTBOX_WAKE_KEY, timeout_s)
