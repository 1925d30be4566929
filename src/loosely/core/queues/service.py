"""QueueService: every SQS action as a use case over a `QueueStore`.

Public methods mirror the SQS actions in snake_case. Each validates its input against AWS's
limits, applies FIFO, visibility and dead-letter rules, and calls one atomic storage operation
where it can. It raises `loosely.core.errors` errors only; protocol adapters translate them.

Queue administration lives here; the message actions are in `messaging` and move tasks in
`movetasks`, sharing one `ServiceContext`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loosely.core.clock import Clock
from loosely.core.errors import (
    InvalidAttributeName,
    InvalidParameterValue,
    MissingParameter,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueNameExists,
)
from loosely.core.ids import IdGenerator
from loosely.core.ports import QueueStore
from loosely.core.queues import attributes as attrs
from loosely.core.queues import limits, permissions, tokens, validation
from loosely.core.queues.context import QueueSettings, ServiceContext
from loosely.core.queues.messaging import Messaging
from loosely.core.queues.models import (
    BatchResult,
    MoveTaskView,
    NewMessage,
    QueueKey,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SendRequest,
    SentMessage,
)
from loosely.core.queues.movetasks import MoveTasks

__all__ = ["QueueService", "QueueSettings"]

_COUNTED = frozenset(
    ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
)
_EXPIRE_BATCH = 1_000
_EXPIRE_ROUNDS = 10


class QueueService:
    def __init__(self, storage: QueueStore, clock: Clock, ids: IdGenerator, settings: QueueSettings) -> None:
        self.storage = storage
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self._ctx = ServiceContext(storage=storage, clock=clock, ids=ids, settings=settings)
        self._messages = Messaging(self._ctx)
        self._moves = MoveTasks(self._ctx)

    def stop_waiting(self) -> None:
        """The node is stopping: long polls stop waiting, now and from now on.

        Each parked receive claims once more and answers with what it finds (usually nothing, an
        answer SQS also gives when a wait ends), so a shutdown does not wait up to 20 s for the
        last long poll while its client could already be reconnecting to another node.
        """
        self._messages.stop_waiting()

    async def settled(self) -> None:
        """Wait for the work requests left running behind their answers (in-flight counts)."""
        await self._messages.in_flight.settled()

    # ---- queues ----

    async def create_queue(self, key: QueueKey, attributes: Mapping[str, str], tags: Mapping[str, str]) -> QueueRecord:
        """Create the queue, or return the existing one when every attribute given matches it."""
        fifo = attrs.requests_fifo(attributes)
        attrs.validate_queue_name(key.name, fifo)
        requested = attrs.canonicalize(attributes, fifo, creating=True)
        validation.check_tags(tags, key.name, len(tags))
        existing = await self.storage.get_queue(key)
        if existing is not None:
            return _same_queue(existing, requested, fifo)
        full = attrs.merge(attrs.defaults(fifo), requested)
        await self._check_redrive_target(key, full)
        now = self.clock.now_ms()
        delay_ms = self.settings.recreate_delay_ms
        try:
            record, created = await self.storage.create_queue(
                key, full, dict(tags), _retention_ms(full), now, now - delay_ms if delay_ms > 0 else None
            )
        except QueueDeletedRecently:
            raise QueueDeletedRecently(
                f"You must wait {delay_ms // 1000} seconds after deleting a queue before you can create another "
                "with the same name."
            ) from None
        return record if created else _same_queue(record, requested, fifo)

    async def get_queue(self, key: QueueKey) -> QueueRecord:
        """The queue, or raise QueueDoesNotExist (GetQueueUrl and every queue-addressed action)."""
        return await self._ctx.require(key, fresh=True)

    async def delete_queue(self, key: QueueKey) -> None:
        queue = await self._ctx.require(key, fresh=True)
        await self.storage.delete_queue(queue.id, self.clock.now_ms())
        self._messages.in_flight.forget(queue.id)

    async def list_queues(
        self, account_id: str, region: str, prefix: str | None, max_results: int | None, next_token: str | None
    ) -> tuple[list[QueueRecord], str | None]:
        _check_max_results(max_results)
        queues = await self.storage.list_queues(account_id, region, prefix or "")
        return _page(queues, max_results, next_token)

    async def get_queue_attributes(self, key: QueueKey, names: Sequence[str]) -> dict[str, str]:
        """The named attributes (``All`` for every one); computed ones are read at call time."""
        queue = await self._ctx.require(key, fresh=True)
        for name in names:
            if name != attrs.ALL and name not in attrs.NAMES:
                raise InvalidAttributeName(f"Unknown Attribute {name}.")
        wanted = attrs.NAMES if attrs.ALL in names else frozenset(names)
        if not wanted:
            return {}
        values = dict(queue.attributes)
        values["QueueArn"] = queue.key.arn
        values["CreatedTimestamp"] = str(queue.created_ms // 1000)
        values["LastModifiedTimestamp"] = str(queue.modified_ms // 1000)
        if wanted & _COUNTED:
            counts = await self.storage.count_messages(queue.id, self.clock.now_ms())
            values["ApproximateNumberOfMessages"] = str(counts.visible)
            values["ApproximateNumberOfMessagesNotVisible"] = str(counts.in_flight)
            values["ApproximateNumberOfMessagesDelayed"] = str(counts.delayed)
        return {name: value for name, value in values.items() if name in wanted}

    async def set_queue_attributes(self, key: QueueKey, attributes: Mapping[str, str]) -> None:
        queue = await self._ctx.require(key, fresh=True)
        changes = attrs.canonicalize(attributes, queue.key.fifo, creating=False)
        changes.pop("FifoQueue", None)  # only "true" on a FIFO queue gets here: a no-op
        if not changes:
            return
        merged = attrs.merge(queue.attributes, changes)
        if changes.get("RedrivePolicy"):
            await self._check_redrive_target(queue.key, merged)
        retention = _retention_ms(merged) if "MessageRetentionPeriod" in changes else None
        await self.storage.update_queue(queue.id, self.clock.now_ms(), attributes=merged, retention_ms=retention)

    async def purge_queue(self, key: QueueKey) -> None:
        queue = await self._ctx.require(key, fresh=True)
        interval_ms = self.settings.purge_interval_ms
        try:
            await self.storage.purge_queue(queue.id, self.clock.now_ms(), interval_ms)
        except PurgeQueueInProgress:
            raise PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {key.name} is allowed every {interval_ms // 1000} seconds."
            ) from None

    async def tag_queue(self, key: QueueKey, tags: Mapping[str, str]) -> None:
        queue = await self._ctx.require(key, fresh=True)
        if not tags:
            # An empty map is no parameter at all on the Query wire, and AWS's JSON answer is the same.
            raise MissingParameter("The request must contain the parameter Tags.")
        merged = {**queue.tags, **tags}
        validation.check_tags(tags, key.name, len(merged))
        await self.storage.update_queue(queue.id, self.clock.now_ms(), tags=merged)

    async def untag_queue(self, key: QueueKey, tag_keys: Sequence[str]) -> None:
        queue = await self._ctx.require(key, fresh=True)
        remaining = {name: value for name, value in queue.tags.items() if name not in set(tag_keys)}
        if len(remaining) != len(queue.tags):
            await self.storage.update_queue(queue.id, self.clock.now_ms(), tags=remaining)

    async def list_queue_tags(self, key: QueueKey) -> dict[str, str]:
        queue = await self._ctx.require(key, fresh=True)
        return dict(queue.tags)

    async def add_permission(
        self, key: QueueKey, label: str, account_ids: Sequence[str], actions: Sequence[str]
    ) -> None:
        queue = await self._ctx.require(key, fresh=True)
        policy = permissions.add_statement(queue.attributes.get("Policy"), key.arn, label, account_ids, actions)
        await self._store_policy(queue, policy)

    async def remove_permission(self, key: QueueKey, label: str) -> None:
        queue = await self._ctx.require(key, fresh=True)
        await self._store_policy(queue, permissions.remove_statement(queue.attributes.get("Policy"), key.arn, label))

    async def list_dead_letter_source_queues(
        self, key: QueueKey, max_results: int | None, next_token: str | None
    ) -> tuple[list[QueueRecord], str | None]:
        queue = await self._ctx.require(key, fresh=True)
        _check_max_results(max_results)
        candidates = await self.storage.list_queues(key.account_id, key.region)
        sources = [q for q in candidates if _targets(q, queue.key.arn)]
        return _page(sources, max_results, next_token)

    async def _store_policy(self, queue: QueueRecord, policy: str | None) -> None:
        attributes = dict(queue.attributes)
        if policy is None:
            attributes.pop("Policy", None)
        else:
            attributes["Policy"] = policy
        await self.storage.update_queue(queue.id, self.clock.now_ms(), attributes=attributes)

    async def _check_redrive_target(self, key: QueueKey, attributes: Mapping[str, str]) -> None:
        """A RedrivePolicy must name an existing queue of the same kind, account and region that allows it."""
        policy = attrs.stored_redrive_policy(attributes)
        if policy is None:
            return
        text = attributes["RedrivePolicy"]
        target_key = QueueKey.from_arn(policy.dead_letter_target_arn)
        same_place = target_key is not None and (target_key.account_id, target_key.region) == (
            key.account_id,
            key.region,
        )
        target = await self.storage.get_queue(target_key) if target_key is not None and same_place else None
        if target is None:
            raise _redrive_error(text, "Dead letter target does not exist.")
        if target.key.fifo != key.fifo:
            raise _redrive_error(text, "Dead-letter queue must be same type of queue as the source.")
        if not attrs.stored_redrive_allow_policy(target.attributes).allows(key.arn):
            raise _redrive_error(text, f"Queue {target.key.arn} does not allow this queue to move messages to it.")

    # ---- messages ----

    async def send_message(self, key: QueueKey, request: SendRequest, sender_id: str) -> SentMessage:
        return await self._messages.send_message(key, request, sender_id)

    async def send_message_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, SendRequest]], sender_id: str
    ) -> BatchResult[SentMessage]:
        return await self._messages.send_message_batch(key, entries, sender_id)

    def build_message(self, queue: QueueRecord, request: SendRequest, sender_id: str) -> NewMessage:
        """Validate one message for ``queue`` and build the record SendMessage would store, without storing it.

        SNS fan-out stores the messages of a publication in the same transaction that completes the
        publication, so it needs exactly what SendMessage writes: body and attribute digests, meta,
        FIFO deduplication key.

        Raises:
            LooselyError: whatever SendMessage raises for this message on this queue.
        """
        return self._messages._prepare(queue, request, sender_id, self.clock.now_ms()).message

    async def receive_message(self, key: QueueKey, request: ReceiveRequest) -> list[ReceivedMessage]:
        return await self._messages.receive_message(key, request)

    async def delete_message(self, key: QueueKey, receipt_handle: str) -> None:
        await self._messages.delete_message(key, receipt_handle)

    async def delete_message_batch(self, key: QueueKey, entries: Sequence[tuple[str, str]]) -> BatchResult[None]:
        return await self._messages.delete_message_batch(key, entries)

    async def change_message_visibility(self, key: QueueKey, receipt_handle: str, visibility_timeout_s: int) -> None:
        await self._messages.change_message_visibility(key, receipt_handle, visibility_timeout_s)

    async def change_message_visibility_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, str, int]]
    ) -> BatchResult[None]:
        return await self._messages.change_message_visibility_batch(key, entries)

    # ---- message move tasks ----

    async def start_message_move_task(
        self, account_id: str, source_arn: str, destination_arn: str | None, max_per_second: int | None
    ) -> str:
        return await self._moves.start(account_id, source_arn, destination_arn, max_per_second)

    async def cancel_message_move_task(self, account_id: str, task_handle: str) -> int:
        return await self._moves.cancel(account_id, task_handle)

    async def list_message_move_tasks(
        self, account_id: str, source_arn: str, max_results: int | None
    ) -> list[MoveTaskView]:
        return await self._moves.list(account_id, source_arn, max_results)

    async def run_move_tasks_once(self, owner: str) -> bool:
        """Advance one leased move task by one step; return whether any work was done."""
        return await self._moves.run_once(owner)

    async def expire_messages_once(self) -> int:
        """Delete messages whose retention ended; called periodically by the server."""
        total = 0
        for _ in range(_EXPIRE_ROUNDS):
            deleted = await self.storage.expire_messages(self.clock.now_ms(), _EXPIRE_BATCH)
            total += deleted
            if deleted < _EXPIRE_BATCH:
                break
        return total


# ---- pure helpers ----


def _same_queue(existing: QueueRecord, requested: Mapping[str, str], fifo: bool) -> QueueRecord:
    different = attrs.first_difference(existing.attributes, requested, fifo)
    if different is not None:
        raise QueueNameExists(
            f"A queue already exists with the same name and a different value for attribute {different}"
        )
    return existing


def _retention_ms(attributes: Mapping[str, str]) -> int:
    return int(attributes["MessageRetentionPeriod"]) * 1000


def _targets(queue: QueueRecord, dead_letter_arn: str) -> bool:
    policy = attrs.stored_redrive_policy(queue.attributes)
    return policy is not None and policy.dead_letter_target_arn == dead_letter_arn


def _redrive_error(text: str, reason: str) -> InvalidParameterValue:
    return validation.invalid_value(text, "RedrivePolicy", reason)


def _check_max_results(max_results: int | None) -> None:
    if max_results is not None and not 1 <= max_results <= limits.LIST_QUEUES_MAX:
        raise validation.invalid_value(
            max_results, "MaxResults", f"MaxResults must be an integer between 1 and {limits.LIST_QUEUES_MAX}."
        )


def _page(
    queues: list[QueueRecord], max_results: int | None, next_token: str | None
) -> tuple[list[QueueRecord], str | None]:
    """One page of name-ordered queues; a NextToken only when MaxResults was given and more remain (as AWS)."""
    if next_token:
        after = tokens.decode_next_token(next_token)
        queues = [queue for queue in queues if queue.key.name > after]
    limit = max_results if max_results is not None else limits.LIST_QUEUES_MAX
    page = queues[:limit]
    more = max_results is not None and len(queues) > limit
    return page, tokens.encode_next_token(page[-1].key.name) if more else None
