"""The replay worker: redelivers archived FIFO topic messages to subscriptions that asked for a replay,
and removes archived messages past their retention.

A replay is a document (`loosely.core.topics.archive.ReplayState`, one per subscription) that
SetSubscriptionAttributes or Subscribe writes with a ``ReplayPolicy``. Each step of this worker:

1. leases the replay (a compare-and-set on the document's version), so on several nodes sharing a
   PostgreSQL database one node runs it at a time, and a replay whose node died is taken over once
   its lease has run out;
2. reads a page of the topic's archive after the replay's cursor, in publish order;
3. records, for the messages of the page inside the window, one outbox publication each, addressed
   to that subscription only and marked as replayed (MessageId, Timestamp, content and
   SequenceNumber are the original's). The write is guarded by the lease's document body, so a
   replay replaced by a new ReplayPolicy meanwhile adds nothing. Fan-out then applies the
   subscription's filter policy and delivers them as it delivers every message, in order behind
   the topic's other publications;
4. stores the new cursor (and ``Completed`` once the window is done).

A crash between 3 and 4 repeats that page after the lease: delivery stays at least once.
Housekeeping deletes expired archive rows a bounded batch at a time through the expiry index, once a
minute (at once again while it finds full batches).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from loosely.core.clock import Clock
from loosely.core.documents import Document, DocumentGuard, NewPublication
from loosely.core.errors import ConcurrentUpdate
from loosely.core.frozen import record
from loosely.core.ports import ArchiveStore, DocumentStore, OutboxStore
from loosely.core.topics.archive import (
    FAILED,
    REPLAY_KIND,
    ArchivedMessage,
    ReplayState,
    replay_page,
)
from loosely.core.topics.models import SUBSCRIPTION_KIND, TOPIC_KIND, PublishedMessage, sequence_number

__all__ = ["ReplayOptions", "Replayer"]

log = logging.getLogger(__name__)

_PAUSE_AFTER_ERROR_S = 1.0


@record
class ReplayOptions:
    page: int = 100  # archived messages read (and publications recorded) per step
    lease_ms: int = 30_000  # a node that dies mid-replay loses it after this
    purge_batch: int = 1_000  # expired archive rows removed per statement
    purge_interval_ms: int = 60_000  # retention is counted in days: a look a minute is plenty
    idle_poll_s: float = 1.0  # how often to look for replays and expired rows when there is nothing to do
    dedup_window_ms: int = 5 * 60 * 1000


class Replayer:
    """Runs replays and archive housekeeping; `run` loops until cancelled."""

    def __init__(
        self,
        documents: DocumentStore,
        outbox: OutboxStore,
        archive: ArchiveStore,
        clock: Clock,
        owner: str,
        options: ReplayOptions | None = None,
    ) -> None:
        self._documents = documents
        self._outbox = outbox
        self._archive = archive
        self._clock = clock
        self._owner = owner
        self.options = options or ReplayOptions()
        self._next_purge_ms = 0

    async def run(self) -> None:
        failing = False
        while True:
            try:
                busy = await self.run_once()
            except Exception:
                if not failing:
                    log.exception("replay worker failed; retrying")
                failing = True
                await asyncio.sleep(_PAUSE_AFTER_ERROR_S)
                continue
            if failing:
                log.info("replay worker recovered")
                failing = False
            await asyncio.sleep(0 if busy else self.options.idle_poll_s)

    async def run_until_idle(self, max_rounds: int = 10_000) -> None:
        """Step until there is nothing left to do now (tests)."""
        for _ in range(max_rounds):
            if not await self.run_once():
                return

    async def run_once(self) -> bool:
        """Purge a batch of expired archive rows and take one step of every replay due; True if more is due."""
        now = self._clock.now_ms()
        busy = await self._purge(now)
        for doc in await self._documents.list_documents(REPLAY_KIND):
            state = ReplayState.from_json(doc.body)
            if state.finished or (state.lease_owner not in (None, self._owner) and state.lease_until_ms > now):
                continue
            busy = await self._step(doc, state) or busy
        return busy

    async def _purge(self, now: int) -> bool:
        """Remove a batch of expired archive rows when due; True when a full batch suggests more."""
        if now < self._next_purge_ms:
            return False
        full = await self._archive.purge_archive(now, self.options.purge_batch) >= self.options.purge_batch
        self._next_purge_ms = now if full else now + self.options.purge_interval_ms
        return full

    async def _step(self, doc: Document, state: ReplayState) -> bool:
        """One page of one replay; True when the replay goes on."""
        now = self._clock.now_ms()
        leased = state.leased(self._owner, now, self.options.lease_ms)
        try:
            doc = await self._put(doc, leased)
        except ConcurrentUpdate:
            return False  # another node took it, or a new ReplayPolicy replaced it
        if await self._documents.get_document(SUBSCRIPTION_KIND, state.subscription_arn) is None:
            await self._documents.delete_document(REPLAY_KIND, state.subscription_arn)
            return False
        if await self._documents.get_document(TOPIC_KIND, state.topic_arn) is None:
            await self._finish(doc, replace(leased, status=FAILED))
            return False
        page = self.options.page
        rows = await self._archive.read_archive(state.topic_arn, leased.cursor, leased.start_ms, page)
        chosen, after = replay_page(leased, rows, page)
        if chosen:
            publications = [_publication(state, row) for row in chosen]
            try:
                await self._outbox.add_publications(
                    publications, now, self.options.dedup_window_ms, DocumentGuard(REPLAY_KIND, doc.key, doc.body)
                )
            except ConcurrentUpdate:
                return False
        if after.finished:
            await self._finish(doc, after)
            return False
        try:
            await self._put(doc, after)
        except ConcurrentUpdate:
            return False
        return True

    async def _finish(self, doc: Document, state: ReplayState) -> None:
        try:
            await self._put(doc, replace(state, lease_owner=None, lease_until_ms=0))
        except ConcurrentUpdate:
            pass  # replaced meanwhile: the new replay is what counts
        log.info("replay for %s: %s (%d messages)", state.subscription_arn, state.status, state.replayed)

    async def _put(self, doc: Document, state: ReplayState) -> Document:
        stored, _ = await self._documents.put_document(
            REPLAY_KIND,
            doc.key,
            state.to_json(),
            self._clock.now_ms(),
            parent=state.topic_arn,
            expected_version=doc.version,
        )
        return stored


def _publication(state: ReplayState, row: ArchivedMessage) -> NewPublication:
    """The outbox publication that redelivers one archived message to the replaying subscription."""
    original = PublishedMessage.from_json(row.payload)
    payload = replace(
        original, sequence_number=sequence_number(row.sequence), replay_subscription=state.subscription_arn
    )
    return NewPublication(
        topic_arn=state.topic_arn,
        message_id=original.message_id,
        payload=payload.to_json(),
        ordering_key=state.topic_arn,
    )
