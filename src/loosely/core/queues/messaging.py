"""Send, receive, delete and change visibility: the message half of the queue service.

Every action validates its whole input first (pure checks), then makes one atomic storage call
for the whole request, batch or not, so a rejected request changes nothing and a batch costs one
round trip. Receipt handles are checked against the queue before storage sees them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from loosely.core.errors import (
    BatchRequestTooLong,
    InvalidParameterValue,
    LooselyError,
    MessageNotInflight,
    MissingParameter,
    OverLimit,
)
from loosely.core.queues import attributes as attrs
from loosely.core.queues import limits, receipts, validation
from loosely.core.queues.context import ServiceContext
from loosely.core.queues.digests import md5_of_attributes, md5_of_body_bytes
from loosely.core.queues.inflight import RECOUNT_INTERVAL_MS, InFlightGauge
from loosely.core.queues.meta import (
    decode_meta,
    encode_meta_fields,
    filters_attributes,
    select_message_attributes,
    sequence_number,
    stored_md5_of_body,
    system_attributes,
)
from loosely.core.queues.models import (
    BatchFailure,
    BatchResult,
    ClaimRequest,
    DeadLetterTarget,
    DeleteOutcome,
    MessageAttributeValue,
    MessageRef,
    NewMessage,
    QueueKey,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SendOutcome,
    SendRequest,
    SentMessage,
    StoredMessage,
    VisibilityOutcome,
)

# A long poll never sleeps less than this between claims, so a message that is due but not
# claimable (its FIFO group is busy) cannot turn the wait into a busy loop.
MIN_POLL_INTERVAL_MS = 20

# AWS's words for a receive past the in-flight limit, as its Query API answered a real client (quoted in
# the issue thread Cbsoftware/pressureNET-server#74: a 403 OverLimit); AWS's documentation gives no text.
OVER_LIMIT_MESSAGE = (
    "Too many messages have been received without being deleted. "
    "Please delete your received messages or let them timeout before receiving more."
)


class _Prepared:
    """A validated message ready for storage, and the digests its SendMessage answer carries."""

    __slots__ = ("md5_of_body", "md5_of_message_attributes", "md5_of_system_attributes", "message")

    def __init__(
        self, message: NewMessage, md5_of_body: str, md5_of_message_attributes: str | None, md5_of_system: str | None
    ) -> None:
        self.message = message
        self.md5_of_body = md5_of_body
        self.md5_of_message_attributes = md5_of_message_attributes
        self.md5_of_system_attributes = md5_of_system


class Messaging:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.in_flight = InFlightGauge(ctx.storage, ctx.settings.in_flight_max)
        self.stopping = False

    def stop_waiting(self) -> None:
        """End every long poll's wait: each answers with what one more claim finds (see `QueueService.stop_waiting`)."""
        self.stopping = True
        self.ctx.storage.end_waits()

    # ---- send ----

    async def send_message(self, key: QueueKey, request: SendRequest, sender_id: str) -> SentMessage:
        queue = await self.ctx.require(key)
        now = self.ctx.now_ms()
        prepared = self._prepare(queue, request, sender_id, now)
        outcomes = await self._store(queue, [prepared.message], now)
        return _sent(prepared, outcomes[0], queue.key.fifo)

    async def send_message_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, SendRequest]], sender_id: str
    ) -> BatchResult[SentMessage]:
        queue = await self.ctx.require(key)
        validation.check_batch_ids([entry_id for entry_id, _ in entries], "SendMessageBatch")
        _check_batch_size([request for _, request in entries])
        if queue.key.fifo:
            for _, request in entries:
                _check_fifo_batch_entry(queue, request)
        now = self.ctx.now_ms()
        accepted: list[tuple[str, _Prepared]] = []
        failed: list[BatchFailure] = []
        for entry_id, request in entries:
            try:
                accepted.append((entry_id, self._prepare(queue, request, sender_id, now)))
            except LooselyError as error:
                failed.append(BatchFailure(id=entry_id, error=error))
        outcomes = await self._store(queue, [prepared.message for _, prepared in accepted], now) if accepted else []
        fifo = queue.key.fifo
        successful = [
            (entry_id, _sent(prepared, outcome, fifo))
            for (entry_id, prepared), outcome in zip(accepted, outcomes, strict=True)
        ]
        return BatchResult(successful=successful, failed=failed)

    async def _store(self, queue: QueueRecord, messages: list[NewMessage], now: int) -> list[SendOutcome]:
        return await self.ctx.storage.send_messages(queue.id, messages, now, self.ctx.settings.dedup_window_ms)

    def _prepare(self, queue: QueueRecord, request: SendRequest, sender_id: str, now: int) -> _Prepared:
        """Validate one message against the queue's rules and turn it into what storage keeps.

        The checks run in AWS's order (body, size, attributes, delay, FIFO ids); the attribute checks,
        the attribute digests and the generic meta encoding are skipped for a message without
        attributes, which is most of them, since they have nothing to say about one.
        """
        body = request.body
        validation.check_body(body)
        body_bytes = body.encode("utf-8")  # check_body admits no lone surrogates
        message_attributes = request.message_attributes
        system_attributes = request.system_attributes
        size = len(body_bytes)
        if message_attributes:
            size += validation.message_size("", message_attributes)
        validation.check_size(size, int(queue.attributes["MaximumMessageSize"]))
        if message_attributes:
            validation.check_message_attributes(message_attributes)
        if system_attributes:
            validation.check_system_attributes(system_attributes)
        fifo = queue.key.fifo
        delay_s = request.delay_s
        if delay_s is not None:
            validation.check_delay(delay_s, fifo)
        else:
            delay_s = int(queue.attributes["DelaySeconds"])
        if request.group_id is not None:
            validation.check_fifo_id(request.group_id, "MessageGroupId")
        if request.deduplication_id is not None:
            validation.check_fifo_id(request.deduplication_id, "MessageDeduplicationId")
        dedup_id, dedup_key = _deduplication(queue, request) if fifo else _no_deduplication(request)
        md5_body = md5_of_body_bytes(body_bytes)
        md5_attrs = md5_of_attributes(message_attributes) if message_attributes else None
        md5_sys = md5_of_attributes(system_attributes) if system_attributes else None
        meta = encode_meta_fields(
            md5_body, sender_id, message_attributes, system_attributes, md5_attrs, md5_sys, dedup_id
        )
        message = NewMessage(self.ctx.ids.uuid(), body, meta, now, now + delay_s * 1000, request.group_id, dedup_key)
        return _Prepared(message, md5_body, md5_attrs, md5_sys)

    # ---- receive ----

    async def receive_message(self, key: QueueKey, request: ReceiveRequest) -> list[ReceivedMessage]:
        queue = await self.ctx.require(key)
        validation.check_max_messages(request.max_messages)
        if request.wait_time_s is not None:
            validation.check_wait_time(request.wait_time_s)
        if request.visibility_timeout_s is not None:
            validation.check_visibility_timeout(request.visibility_timeout_s)
        if queue.key.fifo:
            validation.check_fifo_id(request.attempt_id, "ReceiveRequestAttemptId")
        dead_letter = await self._dead_letter_target(queue)
        messages, received_ms = await self._claim_with_wait(queue, request, dead_letter)
        if not request.attribute_names and not request.message_attribute_names:
            return [_received_plain(queue.id, message, received_ms) for message in messages]
        return [self._received(queue, message, request, received_ms) for message in messages]

    async def _claim_with_wait(
        self, queue: QueueRecord, request: ReceiveRequest, dead_letter: DeadLetterTarget | None
    ) -> tuple[list[StoredMessage], int]:
        """Claim; while nothing comes and the wait lasts, sleep until woken or the next message is due."""
        wait_s = _or_attribute(request.wait_time_s, queue, "ReceiveMessageWaitTimeSeconds")
        visibility_ms = _or_attribute(request.visibility_timeout_s, queue, "VisibilityTimeout") * 1000
        deadline = self.ctx.now_ms() + wait_s * 1000
        while True:
            now = self.ctx.now_ms()
            room = self.in_flight.known_room(queue.id, now)
            if room is None:
                room = await self.in_flight.room(queue.id, now)
            if room == 0:
                # At the in-flight limit. As on AWS: a short poll of a standard queue fails, a long
                # poll (or any FIFO receive) gets nothing; look again when the estimate is recounted.
                if wait_s == 0 and not queue.key.fifo:
                    raise OverLimit(OVER_LIMIT_MESSAGE)
                if now >= deadline or self.stopping:
                    return [], now
                await self.ctx.storage.wait_for_messages(queue.id, min(deadline - now, RECOUNT_INTERVAL_MS) / 1000)
                continue
            claim = ClaimRequest(
                max_messages=min(request.max_messages, room),
                now_ms=now,
                visible_until_ms=now + visibility_ms,
                fifo=queue.key.fifo,
                dead_letter=dead_letter,
                attempt_id=request.attempt_id if queue.key.fifo else None,
                attempt_window_ms=self.ctx.settings.dedup_window_ms,
            )
            result = await self.ctx.storage.claim_messages(queue.id, claim)
            self.in_flight.handed_out(queue.id, len(result.messages))
            if result.messages or now >= deadline or self.stopping:
                return result.messages, now
            timeout_ms = deadline - now
            if result.next_visible_at_ms is not None:
                timeout_ms = min(timeout_ms, max(result.next_visible_at_ms - now, MIN_POLL_INTERVAL_MS))
            await self.ctx.storage.wait_for_messages(queue.id, timeout_ms / 1000)

    async def _dead_letter_target(self, queue: QueueRecord) -> DeadLetterTarget | None:
        """Where over-received messages go; None without a policy or when the dead-letter queue is gone."""
        policy = attrs.stored_redrive_policy(queue.attributes)
        target_key = QueueKey.from_arn(policy.dead_letter_target_arn) if policy else None
        if policy is None or target_key is None:
            return None
        target = await self.ctx.storage.get_queue(target_key)
        if target is None:
            return None
        return DeadLetterTarget(
            queue_id=target.id, max_receive_count=policy.max_receive_count, source_arn=queue.key.arn
        )

    def _received(
        self, queue: QueueRecord, message: StoredMessage, request: ReceiveRequest, received_ms: int
    ) -> ReceivedMessage:
        meta = decode_meta(message.meta, message.body)
        selected = select_message_attributes(meta.message_attributes, request.message_attribute_names)
        return ReceivedMessage(
            message_id=message.message_id,
            receipt_handle=receipts.encode_parts(queue.id, message.row_id, message.receive_count, received_ms),
            body=message.body,
            md5_of_body=meta.md5_of_body,
            attributes=system_attributes(message, meta, request.attribute_names, queue.key.fifo),
            message_attributes=_shown_attributes(meta.message_attributes, selected, request.message_attribute_names),
            md5_of_message_attributes=md5_of_attributes(selected),
        )

    # ---- delete ----

    async def delete_message(self, key: QueueKey, receipt_handle: str) -> None:
        queue = await self.ctx.require(key)
        receipt = receipts.decode(receipt_handle, queue.id)
        outcomes = await self.ctx.storage.delete_messages(
            queue.id, [receipt.ref], now_ms=self.ctx.now_ms(), received_ms=[receipt.received_ms]
        )
        self.in_flight.deleted(queue.id, outcomes.count(DeleteOutcome.DELETED))
        _check_deleted(queue, receipt_handle, outcomes[0])

    async def delete_message_batch(self, key: QueueKey, entries: Sequence[tuple[str, str]]) -> BatchResult[None]:
        queue = await self.ctx.require(key)
        validation.check_batch_ids([entry_id for entry_id, _ in entries], "DeleteMessageBatch")
        decoded, failed = _decode_entries(queue, [(entry_id, handle) for entry_id, handle in entries])
        outcomes = (
            await self.ctx.storage.delete_messages(
                queue.id,
                [r.ref for _, _, r in decoded],
                now_ms=self.ctx.now_ms(),
                received_ms=[r.received_ms for _, _, r in decoded],
            )
            if decoded
            else []
        )
        self.in_flight.deleted(queue.id, outcomes.count(DeleteOutcome.DELETED))
        successful: list[tuple[str, None]] = []
        for (entry_id, handle, _), outcome in zip(decoded, outcomes, strict=True):
            try:
                _check_deleted(queue, handle, outcome)
                successful.append((entry_id, None))
            except LooselyError as error:
                failed.append(BatchFailure(id=entry_id, error=error))
        return BatchResult(successful=successful, failed=_in_request_order(failed, entries))

    # ---- visibility ----

    async def change_message_visibility(self, key: QueueKey, receipt_handle: str, visibility_timeout_s: int) -> None:
        queue = await self.ctx.require(key)
        receipt = receipts.decode(receipt_handle, queue.id)
        now = self.ctx.now_ms()
        visible_at = _new_visibility(receipt, visibility_timeout_s, now)
        outcomes = await self.ctx.storage.change_visibility(queue.id, [(receipt.ref, visible_at)], now)
        _check_changed(queue, receipt_handle, outcomes[0])

    async def change_message_visibility_batch(
        self, key: QueueKey, entries: Sequence[tuple[str, str, int]]
    ) -> BatchResult[None]:
        queue = await self.ctx.require(key)
        validation.check_batch_ids([entry[0] for entry in entries], "ChangeMessageVisibilityBatch")
        now = self.ctx.now_ms()
        decoded, failed = _decode_entries(queue, [(entry_id, handle) for entry_id, handle, _ in entries])
        timeouts = {entry_id: timeout for entry_id, _, timeout in entries}
        changes: list[tuple[str, str, MessageRef, int]] = []
        for entry_id, handle, receipt in decoded:
            try:
                changes.append((entry_id, handle, receipt.ref, _new_visibility(receipt, timeouts[entry_id], now)))
            except LooselyError as error:
                failed.append(BatchFailure(id=entry_id, error=error))
        requested = [(ref, visible_at) for _, _, ref, visible_at in changes]
        outcomes = await self.ctx.storage.change_visibility(queue.id, requested, now) if changes else []
        successful: list[tuple[str, None]] = []
        for (entry_id, handle, _, _), outcome in zip(changes, outcomes, strict=True):
            try:
                _check_changed(queue, handle, outcome)
                successful.append((entry_id, None))
            except LooselyError as error:
                failed.append(BatchFailure(id=entry_id, error=error))
        return BatchResult(successful=successful, failed=_in_request_order(failed, entries))


# ---- pure helpers ----


def _sent(prepared: _Prepared, outcome: SendOutcome, fifo: bool) -> SentMessage:
    return SentMessage(
        outcome.message_id,
        prepared.md5_of_body,
        prepared.md5_of_message_attributes,
        prepared.md5_of_system_attributes,
        sequence_number(outcome.sequence) if fifo else None,
    )


def _received_plain(queue_id: int, message: StoredMessage, received_ms: int) -> ReceivedMessage:
    """A received message when the receive asked for no attributes: only the body's digest is read from meta."""
    return ReceivedMessage(
        message.message_id,
        receipts.encode_parts(queue_id, message.row_id, message.receive_count, received_ms),
        message.body,
        stored_md5_of_body(message.meta, message.body),
    )


def _shown_attributes(
    stored: Mapping[str, MessageAttributeValue], selected: dict[str, MessageAttributeValue], names: Sequence[str]
) -> dict[str, MessageAttributeValue] | None:
    """The MessageAttributes member of a received message: None leaves it out. AWS answers an empty
    map where valid names matched none of the message's attributes (LocalStack's AWS recording
    test_receive_message_message_attribute_names_filters, only_non_existing_names)."""
    if selected:
        return selected
    return {} if stored and filters_attributes(names) else None


def _or_attribute(value: int | None, queue: QueueRecord, name: str) -> int:
    return value if value is not None else int(queue.attributes[name])


def _check_batch_size(requests: Sequence[SendRequest]) -> None:
    """The whole batch against SQS's payload limit; AWS does not apply the queue's MaximumMessageSize here."""
    maximum = limits.MESSAGE_SIZE_MAX
    total = sum(validation.message_size(r.body, r.message_attributes) for r in requests)
    if total > maximum:
        raise BatchRequestTooLong(f"Batch requests cannot be longer than {maximum} bytes. You have sent {total} bytes.")


def _check_fifo_batch_entry(queue: QueueRecord, request: SendRequest) -> None:
    """On FIFO queues AWS fails the whole batch, not the entry, for a missing group or dedup id."""
    if not request.group_id:
        raise InvalidParameterValue("The request must contain the parameter MessageGroupId.")
    if not request.deduplication_id and queue.attributes.get("ContentBasedDeduplication") != "true":
        raise InvalidParameterValue(
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
            "explicitly"
        )


def _deduplication(queue: QueueRecord, request: SendRequest) -> tuple[str, str]:
    """The FIFO deduplication id actually used, and the key storage compares (scoped by the queue's setting)."""
    if not request.group_id:
        raise MissingParameter("The request must contain the parameter MessageGroupId.")
    dedup_id = request.deduplication_id
    if not dedup_id:
        if queue.attributes.get("ContentBasedDeduplication") != "true":
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
                "explicitly"
            )
        dedup_id = hashlib.sha256(request.body.encode("utf-8")).hexdigest()
    # PurgeQueue also forgets deduplication ids (as on AWS): keys sent after a purge name its instant.
    epoch = "" if queue.last_purge_ms is None else f"p{queue.last_purge_ms}:"
    if queue.attributes.get("DeduplicationScope") == "messageGroup":
        return dedup_id, f"{epoch}g:{len(request.group_id)}:{request.group_id}:{dedup_id}"
    return dedup_id, f"{epoch}q:{dedup_id}"


def _no_deduplication(request: SendRequest) -> tuple[None, None]:
    if request.deduplication_id is not None:
        raise validation.invalid_value(
            request.deduplication_id,
            "MessageDeduplicationId",
            "The request include parameter that is not valid for this queue type.",  # AWS's grammar
        )
    return None, None


def _decode_entries(
    queue: QueueRecord, entries: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str, receipts.Receipt]], list[BatchFailure]]:
    decoded: list[tuple[str, str, receipts.Receipt]] = []
    failed: list[BatchFailure] = []
    for entry_id, handle in entries:
        try:
            decoded.append((entry_id, handle, receipts.decode(handle, queue.id)))
        except LooselyError as error:
            failed.append(BatchFailure(id=entry_id, error=error))
    return decoded, failed


def _in_request_order(failed: list[BatchFailure], entries: Sequence[tuple[object, ...]]) -> list[BatchFailure]:
    order = {entry[0]: index for index, entry in enumerate(entries)}
    return sorted(failed, key=lambda failure: order.get(failure.id, 0))


def _check_deleted(queue: QueueRecord, handle: str, outcome: DeleteOutcome) -> None:
    """DELETED and GONE succeed (AWS deletes idempotently); a stale FIFO receipt has expired.

    On a standard queue AWS accepts an outdated receipt and leaves the message alone, so STALE
    succeeds there too.
    """
    if outcome is DeleteOutcome.STALE and queue.key.fifo:
        raise validation.invalid_value(handle, "ReceiptHandle", "The receipt handle has expired.")


def _new_visibility(receipt: receipts.Receipt, timeout_s: int, now: int) -> int:
    """The new visible-at instant, within 0..43200 s and at most 12 h after the receive."""
    validation.check_visibility_timeout(timeout_s)
    visible_at = now + timeout_s * 1000
    if visible_at - receipt.received_ms > limits.VISIBILITY_TIMEOUT_MAX_S * 1000:
        raise validation.invalid_value(
            timeout_s,
            "VisibilityTimeout",
            f"Total VisibilityTimeout for the message is beyond the limit [{limits.VISIBILITY_TIMEOUT_MAX_S} seconds].",
        )
    return visible_at


def _check_changed(queue: QueueRecord, handle: str, outcome: VisibilityOutcome) -> None:
    """GONE is an invalid handle; an outdated receipt fails only on a FIFO queue.

    On a standard queue AWS answers a receipt of an earlier receive with success, as it does for
    DeleteMessage (moto's and LocalStack's AWS-checked findings: AWS was never seen to return
    MessageNotInflight); the message keeps the visibility of its latest receive.
    """
    if outcome is VisibilityOutcome.NOT_IN_FLIGHT and queue.key.fifo:
        raise MessageNotInflight("The specified message isn't in flight.")
    if outcome is VisibilityOutcome.GONE:
        raise validation.invalid_value(
            handle, "ReceiptHandle", "Message does not exist or is not available for visibility timeout change."
        )
