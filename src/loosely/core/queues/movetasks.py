"""Message move tasks: redriving a dead-letter queue's messages back, at a bounded rate.

A task is a row in storage. Any node's worker leases one task at a time (``lease_move_task``),
moves at most one second's worth of messages, and stores the task again with its lease extended
by one second, so the lease itself is the rate limiter and a crashed worker's task is picked up
by another node once the lease runs out.
"""

from __future__ import annotations

import dataclasses

from loosely.core.errors import InvalidParameterValue, ResourceNotFound, UnsupportedOperation
from loosely.core.queues import attributes as attrs
from loosely.core.queues import limits, tokens, validation
from loosely.core.queues.context import ServiceContext
from loosely.core.queues.models import MoveTask, MoveTaskStatus, MoveTaskView, QueueKey, QueueRecord

# Moves per step when the task names no rate (AWS "optimizes" it; one step per second).
DEFAULT_MOVE_RATE = 100
STEP_INTERVAL_MS = 1_000
LEASE_MS = 30_000
NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"


class MoveTasks:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def start(
        self, account_id: str, source_arn: str, destination_arn: str | None, max_per_second: int | None
    ) -> str:
        source = await self._queue_of(account_id, source_arn, "SourceArn")
        if max_per_second is not None and not 1 <= max_per_second <= limits.MOVE_RATE_MAX:
            raise validation.invalid_value(
                max_per_second, "MaxNumberOfMessagesPerSecond", f"Must be between 1 and {limits.MOVE_RATE_MAX}."
            )
        if not await self._is_dead_letter_queue(source):
            raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn is not None:
            await self._queue_of(account_id, destination_arn, "DestinationArn")
        now = self.ctx.now_ms()
        counts = await self.ctx.storage.count_messages(source.id, now)
        task = MoveTask(
            task_handle=tokens.encode_task_handle(self.ctx.ids.uuid(), source_arn),
            source_queue_id=source.id,
            source_arn=source_arn,
            destination_arn=destination_arn,
            max_per_second=max_per_second,
            status=MoveTaskStatus.RUNNING,
            approximate_to_move=counts.visible,
            moved=0,
            started_ms=now,
        )
        try:
            await self.ctx.storage.create_move_task(task)
        except UnsupportedOperation:
            raise InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given "
                "time."
            ) from None
        return task.task_handle

    async def cancel(self, account_id: str, task_handle: str) -> int:
        _, source_arn = tokens.decode_task_handle(task_handle)
        await self._queue_of(account_id, source_arn, "SourceArn")
        task = await self.ctx.storage.get_move_task(task_handle)
        if task is None:
            raise ResourceNotFound("Task does not exist.")
        if task.status is not MoveTaskStatus.RUNNING:
            raise InvalidParameterValue("Only active tasks can be cancelled.")
        # Leave the lease alone: the worker holding it (if any) finishes its step, then sees CANCELLING.
        await self.ctx.storage.update_move_task(dataclasses.replace(task, status=MoveTaskStatus.CANCELLING))
        return task.moved

    async def list(self, account_id: str, source_arn: str, max_results: int | None) -> list[MoveTaskView]:
        limit = 1 if max_results is None else max_results
        if not 1 <= limit <= limits.MOVE_TASKS_LIST_MAX:
            raise validation.invalid_value(
                limit, "MaxResults", f"You must enter a number that's between 1 and {limits.MOVE_TASKS_LIST_MAX}."
            )
        await self._queue_of(account_id, source_arn, "SourceArn")
        tasks = await self.ctx.storage.list_move_tasks(source_arn, limit)
        return [_view(task) for task in tasks[:limit]]

    async def run_once(self, owner: str) -> bool:
        """Lease one due task and advance it by one step; False when no task was due."""
        now = self.ctx.now_ms()
        task = await self.ctx.storage.lease_move_task(owner, now, LEASE_MS)
        if task is None:
            return False
        if task.status is MoveTaskStatus.CANCELLING:
            await self._finish(task, MoveTaskStatus.CANCELLED)
            return True
        queues = await self._resolve(task)
        if queues is None:
            await self._finish(task, MoveTaskStatus.FAILED, failure_reason=NON_EXISTENT_QUEUE)
            return True
        source, destination_id = queues
        rate = task.max_per_second or DEFAULT_MOVE_RATE
        moved = await self.ctx.storage.move_messages(source.id, destination_id, rate, now)
        task = dataclasses.replace(task, moved=task.moved + moved)
        if moved < rate:
            await self._finish(task, MoveTaskStatus.COMPLETED)
        else:
            await self.ctx.storage.update_move_task(
                dataclasses.replace(task, lease_owner=owner, lease_until_ms=now + STEP_INTERVAL_MS)
            )
        return True

    async def _finish(self, task: MoveTask, status: MoveTaskStatus, failure_reason: str | None = None) -> None:
        await self.ctx.storage.update_move_task(
            dataclasses.replace(task, status=status, failure_reason=failure_reason, lease_owner=None, lease_until_ms=0)
        )

    async def _resolve(self, task: MoveTask) -> tuple[QueueRecord, int | None] | None:
        """The task's source queue and destination id (None = each message's source), or None if one is gone."""
        source = await self.ctx.storage.get_queue_by_id(task.source_queue_id)
        if source is None or source.key.arn != task.source_arn:
            return None
        if task.destination_arn is None:
            return source, None
        destination = await self._queue_by_arn(task.destination_arn)
        return (source, destination.id) if destination is not None else None

    async def _queue_of(self, account_id: str, arn: str, parameter: str) -> QueueRecord:
        """The queue an ARN parameter names in the caller's account, or AWS's error for that parameter."""
        key = QueueKey.from_arn(arn)
        if key is None:
            raise InvalidParameterValue(
                f"You must use this format to specify the {parameter}: "
                "arn:<partition>:<service>:<region>:<account-id>:<resource-id>"
            )
        record = await self.ctx.storage.get_queue(key) if key.account_id == account_id else None
        if record is None:
            raise ResourceNotFound(f"The resource that you specified for the {parameter} parameter doesn't exist.")
        return record

    async def _queue_by_arn(self, arn: str) -> QueueRecord | None:
        key = QueueKey.from_arn(arn)
        return await self.ctx.storage.get_queue(key) if key else None

    async def _is_dead_letter_queue(self, queue: QueueRecord) -> bool:
        """Whether some queue of the account and region names this one in its RedrivePolicy."""
        candidates = await self.ctx.storage.list_queues(queue.key.account_id, queue.key.region)
        for candidate in candidates:
            policy = attrs.stored_redrive_policy(candidate.attributes)
            if policy is not None and policy.dead_letter_target_arn == queue.key.arn:
                return True
        return False


def _view(task: MoveTask) -> MoveTaskView:
    return MoveTaskView(
        task_handle=task.task_handle if task.status is MoveTaskStatus.RUNNING else None,
        status=task.status.value,
        source_arn=task.source_arn,
        destination_arn=task.destination_arn,
        max_per_second=task.max_per_second,
        approximate_to_move=task.approximate_to_move,
        moved=task.moved,
        started_ms=task.started_ms,
        failure_reason=task.failure_reason,
    )
