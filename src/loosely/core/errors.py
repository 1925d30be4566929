"""The error hierarchy of the domain.

Errors name the condition, never an AWS code or an HTTP status: each protocol adapter translates
them once, by table (`loosely.protocols.<service>.errors`). Every error carries a human message
written the way AWS phrases it, because clients show that message to people.

    LooselyError
    ├── InvalidParameterValue        a value is out of range or malformed
    │   ├── InvalidAttributeName     an unknown or forbidden attribute name
    │   ├── InvalidAttributeValue    a queue attribute value out of range
    │   ├── InvalidMessageContents   a body with characters outside the allowed set
    │   ├── InvalidBatchEntryId      a batch entry id that breaks the id rules
    │   ├── InvalidIdFormat          a malformed id (e.g. a message move task handle)
    │   └── InvalidParameter         SNS: a parameter or attribute document is invalid
    ├── MissingParameter             a required parameter is absent
    ├── UnsupportedOperation         the operation does not apply to this resource
    ├── ResourceNotFound             (generic: e.g. a message move task source)
    ├── QueueDoesNotExist
    │   └── QueuesGone               storage: queues looked up earlier were deleted since
    ├── QueueNameExists              CreateQueue with the same name but other attributes
    ├── QueueDeletedRecently
    ├── PurgeQueueInProgress
    ├── ReceiptHandleIsInvalid
    ├── MessageNotInflight
    ├── OverLimit                    in-flight or policy statement limits
    ├── BatchRequestTooLong
    ├── EmptyBatchRequest
    ├── TooManyEntriesInBatchRequest
    ├── BatchEntryIdsNotDistinct
    ├── RequestThrottled
    └── ServiceUnavailable           storage unreachable (a 5xx, retried by SDKs)
"""

from __future__ import annotations

from collections.abc import Iterable


class LooselyError(Exception):
    """Base of every error a client may see. ``message`` is shown to the client verbatim."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValue(LooselyError):
    """A parameter's value is malformed or out of its range."""


class InvalidAttributeName(InvalidParameterValue):
    """An attribute name that is unknown for this resource or not allowed here."""


class InvalidAttributeValue(InvalidParameterValue):
    """A queue attribute value outside its documented range or form."""


class InvalidMessageContents(InvalidParameterValue):
    """A message body or attribute value with characters SQS does not allow."""


class InvalidBatchEntryId(InvalidParameterValue):
    """A batch entry id that is empty, too long or uses characters outside ``[A-Za-z0-9_-]``."""


class InvalidIdFormat(InvalidParameterValue):
    """A malformed identifier, such as a message move task handle."""


class InvalidParameter(InvalidParameterValue):
    """SNS's "Invalid parameter: <Name>: <reason>" family (e.g. a malformed DeliveryPolicy or FilterPolicy).

    SNS distinguishes this (code InvalidParameter) from a bad parameter *value* (ParameterValueInvalid),
    so its protocol table needs a class of its own; it stays an `InvalidParameterValue` for everyone else.
    """


class MissingParameter(LooselyError):
    """A required parameter is absent."""


class UnsupportedOperation(LooselyError):
    """The operation is valid but not for this kind of resource."""


class ResourceNotFound(LooselyError):
    """A referenced resource (other than a queue) does not exist."""


class QueueDoesNotExist(LooselyError):
    """The queue named by the request does not exist (or was deleted)."""

    def __init__(self, message: str = "The specified queue does not exist.") -> None:
        super().__init__(message)


class QueuesGone(QueueDoesNotExist):
    """Storage refused to write into queues, named by id, that no longer exist; it changed nothing.

    Ids are never reused, so a queue deleted and created again under its name has a new id: a caller
    that looked queues up earlier (SNS fan-out caches them) looks them up again and retries, instead
    of the messages silently going nowhere.
    """

    def __init__(self, queue_ids: Iterable[int]) -> None:
        super().__init__()
        self.queue_ids = frozenset(queue_ids)


class QueueNameExists(LooselyError):
    """CreateQueue with a name that exists with different attributes."""


class QueueDeletedRecently(LooselyError):
    """CreateQueue with a name deleted less than the re-create delay ago."""


class PurgeQueueInProgress(LooselyError):
    """A second PurgeQueue within 60 seconds."""


class ReceiptHandleIsInvalid(LooselyError):
    """A receipt handle that is malformed or does not belong to this queue."""


class MessageNotInflight(LooselyError):
    """ChangeMessageVisibility on a message that is not in flight."""


class OverLimit(LooselyError):
    """A limit such as the in-flight message count or permission statements is reached."""


class BatchRequestTooLong(LooselyError):
    """The batch's total size is over the queue's maximum message size."""


class EmptyBatchRequest(LooselyError):
    """A batch request with no entries."""


class TooManyEntriesInBatchRequest(LooselyError):
    """A batch request with more than ten entries."""


class BatchEntryIdsNotDistinct(LooselyError):
    """Two entries of one batch share an id."""


class RequestThrottled(LooselyError):
    """Too many requests of one kind (e.g. a FIFO queue's throughput limit)."""


class ServiceUnavailable(LooselyError):
    """The store cannot be reached now; the request may be retried."""


class ConcurrentUpdate(LooselyError):
    """A compare-and-set write lost a race with another writer; the caller may retry."""
