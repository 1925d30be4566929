"""The publication outbox on SQLite: publications, their fan-out, and push deliveries with leases.

All of it runs on the writer thread, in the same transactions as the queue store: fanning a
publication out sends its SQS messages through `messages.send_to_queues` (dedup, FIFO groups,
expiry, wake-ups; the standard queues' messages in INSERTs across queues) in the work item that
records its deliveries and deletes it, so a crash leaves either all of it or none. Being the only
writer, the store needs no row locks: a claim reads and leases in one item.

Costs stay flat with outbox depth: claims walk ``publications_claimable`` (heads only; leased
heads are skipped, and there are only as many as are in flight) and ``deliveries_by_due``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

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
from loosely.core.errors import ConcurrentUpdate, QueuesGone
from loosely.core.ports import OutboxStore
from loosely.core.queues.models import NewMessage
from loosely.storage._common import QueueWaiters
from loosely.storage._documents import DEAD_LETTER_DEDUP_WINDOW_MS, check_finished_state
from loosely.storage.sqlite import messages
from loosely.storage.sqlite.archive import archive_publication
from loosely.storage.sqlite.diskspace import DiskSpace
from loosely.storage.sqlite.parked import ParkedReceives, Served
from loosely.storage.sqlite.writer import Tx, Writer

OUTBOX_WAKE_KEY = 0
"""The key of outbox wake-ups in the outbox's own `QueueWaiters`."""

_PUBLICATION_COLUMNS = "id, topic_arn, message_id, payload, created_ms"
_DELIVERY_COLUMNS = "id, subscription_arn, payload, attempts, next_attempt_ms, created_ms, last_error"
_IDS_PER_STATEMENT = 500
"""Queue ids per existence check: well under SQLite's limit on bound parameters."""
_DEDUP_SWEEP = 2
"""Expired dedup rows removed per deduplicated publication added: the table stays at its live size.
Publications without a dedup key (standard topics, the common case) skip the sweep."""


# ---- publications ----


def add_publications(
    tx: Tx,
    waiters: QueueWaiters,
    publications: Sequence[NewPublication],
    now_ms: int,
    dedup_window_ms: int,
    guard: DocumentGuard | None = None,
) -> list[PublishOutcome]:
    conn = tx.conn
    if guard is not None:
        row = conn.execute("SELECT body FROM documents WHERE kind = ? AND key = ?", (guard.kind, guard.key)).fetchone()
        if row is None or row[0] != guard.body:
            raise ConcurrentUpdate("The document was changed by another request; read it again and retry.")
    if any(p.dedup_key is not None for p in publications):
        conn.execute(
            "DELETE FROM publication_dedup WHERE (topic_arn, dedup_key) IN"
            " (SELECT topic_arn, dedup_key FROM publication_dedup WHERE expires_at_ms <= ? LIMIT ?)",
            (now_ms, _DEDUP_SWEEP * len(publications)),
        )
    outcomes = [_add_one(conn, p, now_ms, dedup_window_ms) for p in publications]
    if any(not o.duplicate for o in outcomes):
        tx.on_commit(lambda: waiters.wake((OUTBOX_WAKE_KEY,)))
    return outcomes


def _add_one(
    conn: sqlite3.Connection, publication: NewPublication, now_ms: int, dedup_window_ms: int
) -> PublishOutcome:
    if publication.dedup_key is not None:
        seen = conn.execute(
            "SELECT message_id, sequence FROM publication_dedup"
            " WHERE topic_arn = ? AND dedup_key = ? AND expires_at_ms > ?",
            (publication.topic_arn, publication.dedup_key, now_ms),
        ).fetchone()
        if seen is not None:
            return PublishOutcome(message_id=str(seen[0]), sequence=int(seen[1]), duplicate=True)
    head = publication.ordering_key is None or _first_of_key(conn, publication.ordering_key) is None
    cursor = conn.execute(
        "INSERT INTO publications (topic_arn, message_id, payload, ordering_key, created_ms, head)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (publication.topic_arn, publication.message_id, publication.payload, publication.ordering_key, now_ms, head),
    )
    sequence = int(cursor.lastrowid or 0)
    if publication.archive_until_ms is not None:
        archive_publication(conn, publication, sequence, now_ms)
    if publication.dedup_key is not None:
        conn.execute(
            "INSERT OR REPLACE INTO publication_dedup (topic_arn, dedup_key, message_id, sequence, expires_at_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (publication.topic_arn, publication.dedup_key, publication.message_id, sequence, now_ms + dedup_window_ms),
        )
    return PublishOutcome(message_id=publication.message_id, sequence=sequence)


def _first_of_key(conn: sqlite3.Connection, ordering_key: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM publications WHERE ordering_key = ? ORDER BY id LIMIT 1", (ordering_key,)
    ).fetchone()
    return None if row is None else int(row[0])


def claim_publications(tx: Tx, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
    """Lease free heads oldest first; each head of an ordering key brings the free rows that follow it."""
    conn = tx.conn
    heads = conn.execute(
        "SELECT id, ordering_key FROM publications INDEXED BY publications_claimable"
        " WHERE head = 1 AND lease_until_ms <= ? ORDER BY id LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    chosen: list[int] = []
    for head_id, ordering_key in heads:
        if len(chosen) >= limit:
            break
        chosen.append(int(head_id))
        if ordering_key is not None:
            chosen.extend(_followers(conn, str(ordering_key), int(head_id), now_ms, limit - len(chosen)))
    if not chosen:
        return []
    marks = ", ".join("?" * len(chosen))
    conn.execute(
        f"UPDATE publications SET lease_owner = ?, lease_until_ms = ? WHERE id IN ({marks})",
        (owner, now_ms + lease_ms, *chosen),
    )
    rows = conn.execute(
        f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE id IN ({marks}) ORDER BY id", chosen
    ).fetchall()
    return [_publication(row) for row in rows]


def release_publications(tx: Tx, outbox_waiters: QueueWaiters, owner: str, publication_ids: Sequence[int]) -> None:
    """End ``owner``'s leases of these publications (those retired or leased to another are left alone)."""
    released = 0
    for start in range(0, len(publication_ids), _IDS_PER_STATEMENT):
        part = publication_ids[start : start + _IDS_PER_STATEMENT]
        marks = ", ".join("?" * len(part))
        cursor = tx.conn.execute(
            f"UPDATE publications SET lease_owner = NULL, lease_until_ms = 0 WHERE id IN ({marks}) AND lease_owner = ?",
            (*part, owner),
        )
        released += cursor.rowcount
    if released:
        tx.on_commit(lambda: outbox_waiters.wake((OUTBOX_WAKE_KEY,)))


def _followers(conn: sqlite3.Connection, ordering_key: str, head_id: int, now_ms: int, room: int) -> list[int]:
    """The rows after the head of one key, in order, up to the first still leased (or ``room`` of them)."""
    if room <= 0:
        return []
    rows = conn.execute(
        "SELECT id, lease_until_ms FROM publications WHERE ordering_key = ? AND id > ? ORDER BY id LIMIT ?",
        (ordering_key, head_id, room),
    ).fetchall()
    found: list[int] = []
    for row_id, lease_until_ms in rows:
        if lease_until_ms > now_ms:
            break
        found.append(int(row_id))
    return found


def _publication(row: tuple[Any, ...]) -> Publication:
    pid, topic_arn, message_id, payload, created_ms = row
    return Publication(
        id=int(pid),
        topic_arn=str(topic_arn),
        message_id=str(message_id),
        payload=str(payload),
        created_ms=int(created_ms),
        sequence=int(pid),
    )


def complete_publication(
    tx: Tx,
    waiters: QueueWaiters,
    outbox_waiters: QueueWaiters,
    publication_id: int,
    queue_messages: Sequence[tuple[int, NewMessage]],
    deliveries: Sequence[NewDelivery],
    now_ms: int,
    dedup_window_ms: int,
    wake: Callable[[Sequence[int]], None] | None = None,
) -> None:
    """Fan one publication out and delete it; a publication already gone (completed elsewhere) is left alone.

    ``wake``: the long-poll wake-up of the queues sent to, once committed (`messages.send_to_queues`).
    """
    conn = tx.conn
    row = conn.execute("SELECT ordering_key FROM publications WHERE id = ?", (publication_id,)).fetchone()
    if row is None:
        return
    sends = _by_queue(queue_messages)
    _require_queues(conn, [queue_id for queue_id, _ in sends])
    messages.send_to_queues(tx, waiters, sends, now_ms, dedup_window_ms, wake)
    conn.executemany(
        "INSERT INTO deliveries (subscription_arn, payload, next_attempt_ms, due_ms, created_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        [(d.subscription_arn, d.payload, d.next_attempt_ms, d.next_attempt_ms, now_ms) for d in deliveries],
    )
    conn.execute("DELETE FROM publications WHERE id = ?", (publication_id,))
    promoted = row[0] is not None and _promote_head(conn, str(row[0]))
    if deliveries or promoted:
        tx.on_commit(lambda: outbox_waiters.wake((OUTBOX_WAKE_KEY,)))


def complete_publications(
    tx: Tx,
    waiters: QueueWaiters,
    outbox_waiters: QueueWaiters,
    results: Sequence[FanOutResult],
    now_ms: int,
    dedup_window_ms: int,
    wake: Callable[[Sequence[int]], None] | None = None,
) -> None:
    """Fan many publications out and delete them in one item: one send for all queues, one insert of deliveries.

    Publications already gone (completed elsewhere) are left out. Each queue's messages keep the
    order of ``results``, which is what keeps a FIFO topic's order in FIFO queues. A queue that no
    longer exists raises `QueuesGone` before anything is written. ``wake``: as `complete_publication`.
    """
    conn = tx.conn
    ids = [r.publication_id for r in results]
    marks = ", ".join("?" * len(ids))
    keys = dict(conn.execute(f"SELECT id, ordering_key FROM publications WHERE id IN ({marks})", ids).fetchall())
    live = [r for r in results if r.publication_id in keys]
    if not live:
        return
    sends = _by_queue([pair for r in live for pair in r.queue_messages])
    _require_queues(conn, [queue_id for queue_id, _ in sends])
    messages.send_to_queues(tx, waiters, sends, now_ms, dedup_window_ms, wake)
    deliveries = [d for r in live for d in r.deliveries]
    if deliveries:
        conn.executemany(
            "INSERT INTO deliveries (subscription_arn, payload, next_attempt_ms, due_ms, created_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            [(d.subscription_arn, d.payload, d.next_attempt_ms, d.next_attempt_ms, now_ms) for d in deliveries],
        )
    live_ids = [r.publication_id for r in live]
    conn.execute(f"DELETE FROM publications WHERE id IN ({', '.join('?' * len(live_ids))})", live_ids)
    ordering_keys = {str(keys[i]) for i in live_ids if keys[i] is not None}
    promoted = [key for key in sorted(ordering_keys) if _promote_head(conn, key)]
    if deliveries or promoted:
        tx.on_commit(lambda: outbox_waiters.wake((OUTBOX_WAKE_KEY,)))


def _by_queue(queue_messages: Sequence[tuple[int, NewMessage]]) -> list[tuple[int, list[NewMessage]]]:
    """Messages grouped by queue, each group in the given order (one send per queue)."""
    grouped: dict[int, list[NewMessage]] = {}
    for queue_id, message in queue_messages:
        grouped.setdefault(queue_id, []).append(message)
    return list(grouped.items())


def _require_queues(conn: sqlite3.Connection, queue_ids: Sequence[int]) -> None:
    """Raise `QueuesGone` (before anything is written, so the item fails alone) unless all exist."""
    found: set[int] = set()
    for start in range(0, len(queue_ids), _IDS_PER_STATEMENT):
        part = queue_ids[start : start + _IDS_PER_STATEMENT]
        marks = ", ".join("?" * len(part))
        found.update(row[0] for row in conn.execute(f"SELECT id FROM queues WHERE id IN ({marks})", part))
    if len(found) < len(queue_ids):
        raise QueuesGone(set(queue_ids) - found)


def _queue_exists(conn: sqlite3.Connection, queue_id: int) -> bool:
    return conn.execute("SELECT 1 FROM queues WHERE id = ?", (queue_id,)).fetchone() is not None


def _promote_head(conn: sqlite3.Connection, ordering_key: str) -> bool:
    """Make the key's first remaining row its head; return whether the key has one."""
    first = _first_of_key(conn, ordering_key)
    if first is None:
        return False
    conn.execute("UPDATE publications SET head = 1 WHERE id = ?", (first,))
    return True


# ---- deliveries ----


def claim_deliveries(tx: Tx, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Delivery]:
    conn = tx.conn
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE due_ms <= ? ORDER BY due_ms, id LIMIT ?", (now_ms, limit)
    ).fetchall()
    conn.executemany(
        "UPDATE deliveries SET due_ms = ?, lease_owner = ? WHERE id = ?",
        [(now_ms + lease_ms, owner, row[0]) for row in rows],
    )
    return [_delivery(row) for row in rows]


def _delivery(row: tuple[Any, ...]) -> Delivery:
    did, subscription_arn, payload, attempts, next_attempt_ms, created_ms, last_error = row
    return Delivery(
        id=int(did),
        subscription_arn=str(subscription_arn),
        payload=str(payload),
        attempts=int(attempts),
        next_attempt_ms=int(next_attempt_ms),
        created_ms=int(created_ms),
        last_error=None if last_error is None else str(last_error),
    )


def finish_delivery(
    tx: Tx, waiters: QueueWaiters, delivery_id: int, now_ms: int, dead_letter: tuple[int, NewMessage] | None
) -> None:
    """Delete the delivery, sending its dead letter in the same item; one already gone is left alone.

    A dead-letter queue that no longer exists raises `QueuesGone` before anything is written.
    """
    conn = tx.conn
    if dead_letter is not None and not _queue_exists(conn, dead_letter[0]):
        raise QueuesGone({dead_letter[0]})
    cursor = conn.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
    if cursor.rowcount == 0 or dead_letter is None:
        return
    queue_id, message = dead_letter
    messages.send_messages(tx, waiters, queue_id, [message], now_ms, DEAD_LETTER_DEDUP_WINDOW_MS)


def finish_deliveries(tx: Tx, delivery_ids: Sequence[int]) -> None:
    marks = ", ".join("?" * len(delivery_ids))
    tx.conn.execute(f"DELETE FROM deliveries WHERE id IN ({marks})", list(delivery_ids))


def reschedule_delivery(
    tx: Tx, waiters: QueueWaiters, delivery_id: int, next_attempt_ms: int, attempted: bool, error: str | None
) -> None:
    """Release the lease; due again at ``next_attempt_ms``, counting an attempt (with its error) if ``attempted``."""
    if attempted:
        sql = "UPDATE deliveries SET attempts = attempts + 1, last_error = ?,"
        params: tuple[object, ...] = (error, next_attempt_ms, next_attempt_ms, delivery_id)
    else:
        sql = "UPDATE deliveries SET"
        params = (next_attempt_ms, next_attempt_ms, delivery_id)
    cursor = tx.conn.execute(f"{sql} next_attempt_ms = ?, due_ms = ?, lease_owner = NULL WHERE id = ?", params)
    if cursor.rowcount:
        tx.on_commit(lambda: waiters.wake((OUTBOX_WAKE_KEY,)))


class SqliteOutbox(OutboxStore):
    """`OutboxStore` methods of `SqliteStore`, which provides the writer, the wake-ups and the parked receives."""

    _writer: Writer
    _waiters: QueueWaiters
    _outbox_waiters: QueueWaiters
    _parked: ParkedReceives
    _space: DiskSpace

    if TYPE_CHECKING:

        def _serve_parked(self, served: Served, batch: Sequence[NewMessage], now_ms: int) -> None: ...

    def _serving(self) -> tuple[dict[int, Served], Callable[[Sequence[int]], None]]:
        """Served receives and the wake-up of a fan-out, as `SqliteStore.send_messages` has for a send.

        Returns an empty map to fill and the wake-up for `messages.send_to_queues`: call `_serve` right
        after enqueueing the fan-out, with no ``await`` between, so the claims join its group.
        """
        served: dict[int, Served] = {}

        def wake(queue_ids: Sequence[int]) -> None:
            everyone: list[int] = []
            for queue_id in queue_ids:
                queue_served = served.get(queue_id)
                if queue_served is not None and queue_served.drained and self._parked.parked(queue_id):
                    self._parked.wake(self._waiters, queue_served)  # all but the receives still parked
                else:
                    everyone.append(queue_id)
            if everyone:  # one wake-up for the rest (the usual case when each queue has one consumer)
                self._waiters.wake(everyone)

        return served, wake

    def _serve(self, served: dict[int, Served], queue_messages: Iterable[tuple[int, NewMessage]], now_ms: int) -> None:
        """Receives parked on the queues fanned out to claim right behind the fan-out, in its group.

        As for a send (parked.py): only as many receives as each queue's visible messages can fill,
        and when their claims take everything, the queue's other parked receives are left asleep.
        """
        waiting = self._parked.waiting_on()
        if not waiting:
            return
        by_queue: dict[int, list[NewMessage]] = {}
        for queue_id, message in queue_messages:
            if queue_id in waiting:
                by_queue.setdefault(queue_id, []).append(message)
        for queue_id, batch in by_queue.items():
            queue_served = served[queue_id] = Served(queue_id)
            self._serve_parked(queue_served, batch, now_ms)

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
        if guard is not None:  # a topic's messages (Publish, replays): refused while disk space is low
            await self._space.admit(sum(len(p.payload) for p in batch))
        return await self._writer.submit(
            lambda tx: add_publications(tx, self._outbox_waiters, batch, now_ms, dedup_window_ms, guard)
        )

    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        self._outbox_waiters.before_claim(OUTBOX_WAKE_KEY)
        return await self._writer.submit(lambda tx: claim_publications(tx, owner, now_ms, lease_ms, limit))

    async def release_publications(self, owner: str, publication_ids: Sequence[int]) -> None:
        ids = list(publication_ids)
        if ids:
            await self._writer.submit(lambda tx: release_publications(tx, self._outbox_waiters, owner, ids))

    async def complete_publication(
        self,
        publication_id: int,
        queue_messages: Sequence[tuple[int, NewMessage]],
        deliveries: Sequence[NewDelivery],
        now_ms: int,
        dedup_window_ms: int,
    ) -> None:
        sends, pushes = list(queue_messages), list(deliveries)
        served, wake = self._serving()
        done = self._writer.enqueue(
            lambda tx: complete_publication(
                tx, self._waiters, self._outbox_waiters, publication_id, sends, pushes, now_ms, dedup_window_ms, wake
            )
        )
        self._serve(served, sends, now_ms)
        await done

    async def complete_publications(self, results: Sequence[FanOutResult], now_ms: int, dedup_window_ms: int) -> None:
        batch = list(results)
        if not batch:
            return
        # Fan-out multiplies what it writes: it waits while disk space is low.
        await self._space.admit(sum(len(m.body) + len(m.meta) for r in batch for _, m in r.queue_messages))
        served, wake = self._serving()
        # Background work: requests waiting for the writer go first, and those that come while its
        # statements run (or just after) share its COMMIT instead of waiting for it (`Writer.background`).
        # The claims served below belong to it (they must run right behind it).
        with self._writer.background():
            done = self._writer.enqueue(
                lambda tx: complete_publications(
                    tx, self._waiters, self._outbox_waiters, batch, now_ms, dedup_window_ms, wake
                ),
                # Hundreds of rows: their statements run on the writer thread (SQLite releases the GIL
                # while it works), not on the event loop, which meanwhile goes on answering requests.
                # The claims served below join that group, so they run there too.
                bulk=True,
            )
            self._serve(served, (pair for result in batch for pair in result.queue_messages), now_ms)
        await done

    async def claim_deliveries(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Delivery]:
        self._outbox_waiters.before_claim(OUTBOX_WAKE_KEY)
        return await self._writer.submit(lambda tx: claim_deliveries(tx, owner, now_ms, lease_ms, limit))

    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        now_ms: int,
        error: str | None = None,
        dead_letter: tuple[int, NewMessage] | None = None,
    ) -> None:
        check_finished_state(state, dead_letter)
        await self._writer.submit(lambda tx: finish_delivery(tx, self._waiters, delivery_id, now_ms, dead_letter))

    async def finish_deliveries(self, delivery_ids: Sequence[int], state: DeliveryState, now_ms: int) -> None:
        check_finished_state(state, None)
        ids = list(delivery_ids)
        if ids:
            await self._writer.submit(lambda tx: finish_deliveries(tx, ids))

    async def retry_delivery(self, delivery_id: int, next_attempt_ms: int, error: str | None) -> None:
        await self._writer.submit(
            lambda tx: reschedule_delivery(tx, self._outbox_waiters, delivery_id, next_attempt_ms, True, error)
        )

    async def release_delivery(self, delivery_id: int, next_attempt_ms: int) -> None:
        await self._writer.submit(
            lambda tx: reschedule_delivery(tx, self._outbox_waiters, delivery_id, next_attempt_ms, False, None)
        )

    async def wait_for_outbox(self, timeout_s: float) -> None:
        await self._outbox_waiters.wait(OUTBOX_WAKE_KEY, timeout_s)
