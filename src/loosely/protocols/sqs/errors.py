"""SQS error codes: one table from core conditions to what AWS puts on the wire.

Why a table: core errors name conditions, and AWS spells each condition twice. Over JSON the
``__type`` is the error shape of botocore's current model (``QueueDoesNotExist``); over Query, and
in the JSON ``x-amzn-query-error`` header, it is the code of the Query era
(``AWS.SimpleQueueService.NonExistentQueue``), as botocore 1.31.0's model records it. Generic
errors that SQS's JSON model does not declare come from AWS's service framework, so their
``__type`` is in its namespace (``com.amazon.coral.service#InvalidParameterValueException``,
``...#MissingRequiredParameterException``), as responses recorded from AWS show. Batch entry
failures use the Query code in their ``Code`` field.
"""

from __future__ import annotations

from loosely.core import errors as core
from loosely.protocols.errors import INTERNAL_FAILURE, AwsError, ErrorTable

__all__ = ["SQS_ERRORS", "SQS_ERROR_TABLE"]

_PREFIX = "AWS.SimpleQueueService."
_CORAL = "com.amazon.coral.service#"

SQS_ERRORS: dict[type[BaseException], AwsError] = {
    core.InvalidParameterValue: AwsError(_CORAL + "InvalidParameterValueException", "InvalidParameterValue"),
    core.InvalidAttributeName: AwsError("InvalidAttributeName", "InvalidAttributeName"),
    core.InvalidAttributeValue: AwsError("InvalidAttributeValue", "InvalidAttributeValue"),
    core.InvalidMessageContents: AwsError("InvalidMessageContents", "InvalidMessageContents"),
    core.InvalidBatchEntryId: AwsError("InvalidBatchEntryId", _PREFIX + "InvalidBatchEntryId"),
    core.InvalidIdFormat: AwsError("InvalidIdFormat", "InvalidIdFormat"),
    core.MissingParameter: AwsError(_CORAL + "MissingRequiredParameterException", "MissingParameter"),
    core.UnsupportedOperation: AwsError("UnsupportedOperation", _PREFIX + "UnsupportedOperation"),
    core.ResourceNotFound: AwsError("ResourceNotFoundException", "ResourceNotFoundException", 404),
    core.QueueDoesNotExist: AwsError(
        "QueueDoesNotExist",
        _PREFIX + "NonExistentQueue",
        query_message="The specified queue does not exist for this wsdl version.",
    ),
    core.QueueNameExists: AwsError("QueueNameExists", "QueueAlreadyExists"),
    core.QueueDeletedRecently: AwsError("QueueDeletedRecently", _PREFIX + "QueueDeletedRecently"),
    core.PurgeQueueInProgress: AwsError("PurgeQueueInProgress", _PREFIX + "PurgeQueueInProgress", 403),
    # AWS answers a receipt handle it cannot use with 404, over JSON and Query alike.
    core.ReceiptHandleIsInvalid: AwsError("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404),
    core.MessageNotInflight: AwsError("MessageNotInflight", _PREFIX + "MessageNotInflight"),
    core.OverLimit: AwsError("OverLimit", "OverLimit", 403),
    core.BatchRequestTooLong: AwsError("BatchRequestTooLong", _PREFIX + "BatchRequestTooLong"),
    core.EmptyBatchRequest: AwsError("EmptyBatchRequest", _PREFIX + "EmptyBatchRequest"),
    core.TooManyEntriesInBatchRequest: AwsError(
        "TooManyEntriesInBatchRequest", _PREFIX + "TooManyEntriesInBatchRequest"
    ),
    core.BatchEntryIdsNotDistinct: AwsError("BatchEntryIdsNotDistinct", _PREFIX + "BatchEntryIdsNotDistinct"),
    core.RequestThrottled: AwsError("RequestThrottled", "RequestThrottled"),
    core.ServiceUnavailable: AwsError("ServiceUnavailable", "ServiceUnavailable", 503, sender_fault=False),
    core.LooselyError: INTERNAL_FAILURE,
}

SQS_ERROR_TABLE = ErrorTable(SQS_ERRORS)
