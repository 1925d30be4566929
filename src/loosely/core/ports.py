"""The storage interface: atomic, semantic operations that every backend implements.

Each method is one atomic step: it either happens whole or not at all, and on a shared database
(PostgreSQL) it is correct when many nodes call it at once. Storage never reads a clock: the
service passes ``now_ms``. Storage raises only `loosely.core.errors` errors (mapped from driver
errors once, inside the backend); a store that cannot be reached raises ``ServiceUnavailable``.

The contract is written down by the test suite in ``tests/contract``, run against every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from loosely.core.documents import (
    Delivery,
    DeliveryState,
    Document,
    DocumentGuard,
    FanOutResult,
    NewDelivery,
    NewPublication,
    Publication,
    PublishOutcome,
)
from loosely.core.queues.models import (
    ClaimRequest,
    ClaimResult,
    DeleteOutcome,
    MessageRef,
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueKey,
    QueueRecord,
    SendOutcome,
    VisibilityOutcome,
)
from loosely.core.topics.archive import ArchivedMessage


class QueueStore(ABC):
    """Queues and their messages."""

    # ---- life cycle ----

    @abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema (safe when several nodes start at once)."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release connections."""

    # ---- queues ----

    @abstractmethod
    async def create_queue(
        self,
        key: QueueKey,
        attributes: Mapping[str, str],
        tags: Mapping[str, str],
        retention_ms: int,
        now_ms: int,
        deleted_since_ms: int | None = None,
    ) -> tuple[QueueRecord, bool]:
        """Create the queue unless it exists; return the stored record and whether it was created.

        With ``deleted_since_ms`` set, raise ``QueueDeletedRecently`` when a queue of this key was
        deleted at or after that instant (and none exists now).
        """

    @abstractmethod
    async def get_queue(self, key: QueueKey, *, fresh: bool = False) -> QueueRecord | None:
        """The queue of this key, or None.

        ``fresh`` reads past any per-node cache. Management actions (GetQueueUrl, attributes, tags,
        purge, deletion) ask for it, so that on a cluster every node sees another node's change at
        once; message actions accept a record at most a notification's latency old.
        """

    @abstractmethod
    async def get_queue_by_id(self, queue_id: int) -> QueueRecord | None:
        """The queue of this storage id, or None."""

    @abstractmethod
    async def list_queues(self, account_id: str, region: str, prefix: str = "") -> list[QueueRecord]:
        """The account's queues in the region whose names start with ``prefix``, sorted by name."""

    @abstractmethod
    async def update_queue(
        self,
        queue_id: int,
        now_ms: int,
        attributes: Mapping[str, str] | None = None,
        retention_ms: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> QueueRecord:
        """Replace attributes and/or tags (whole mappings); raise ``QueueDoesNotExist``.

        When ``retention_ms`` changes, every stored message's expiry becomes sent time + the new
        retention.
        """

    @abstractmethod
    async def delete_queue(self, queue_id: int, now_ms: int) -> None:
        """Delete the queue and all its messages, remembering when (for QueueDeletedRecently)."""

    @abstractmethod
    async def purge_queue(self, queue_id: int, now_ms: int, min_interval_ms: int) -> None:
        """Delete every message sent before ``now_ms``.

        Raise ``PurgeQueueInProgress`` when the previous purge was less than ``min_interval_ms`` ago.
        """

    @abstractmethod
    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        """Visible, in-flight and delayed message counts (unexpired only)."""

    # ---- messages ----

    @abstractmethod
    async def send_messages(
        self, queue_id: int, messages: Sequence[NewMessage], now_ms: int, dedup_window_ms: int
    ) -> list[SendOutcome]:
        """Store messages durably, in order; one outcome per message.

        A message whose ``dedup_key`` was seen on this queue within ``dedup_window_ms`` is not stored
        again: its outcome names the original. Expiry is ``sent_ms`` + the queue's retention.
        Waiting receivers of the queue are woken. Raise ``QueueDoesNotExist``.
        """

    @abstractmethod
    async def claim_messages(self, queue_id: int, request: ClaimRequest) -> ClaimResult:
        """Atomically hand out up to ``request.max_messages`` visible, unexpired messages.

        See `ClaimRequest` for FIFO ordering, dead-lettering and receive attempts. Cost must not
        grow with the queue's depth or its number of FIFO groups.
        """

    @abstractmethod
    async def delete_messages(
        self,
        queue_id: int,
        refs: Sequence[MessageRef],
        *,
        now_ms: int | None = None,
        received_ms: Sequence[int] | None = None,
    ) -> list[DeleteOutcome]:
        """Delete each message whose current receive matches the ref; one outcome per ref.

        ``received_ms`` (one per ref: the instant of the receive its receipt names) and ``now_ms``
        tell how long consumers worked on the deleted messages, which a fair queue's detection of
        noisy tenants weighs (storage._fair); without them the deletes count no processing time.
        On a FIFO queue ``now_ms`` also keeps a receipt whose visibility timeout has run out from
        deleting: its outcome is STALE (AWS: "The receipt handle has expired.").
        """

    @abstractmethod
    async def change_visibility(
        self, queue_id: int, changes: Sequence[tuple[MessageRef, int]], now_ms: int
    ) -> list[VisibilityOutcome]:
        """Make each received message visible at the given instant; one outcome per change.

        The change applies while the ref's receive is current (the message was not received again),
        even when its visibility timeout has already run out, as on AWS; an outdated or never-received
        ref is NOT_IN_FLIGHT. Making a message visible wakes waiting receivers.
        """

    @abstractmethod
    async def expire_messages(self, now_ms: int, limit: int) -> int:
        """Delete up to ``limit`` messages whose retention ended; return how many."""

    @abstractmethod
    async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None:
        """Return when messages may have become available on the queue, or after ``timeout_s``.

        Sends and visibility changes on any node wake waiters. Spurious wake-ups are allowed.
        """

    @abstractmethod
    def end_waits(self) -> None:
        """Wake every `wait_for_messages` of this node, and make later ones return at once (the node is stopping).

        Called on the event loop when the server begins to stop, while the store still serves
        claims: parked long polls then answer (with what a last claim finds) instead of holding
        the shutdown for the rest of their wait time.
        """

    # ---- message move tasks (redrive from a dead-letter queue) ----

    @abstractmethod
    async def create_move_task(self, task: MoveTask) -> None:
        """Record a RUNNING task; raise ``UnsupportedOperation`` if the source has one running."""

    @abstractmethod
    async def get_move_task(self, task_handle: str) -> MoveTask | None:
        """The task of this handle, or None."""

    @abstractmethod
    async def list_move_tasks(self, source_arn: str, limit: int) -> list[MoveTask]:
        """Tasks of this source queue ARN, newest first."""

    @abstractmethod
    async def update_move_task(self, task: MoveTask) -> None:
        """Store the task's new status, counts, failure reason and lease."""

    @abstractmethod
    async def lease_move_task(self, owner: str, now_ms: int, lease_ms: int) -> MoveTask | None:
        """Take one RUNNING or CANCELLING task whose lease expired, so one node runs each task."""

    @abstractmethod
    async def move_messages(
        self, source_queue_id: int, destination_queue_id: int | None, limit: int, now_ms: int
    ) -> int:
        """Move up to ``limit`` messages out of a dead-letter queue; return how many moved.

        To ``destination_queue_id``, or with None to each message's ``dead_letter_source_arn`` queue.
        Moved messages keep id, body, meta and sent time; their receive count starts again at zero.
        """


class DocumentStore(ABC):
    """Versioned JSON documents by kind and key (see `loosely.core.documents`)."""

    @abstractmethod
    async def put_document(
        self,
        kind: str,
        key: str,
        body: str,
        now_ms: int,
        parent: str | None = None,
        if_absent: bool = False,
        expected_version: int | None = None,
    ) -> tuple[Document, bool]:
        """Write a document; return the stored one and whether this call wrote it.

        ``if_absent``: when one exists, write nothing and return (existing, False).
        ``expected_version``: write only if the stored version matches, else raise ``ConcurrentUpdate``.
        """

    @abstractmethod
    async def get_document(self, kind: str, key: str) -> Document | None:
        """The document, or None."""

    @abstractmethod
    async def list_documents(
        self, kind: str, parent: str | None = None, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[Document]:
        """Documents of a kind (of one parent if given), keys starting with ``prefix`` and greater than
        ``after``, sorted by key."""

    @abstractmethod
    async def delete_document(self, kind: str, key: str) -> bool:
        """Delete one document; return whether it existed."""

    @abstractmethod
    async def delete_children(self, kind: str, parent: str) -> int:
        """Delete every document of ``kind`` whose parent is ``parent``; return how many."""


class OutboxStore(ABC):
    """Publications and push deliveries (see `loosely.core.documents`)."""

    @abstractmethod
    async def add_publications(
        self,
        publications: Sequence[NewPublication],
        now_ms: int,
        dedup_window_ms: int,
        guard: DocumentGuard | None = None,
    ) -> list[PublishOutcome]:
        """Record publications durably, in order, waking outbox workers. Dedup as for FIFO sends.

        With a ``guard``, record nothing and raise ``ConcurrentUpdate`` unless its document is stored
        with exactly its body, checked in the same transaction.
        """

    @abstractmethod
    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        """Lease up to ``limit`` publications whose lease is free, oldest first. For one ordering key,
        no publication is handed out while an earlier one of that key is leased elsewhere."""

    async def release_publications(self, owner: str, publication_ids: Sequence[int]) -> None:
        """Hand back publications ``owner`` claimed and will not fan out (it is stopping), so they can
        be claimed again at once, here or on another node, instead of when their lease ends.

        Publications retired since, or leased to another owner, are left alone; outbox workers are
        woken. Backends should override this; the fallback leaves the publications to their lease.
        """
        return None

    @abstractmethod
    async def complete_publication(
        self,
        publication_id: int,
        queue_messages: Sequence[tuple[int, NewMessage]],
        deliveries: Sequence[NewDelivery],
        now_ms: int,
        dedup_window_ms: int,
    ) -> None:
        """In one transaction: send the SQS messages (queue id, message; FIFO dedup applies), record the
        push deliveries, and delete the publication.

        Raises:
            QueuesGone: some of the queues no longer exist; nothing was changed (the caller looks its
                queues up again and retries, so no message is silently lost).
        """

    async def complete_publications(self, results: Sequence[FanOutResult], now_ms: int, dedup_window_ms: int) -> None:
        """`complete_publication` for many publications, in the given order, in one transaction.

        The messages of every publication still in the outbox are sent (grouped by queue, each queue's
        messages in the order given, so a FIFO topic's publications keep their order in FIFO queues),
        their deliveries recorded and the publications deleted; publications already gone (completed
        elsewhere) are skipped. When a queue of a publication still in the outbox no longer exists,
        raises `QueuesGone`, leaving the publications it did not complete as they were (so a retry
        is safe). Backends should override this: the fallback runs one transaction per publication,
        which keeps each publication's guarantees but costs a commit each.
        """
        for result in results:
            await self.complete_publication(
                result.publication_id, result.queue_messages, result.deliveries, now_ms, dedup_window_ms
            )

    @abstractmethod
    async def claim_deliveries(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` pending deliveries that are due (next_attempt_ms <= now)."""

    @abstractmethod
    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        now_ms: int,
        error: str | None = None,
        dead_letter: tuple[int, NewMessage] | None = None,
    ) -> None:
        """End a delivery (delivered, failed, or dead-lettered into the given queue, atomically).

        Raises:
            QueuesGone: the dead-letter queue no longer exists (the caller's record of it is stale);
                nothing changed, so the caller may look the queue up again and retry.
        """

    async def finish_deliveries(self, delivery_ids: Sequence[int], state: DeliveryState, now_ms: int) -> None:
        """`finish_delivery` (without dead letters) for many deliveries ending in the same state, at once.

        Deliveries already gone are skipped. Backends should override this with one transaction; the
        fallback ends them one by one.
        """
        for delivery_id in delivery_ids:
            await self.finish_delivery(delivery_id, state, now_ms)

    @abstractmethod
    async def retry_delivery(self, delivery_id: int, next_attempt_ms: int, error: str | None) -> None:
        """Release the lease and schedule the next attempt (attempts + 1)."""

    async def release_delivery(self, delivery_id: int, next_attempt_ms: int) -> None:
        """Release the lease and make the delivery due at ``next_attempt_ms`` WITHOUT counting an attempt.

        The delivery worker hands back deliveries it claimed but did not try (their endpoint is at its
        concurrency or throttle limit, or the node is shutting down); ``attempts`` and ``last_error``
        stay as they are. Backends should override this; the fallback counts an attempt, which only
        makes retry policies end a little early.
        """
        await self.retry_delivery(delivery_id, next_attempt_ms, None)

    @abstractmethod
    async def wait_for_outbox(self, timeout_s: float) -> None:
        """Return when publications or deliveries may be due, or after ``timeout_s``."""


class ArchiveStore(ABC):
    """The message archive of FIFO topics with an ArchivePolicy (see `loosely.core.topics.archive`).

    Messages enter it with their publication (`NewPublication.archive_until_ms`, in `add_publications`'
    transaction). Reads walk one topic's archive in publish order from a cursor; removal of expired
    messages walks an expiry index, so neither costs the archive's size.
    """

    @abstractmethod
    async def read_archive(
        self, topic_arn: str, after_sequence: int | None, from_ms: int, limit: int
    ) -> list[ArchivedMessage]:
        """Up to ``limit`` archived messages of the topic in sequence order, after ``after_sequence``.

        Without a cursor the walk starts at the first message published at ``from_ms`` or later.
        """

    @abstractmethod
    async def purge_archive(self, now_ms: int, limit: int) -> int:
        """Remove up to ``limit`` messages archived until ``now_ms`` or earlier; return how many."""
