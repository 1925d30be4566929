"""Values exchanged between the queue service, its storage and the protocol adapters.

Instants are integer epoch milliseconds (``_ms``); durations carry their unit in their name.
AWS's seconds and strings appear only in protocol adapters and in ``QueueRecord.attributes``,
which holds queue attributes exactly as GetQueueAttributes returns them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import field

from loosely.core.batches import BatchFailure as BatchFailure
from loosely.core.batches import BatchResult as BatchResult
from loosely.core.frozen import record


@record
class QueueKey:
    """A queue's identity: account, region and name. Queues are namespaced by account and region."""

    account_id: str
    region: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{self.name}"

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @classmethod
    def from_arn(cls, arn: str) -> QueueKey | None:
        """The key an SQS ARN names, or None when ``arn`` is not an SQS queue ARN."""
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
            return None
        return cls(account_id=parts[4], region=parts[3], name=parts[5])


@record
class QueueRecord:
    """A stored queue.

    ``attributes`` holds the settable attributes (VisibilityTimeout, RedrivePolicy, ...) as the
    strings GetQueueAttributes returns; computed ones (counts, ARN, timestamps) are not in it.
    ``retention_ms`` mirrors MessageRetentionPeriod so storage can stamp expiry times without
    parsing attributes.
    """

    id: int
    key: QueueKey
    attributes: Mapping[str, str]
    tags: Mapping[str, str]
    created_ms: int
    modified_ms: int
    retention_ms: int
    last_purge_ms: int | None = None


@record
class QueueCounts:
    """ApproximateNumberOfMessages(+NotVisible, +Delayed) at one instant."""

    visible: int
    in_flight: int
    delayed: int


@record
class MessageAttributeValue:
    """A message attribute: ``data_type`` is String, Number or Binary, optionally with a ``.suffix``."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None


@record
class NewMessage:
    """A message as the service hands it to storage on send.

    ``meta`` is an opaque document (JSON text) that storage keeps and returns untouched: message
    attributes, digests, sender id, trace header. ``dedup_key`` is the FIFO deduplication key,
    already scoped (queue- or group-wide); storage only compares it.
    """

    message_id: str
    body: str
    meta: str
    sent_ms: int
    visible_at_ms: int
    group_id: str | None = None
    dedup_key: str | None = None


@record
class SendOutcome:
    """What storage did with one ``NewMessage``.

    For a FIFO duplicate within the deduplication window, ``duplicate`` is True and
    ``message_id``/``sequence`` are the original message's.
    """

    message_id: str
    sequence: int
    duplicate: bool = False


@record
class StoredMessage:
    """A message as storage returns it from a claim.

    ``row_id`` is storage's stable handle (increasing in send order within a queue, so it also
    yields the FIFO SequenceNumber). ``receive_count`` already includes this claim.
    """

    row_id: int
    message_id: str
    body: str
    meta: str
    sent_ms: int
    receive_count: int
    first_receive_ms: int
    group_id: str | None = None
    dead_letter_source_arn: str | None = None


@record
class MessageRef:
    """What a receipt handle names: one message and the receive that handed it out."""

    row_id: int
    receive_count: int


@record
class DeadLetterTarget:
    """Where a claim moves messages received ``max_receive_count`` times already."""

    queue_id: int
    max_receive_count: int
    source_arn: str


@record
class ClaimRequest:
    """Parameters of one atomic claim.

    Claimed messages become invisible until ``visible_until_ms``. On a FIFO queue, messages come
    in group order and a group with a message in flight yields nothing. Messages that have already
    been received ``dead_letter.max_receive_count`` times are moved to the dead-letter queue in the
    same transaction instead of being returned. With ``attempt_id`` (FIFO ReceiveRequestAttemptId),
    a repeated claim within ``attempt_window_ms`` returns the same messages again while they are
    still in flight from that attempt.
    """

    max_messages: int
    now_ms: int
    visible_until_ms: int
    fifo: bool = False
    dead_letter: DeadLetterTarget | None = None
    attempt_id: str | None = None
    attempt_window_ms: int = 300_000


@record
class ClaimResult:
    """Claimed messages, and when the next one becomes visible (so long polls sleep exactly that long)."""

    messages: list[StoredMessage]
    next_visible_at_ms: int | None = None
    moved_to_dead_letter: int = 0


class DeleteOutcome(enum.Enum):
    DELETED = "deleted"
    STALE = "stale"  # received again since this receipt was handed out (FIFO: or its visibility ran out)
    GONE = "gone"  # no such message (already deleted, expired or moved)


class VisibilityOutcome(enum.Enum):
    CHANGED = "changed"
    NOT_IN_FLIGHT = "not_in_flight"
    GONE = "gone"


class MoveTaskStatus(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


@record
class MoveTask:
    """A message move task (StartMessageMoveTask): redrive from a dead-letter queue.

    ``destination_arn`` None means "back to each message's source queue".
    """

    task_handle: str
    source_queue_id: int
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    status: MoveTaskStatus
    approximate_to_move: int
    moved: int
    started_ms: int
    failure_reason: str | None = None
    lease_owner: str | None = None
    lease_until_ms: int = 0


# ---- service-level values (what protocol adapters pass in and get back) ----


@record
class SendRequest:
    body: str
    delay_s: int | None = None
    message_attributes: Mapping[str, MessageAttributeValue] = field(default_factory=dict)
    system_attributes: Mapping[str, MessageAttributeValue] = field(default_factory=dict)
    group_id: str | None = None
    deduplication_id: str | None = None


@record
class SentMessage:
    message_id: str
    md5_of_body: str
    md5_of_message_attributes: str | None = None
    md5_of_system_attributes: str | None = None
    sequence_number: str | None = None


@record
class ReceiveRequest:
    """``attribute_names`` are system attribute names (or All); ``message_attribute_names`` may use
    All, ``.*`` and ``prefix.*``."""

    max_messages: int = 1
    visibility_timeout_s: int | None = None
    wait_time_s: int | None = None
    attribute_names: tuple[str, ...] = ()
    message_attribute_names: tuple[str, ...] = ()
    attempt_id: str | None = None


@record
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, MessageAttributeValue] | None = None  # None: not shown
    md5_of_message_attributes: str | None = None


@record
class MoveTaskView:
    """A move task as ListMessageMoveTasks shows it."""

    task_handle: str | None
    status: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    approximate_to_move: int | None
    moved: int
    started_ms: int
    failure_reason: str | None = None
