"""The 23 SQS actions: decoded parameters in, one `QueueService` call, AWS-named output out.

Why so thin: every rule (limits, FIFO, visibility, redrive) lives in ``loosely.core.queues``.
A handler only names the queue (from its URL), converts wire values to core values and back,
and turns batch failures into ``Failed`` entries with the codes of `SQS_ERROR_TABLE`. Handlers
are protocol-agnostic: the same function serves JSON and Query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from loosely.core.errors import InvalidParameterValue, UnsupportedOperation
from loosely.core.queues.models import (
    BatchFailure,
    MessageAttributeValue,
    MoveTaskView,
    QueueKey,
    ReceivedMessage,
    ReceiveRequest,
    SendRequest,
    SentMessage,
)
from loosely.protocols.service import OperationContext, OperationTable, Params
from loosely.protocols.sqs.errors import SQS_ERROR_TABLE
from loosely.protocols.sqs.urls import key_from_url, queue_url

__all__ = ["SQS_OPERATIONS"]

SQS_OPERATIONS = OperationTable()
operation = SQS_OPERATIONS.operation
Out = dict[str, Any]


# ---- conversions ----


def _key(ctx: OperationContext, p: Params) -> QueueKey:
    """The queue a request names; AWS answers a missing QueueUrl as a queue that does not exist."""
    return key_from_url(p.opt_string("QueueUrl") or "", ctx.region, ctx.account_id)


def _queue_name(p: Params) -> str:
    """CreateQueue's and GetQueueUrl's QueueName; AWS answers its absence as an invalid value."""
    name = p.opt_string("QueueName")
    if name is None:
        raise InvalidParameterValue("Value for parameter QueueName is invalid. Reason: Must specify a queue name.")
    return name


def _url(ctx: OperationContext, key: QueueKey) -> str:
    return queue_url(ctx.base_url, key)


def _attribute_values(p: Params, name: str, operation: str) -> dict[str, MessageAttributeValue]:
    """Message (or system) attributes from their wire form ``{Name: {DataType, StringValue|BinaryValue}}``.

    The model also has ``StringListValues`` and ``BinaryListValues``, which AWS reserves: a request
    that carries either (even empty, as SDKs echo them from received messages) fails as a whole.
    """
    values = {}
    for attr_name, entry in p.struct_map(name).items():
        if "StringListValues" in entry.raw or "BinaryListValues" in entry.raw:
            raise UnsupportedOperation(f"Message attribute list values in {operation} operation are not supported.")
        binary = entry.raw.get("BinaryValue")
        values[attr_name] = MessageAttributeValue(
            data_type=entry.opt_string("DataType") or "",
            string_value=entry.opt_string("StringValue"),
            binary_value=binary if isinstance(binary, bytes) else None,
        )
    return values


def _attribute_values_out(values: dict[str, MessageAttributeValue] | Any) -> dict[str, Out]:
    return {
        name: {"DataType": v.data_type, "StringValue": v.string_value, "BinaryValue": v.binary_value}
        for name, v in values.items()
    }


def _entries(p: Params) -> list[tuple[Mapping[str, Any], Callable[[], Params]]]:
    """A batch's entries as the codec decoded them, each with a maker of its `Params`.

    Why not `Params.structs`: a `Params` per entry (and its path prefix) costs more than reading the
    entry's few values, which the codec has already typed; one is made only where a value needs
    the checked accessors or an error needs the entry's path (``Entries.3.``).
    """
    value = p.raw.get("Entries")
    if type(value) is list and all(type(entry) is dict for entry in value):
        return [(entry, partial(_entry_params, entry, index)) for index, entry in enumerate(value, 1)]
    return [(entry.raw, _given(entry)) for entry in p.structs("Entries")]


def _entry_params(raw: Mapping[str, Any], index: int) -> Params:
    return Params(raw, f"Entries.{index}.")


def _given(params: Params) -> Callable[[], Params]:
    return lambda: params


def _entry_string(raw: Mapping[str, Any], name: str, params: Callable[[], Params]) -> str:
    """An optional string member of a batch entry, "" when absent (the service reports what is missing)."""
    value = raw.get(name)
    return value if type(value) is str else params().opt_string(name) or ""


def _send_request(raw: Mapping[str, Any], operation: str, params: Callable[[], Params]) -> SendRequest:
    """The core request of one message (SendMessage, or one SendMessageBatch entry)."""
    body = raw.get("MessageBody")
    delay = raw.get("DelaySeconds")
    group_id = raw.get("MessageGroupId")
    dedup_id = raw.get("MessageDeduplicationId")
    if (
        (body is None or type(body) is str)
        and (delay is None or type(delay) is int)
        and (group_id is None or type(group_id) is str)
        and (dedup_id is None or type(dedup_id) is str)
    ):
        # The codec typed every value: read them directly, and build attributes only when sent.
        return SendRequest(
            body or "",
            delay,
            _attribute_values(params(), "MessageAttributes", operation) if raw.get("MessageAttributes") else {},
            _attribute_values(params(), "MessageSystemAttributes", operation)
            if raw.get("MessageSystemAttributes")
            else {},
            group_id,
            dedup_id,
        )
    p = params()
    return SendRequest(
        body=p.opt_string("MessageBody") or "",
        delay_s=p.opt_integer("DelaySeconds"),
        message_attributes=_attribute_values(p, "MessageAttributes", operation),
        system_attributes=_attribute_values(p, "MessageSystemAttributes", operation),
        group_id=p.opt_string("MessageGroupId"),
        deduplication_id=p.opt_string("MessageDeduplicationId"),
    )


def _sent_out(sent: SentMessage) -> Out:
    return {
        "MessageId": sent.message_id,
        "MD5OfMessageBody": sent.md5_of_body,
        "MD5OfMessageAttributes": sent.md5_of_message_attributes,
        "MD5OfMessageSystemAttributes": sent.md5_of_system_attributes,
        "SequenceNumber": sent.sequence_number,
    }


def _received_out(message: ReceivedMessage) -> Out:
    out: Out = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if message.attributes:
        out["Attributes"] = dict(message.attributes)
    if message.md5_of_message_attributes is not None:
        out["MD5OfMessageAttributes"] = message.md5_of_message_attributes
    if message.message_attributes is not None:
        out["MessageAttributes"] = _attribute_values_out(message.message_attributes)
    return out


def _failed_out(failure: BatchFailure) -> Out:
    error = SQS_ERROR_TABLE.lookup(failure.error)
    message = getattr(failure.error, "message", None) or str(failure.error)
    return {"Id": failure.id, "SenderFault": failure.sender_fault, "Code": error.query_code, "Message": message}


def _sender_id(ctx: OperationContext) -> str:
    return ctx.caller.access_key_id or ctx.account_id


def _move_task_out(task: MoveTaskView) -> Out:
    return {
        "TaskHandle": task.task_handle,
        "Status": task.status,
        "SourceArn": task.source_arn,
        "DestinationArn": task.destination_arn,
        "MaxNumberOfMessagesPerSecond": task.max_per_second,
        "ApproximateNumberOfMessagesMoved": task.moved,
        "ApproximateNumberOfMessagesToMove": task.approximate_to_move,
        "FailureReason": task.failure_reason,
        "StartedTimestamp": task.started_ms,
    }


# ---- queues ----


@operation("CreateQueue")
async def create_queue(ctx: OperationContext, p: Params) -> Out:
    key = QueueKey(ctx.account_id, ctx.region, _queue_name(p))
    record = await ctx.server.queues.create_queue(key, p.string_map("Attributes"), p.string_map("tags"))
    return {"QueueUrl": _url(ctx, record.key)}


@operation("GetQueueUrl")
async def get_queue_url(ctx: OperationContext, p: Params) -> Out:
    account = p.opt_string("QueueOwnerAWSAccountId") or ctx.account_id
    record = await ctx.server.queues.get_queue(QueueKey(account, ctx.region, _queue_name(p)))
    return {"QueueUrl": _url(ctx, record.key)}


@operation("DeleteQueue")
async def delete_queue(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.delete_queue(_key(ctx, p))


@operation("ListQueues")
async def list_queues(ctx: OperationContext, p: Params) -> Out:
    records, token = await ctx.server.queues.list_queues(
        ctx.account_id,
        ctx.region,
        p.opt_string("QueueNamePrefix"),
        p.opt_integer("MaxResults"),
        p.opt_string("NextToken"),
    )
    return {"QueueUrls": [_url(ctx, r.key) for r in records], "NextToken": token}


@operation("GetQueueAttributes")
async def get_queue_attributes(ctx: OperationContext, p: Params) -> Out:
    names = p.strings("AttributeNames")
    attributes = await ctx.server.queues.get_queue_attributes(_key(ctx, p), names)
    # AWS leaves the member out when nothing was asked for (aws/aws-cli#17), but answers an empty map
    # for names the queue has no value for (LocalStack's AWS recording test_sqs_permission_lifecycle).
    return {"Attributes": attributes} if attributes or names else {}


@operation("SetQueueAttributes")
async def set_queue_attributes(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.set_queue_attributes(_key(ctx, p), p.string_map("Attributes"))


@operation("PurgeQueue")
async def purge_queue(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.purge_queue(_key(ctx, p))


@operation("TagQueue")
async def tag_queue(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.tag_queue(_key(ctx, p), p.string_map("Tags"))


@operation("UntagQueue")
async def untag_queue(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.untag_queue(_key(ctx, p), p.strings("TagKeys"))


@operation("ListQueueTags")
async def list_queue_tags(ctx: OperationContext, p: Params) -> Out:
    return {"Tags": await ctx.server.queues.list_queue_tags(_key(ctx, p))}


@operation("AddPermission", support="partial", notes="Stored in the queue Policy; not enforced on requests.")
async def add_permission(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.add_permission(
        _key(ctx, p), p.string("Label"), p.strings("AWSAccountIds"), p.strings("Actions")
    )


@operation("RemovePermission", support="partial", notes="Stored in the queue Policy; not enforced on requests.")
async def remove_permission(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.remove_permission(_key(ctx, p), p.string("Label"))


@operation("ListDeadLetterSourceQueues")
async def list_dead_letter_source_queues(ctx: OperationContext, p: Params) -> Out:
    records, token = await ctx.server.queues.list_dead_letter_source_queues(
        _key(ctx, p), p.opt_integer("MaxResults"), p.opt_string("NextToken")
    )
    return {"queueUrls": [_url(ctx, r.key) for r in records], "NextToken": token}


# ---- messages ----


@operation("SendMessage")
async def send_message(ctx: OperationContext, p: Params) -> Out:
    request = _send_request(p.raw, "SendMessage", lambda: p)
    sent = await ctx.server.queues.send_message(_key(ctx, p), request, _sender_id(ctx))
    return _sent_out(sent)


@operation("SendMessageBatch")
async def send_message_batch(ctx: OperationContext, p: Params) -> Out:
    entries = [
        (_entry_string(raw, "Id", params), _send_request(raw, "SendMessageBatch", params))
        for raw, params in _entries(p)
    ]
    result = await ctx.server.queues.send_message_batch(_key(ctx, p), entries, _sender_id(ctx))
    return {
        "Successful": [{"Id": entry_id, **_sent_out(sent)} for entry_id, sent in result.successful],
        "Failed": [_failed_out(f) for f in result.failed],
    }


@operation("ReceiveMessage")
async def receive_message(ctx: OperationContext, p: Params) -> Out:
    names = dict.fromkeys(p.strings("AttributeNames") + p.strings("MessageSystemAttributeNames"))
    max_messages = p.opt_integer("MaxNumberOfMessages")
    request = ReceiveRequest(
        max_messages=1 if max_messages is None else max_messages,
        visibility_timeout_s=p.opt_integer("VisibilityTimeout"),
        wait_time_s=p.opt_integer("WaitTimeSeconds"),
        attribute_names=tuple(names),
        message_attribute_names=tuple(p.strings("MessageAttributeNames")),
        attempt_id=p.opt_string("ReceiveRequestAttemptId"),
    )
    messages = await ctx.server.queues.receive_message(_key(ctx, p), request)
    return {"Messages": [_received_out(m) for m in messages]}


@operation("DeleteMessage")
async def delete_message(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.delete_message(_key(ctx, p), p.string("ReceiptHandle"))


@operation("DeleteMessageBatch")
async def delete_message_batch(ctx: OperationContext, p: Params) -> Out:
    entries = [
        (_entry_string(raw, "Id", params), _entry_string(raw, "ReceiptHandle", params)) for raw, params in _entries(p)
    ]
    result = await ctx.server.queues.delete_message_batch(_key(ctx, p), entries)
    return {
        "Successful": [{"Id": entry_id} for entry_id, _ in result.successful],
        "Failed": [_failed_out(f) for f in result.failed],
    }


@operation("ChangeMessageVisibility")
async def change_message_visibility(ctx: OperationContext, p: Params) -> None:
    await ctx.server.queues.change_message_visibility(
        _key(ctx, p), p.string("ReceiptHandle"), p.integer("VisibilityTimeout")
    )


@operation("ChangeMessageVisibilityBatch")
async def change_message_visibility_batch(ctx: OperationContext, p: Params) -> Out:
    entries = [
        (e.string("Id"), e.string("ReceiptHandle"), e.integer("VisibilityTimeout")) for e in p.structs("Entries")
    ]
    result = await ctx.server.queues.change_message_visibility_batch(_key(ctx, p), entries)
    return {
        "Successful": [{"Id": entry_id} for entry_id, _ in result.successful],
        "Failed": [_failed_out(f) for f in result.failed],
    }


# ---- message move tasks ----


@operation("StartMessageMoveTask")
async def start_message_move_task(ctx: OperationContext, p: Params) -> Out:
    handle = await ctx.server.queues.start_message_move_task(
        ctx.account_id,
        p.string("SourceArn"),
        p.opt_string("DestinationArn"),
        p.opt_integer("MaxNumberOfMessagesPerSecond"),
    )
    return {"TaskHandle": handle}


@operation("CancelMessageMoveTask")
async def cancel_message_move_task(ctx: OperationContext, p: Params) -> Out:
    moved = await ctx.server.queues.cancel_message_move_task(ctx.account_id, p.string("TaskHandle"))
    return {"ApproximateNumberOfMessagesMoved": moved}


@operation("ListMessageMoveTasks")
async def list_message_move_tasks(ctx: OperationContext, p: Params) -> Out:
    tasks = await ctx.server.queues.list_message_move_tasks(
        ctx.account_id, p.string("SourceArn"), p.opt_integer("MaxResults")
    )
    return {"Results": [_move_task_out(t) for t in tasks]}
