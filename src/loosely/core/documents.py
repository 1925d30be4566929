"""Values for the generic document store and the publication outbox.

Control-plane resources that are read far more than written and never claimed (SNS topics,
subscriptions, platform applications and endpoints; later API Gateway and WAF resources) are
kept as versioned JSON documents of a ``kind``, addressed by ``key`` and optionally grouped by a
``parent`` key (a subscription's parent is its topic ARN). One small storage contract then serves
every such service, on every backend.

The outbox holds what a publish must still deliver: a publish writes one `Publication` durably
(acknowledged = recorded); workers claim publications, fan them out atomically into SQS messages
and push `Delivery` rows, and deliveries are retried by their policy until done or dead-lettered.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from loosely.core.frozen import record
from loosely.core.queues.models import NewMessage


@record
class Document:
    kind: str
    key: str
    parent: str | None
    body: str  # JSON text, opaque to storage
    version: int  # starts at 1, +1 per update; for compare-and-set
    updated_ms: int


@record
class NewPublication:
    """A published message as recorded by Publish; ``payload`` is opaque JSON text.

    ``ordering_key`` (a FIFO topic's ARN) serialises fan-out: publications with the same key are
    handed out one batch at a time, in order. ``dedup_key`` (FIFO) suppresses repeats within the window.
    ``archive_until_ms`` (a FIFO topic with an ArchivePolicy): keep a copy in the topic's archive, written
    in the same transaction, until then.
    """

    topic_arn: str
    message_id: str
    payload: str
    ordering_key: str | None = None
    dedup_key: str | None = None
    archive_until_ms: int | None = None


@record
class DocumentGuard:
    """A precondition of a write: the document of ``kind`` and ``key`` exists with exactly this ``body``.

    Lets a caller decide on a document it read earlier (a topic, for a Publish) and have the write
    refused, atomically, if the document changed or went away since: no read round trip per write,
    and never a decision on a stale document.
    """

    kind: str
    key: str
    body: str


@record
class PublishOutcome:
    message_id: str  # a duplicate returns the original's id
    sequence: int
    duplicate: bool = False


@record
class Publication:
    id: int
    topic_arn: str
    message_id: str
    payload: str
    created_ms: int
    sequence: int


class DeliveryState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # policy exhausted with no dead-letter queue: counted and logged
    DEAD_LETTERED = "dead_lettered"


@record
class NewDelivery:
    """One push delivery to make (http/https/email/sms/application, or an sqs one that failed once)."""

    subscription_arn: str
    payload: str  # JSON text: what to send and how, opaque to storage
    next_attempt_ms: int


@record
class FanOutResult:
    """What one claimed publication turns into: SQS messages (queue id, message) and push deliveries."""

    publication_id: int
    queue_messages: Sequence[tuple[int, NewMessage]] = ()
    deliveries: Sequence[NewDelivery] = ()


@record
class Delivery:
    id: int
    subscription_arn: str
    payload: str
    attempts: int  # attempts made before this claim
    next_attempt_ms: int
    created_ms: int
    last_error: str | None = None
