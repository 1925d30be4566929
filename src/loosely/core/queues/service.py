"""QueueService: every SQS action as a use case over a `QueueStore`.

Public methods mirror the SQS actions in snake_case. Each validates its input against AWS's
limits, applies FIFO, visibility and dead-letter rules, and calls one atomic storage operation
where it can. It raises `loosely.core.errors` errors only; protocol adapters translate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loosely.core.clock import Clock
from loosely.core.ids import IdGenerator
from loosely.core.ports import QueueStore
from loosely.core.queues.models import (
    BatchResult,
    MoveTaskView,
    QueueKey,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SendRequest,
    SentMessage,
)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Deployment choices that AWS fixes but users may want to change."""

    recreate_delay_ms: int = 0  # AWS: 60_000 (QueueDeletedRecently)
    purge_interval_ms: int = 60_000
    dedup_window_ms: int = 300_000


class QueueService:
    def __init__(self, storage: QueueStore, clock: Clock, ids: IdGenerator, settings: QueueSettings) -> None:
        self.storage = storage
        self.clock = clock
        self.ids = ids
        self.settings = settings

    # ---- queues ----

    async def create_queue(
        self, key: QueueKey, attributes: Mapping[str, str], tags: Mapping[str, str]
    ) -> QueueRecord:
        raise NotImplementedError

    async def get_queue(self, key: QueueKey) -> QueueRecord:
        """The queue, or raise QueueDoesNotExist (GetQueueUrl and every queue-addressed action)."""
        raise NotImplementedError

    async def delete_queue(self, key: QueueKey) -> None:
        raise NotImplementedError

    async def list_queues(
        self, account_id: str, region: str, prefix: str | None, max_results: int | None, next_token: str | None
    ) -> tuple[list[QueueRecord], str | None]:
        raise NotImplementedError

    async def get_queue_attributes(self, key: QueueKey, names: Sequence[str]) -> dict[str, str]:
        raise NotImplementedError

    async def set_queue_attributes(self, key: QueueKey, attributes: Mapping[str, str]) -> None:
        raise NotImplementedError

    async def purge_queue(self, key: QueueKey) -> None:
        raise NotImplementedError

    async def tag_queue(self, key: QueueKey, tags: Mapping[str, str]) -> None:
        raise NotImplementedError

    async def untag_queue(self, key: QueueKey, tag_keys: Sequence[str]) -> None:
        raise NotImplementedError

    async def list_queue_tags(self, key: QueueKey) -> dict[str, str]:
        raise NotImplementedError

    async def add_permission(
        self, key: QueueKey, label: str, account_ids: Sequence[str], actions: Sequence[str]
    ) -> None:
        raise NotImplementedError

    async def remove_permission(self, key: QueueKey, label: str) -> None:
        raise NotImplementedError

    async def list_dead_letter_source_queues(
        self, key: QueueKey, max_results: int | None, next_token: str | None
    ) -> tuple[list[QueueRecord], str | None]:
        raise NotImplementedError

    # ---- messages ----

    async def send_message(self, key: QueueKey, request: SendRequest, sender_id: str) -> SentMessage:
        raise NotImplementedError

    async def send_message_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, SendRequest]], sender_id: str
    ) -> BatchResult[SentMessage]:
        raise NotImplementedError

    async def receive_message(self, key: QueueKey, request: ReceiveRequest) -> list[ReceivedMessage]:
        raise NotImplementedError

    async def delete_message(self, key: QueueKey, receipt_handle: str) -> None:
        raise NotImplementedError

    async def delete_message_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, str]]
    ) -> BatchResult[None]:
        raise NotImplementedError

    async def change_message_visibility(self, key: QueueKey, receipt_handle: str, visibility_timeout_s: int) -> None:
        raise NotImplementedError

    async def change_message_visibility_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, str, int]]
    ) -> BatchResult[None]:
        raise NotImplementedError

    # ---- message move tasks ----

    async def start_message_move_task(
        self, account_id: str, source_arn: str, destination_arn: str | None, max_per_second: int | None
    ) -> str:
        raise NotImplementedError

    async def cancel_message_move_task(self, account_id: str, task_handle: str) -> int:
        raise NotImplementedError

    async def list_message_move_tasks(
        self, account_id: str, source_arn: str, max_results: int | None
    ) -> list[MoveTaskView]:
        raise NotImplementedError

    async def run_move_tasks_once(self, owner: str) -> bool:
        """Advance one leased move task by one step; return whether any work was done."""
        raise NotImplementedError

    async def expire_messages_once(self) -> int:
        """Delete messages whose retention ended; called periodically by the server."""
        raise NotImplementedError
