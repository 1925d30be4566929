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
    async def get_queue(self, key: QueueKey) -> QueueRecord | None:
        """The queue of this key, or None."""

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
    async def delete_messages(self, queue_id: int, refs: Sequence[MessageRef]) -> list[DeleteOutcome]:
        """Delete each message whose current receive matches the ref; one outcome per ref."""

    @abstractmethod
    async def change_visibility(
        self, queue_id: int, changes: Sequence[tuple[MessageRef, int]], now_ms: int
    ) -> list[VisibilityOutcome]:
        """Make each in-flight message visible at the given instant; one outcome per change.

        A message is in flight when its ref's receive is current and it is invisible at ``now_ms``.
        Making a message visible wakes waiting receivers.
        """

    @abstractmethod
    async def expire_messages(self, now_ms: int, limit: int) -> int:
        """Delete up to ``limit`` messages whose retention ended; return how many."""

    @abstractmethod
    async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None:
        """Return when messages may have become available on the queue, or after ``timeout_s``.

        Sends and visibility changes on any node wake waiters. Spurious wake-ups are allowed.
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
