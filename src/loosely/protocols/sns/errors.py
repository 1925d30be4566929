"""SNS error codes: one table from core conditions to what SNS puts in its XML ``ErrorResponse``.

Codes and statuses are the ``error`` traits of botocore's SNS model (``InvalidParameter`` 400,
``NotFound`` 404, ``AuthorizationError`` 403, ...), so boto3 raises the modelled exception class
(``client.exceptions.NotFoundException``). SNS speaks Query only: the JSON code is never sent and
repeats the shape name. A missing required parameter is AWS's generic ``ValidationError``.
"""

from __future__ import annotations

from loosely.core import errors as core
from loosely.core.topics import errors as sns
from loosely.protocols.errors import INTERNAL_FAILURE, AwsError, ErrorTable

__all__ = ["SNS_ERRORS", "SNS_ERROR_TABLE"]


def _e(shape: str, code: str, status: int = 400) -> AwsError:
    return AwsError(shape, code, status)


SNS_ERRORS: dict[type[BaseException], AwsError] = {
    core.InvalidParameterValue: _e("InvalidParameterValueException", "ParameterValueInvalid"),
    core.InvalidParameter: _e("InvalidParameterException", "InvalidParameter"),
    core.InvalidAttributeName: _e("InvalidParameterException", "InvalidParameter"),
    core.InvalidAttributeValue: _e("InvalidParameterException", "InvalidParameter"),
    core.MissingParameter: _e("ValidationError", "ValidationError"),
    core.ResourceNotFound: _e("ResourceNotFoundException", "ResourceNotFound", 404),
    core.InvalidBatchEntryId: _e("InvalidBatchEntryIdException", "InvalidBatchEntryId"),
    core.BatchRequestTooLong: _e("BatchRequestTooLongException", "BatchRequestTooLong"),
    core.EmptyBatchRequest: _e("EmptyBatchRequestException", "EmptyBatchRequest"),
    core.TooManyEntriesInBatchRequest: _e("TooManyEntriesInBatchRequestException", "TooManyEntriesInBatchRequest"),
    core.BatchEntryIdsNotDistinct: _e("BatchEntryIdsNotDistinctException", "BatchEntryIdsNotDistinct"),
    core.ConcurrentUpdate: _e("ConcurrentAccessException", "ConcurrentAccess"),
    core.RequestThrottled: _e("ThrottledException", "Throttled", 429),
    core.ServiceUnavailable: AwsError("ServiceUnavailable", "ServiceUnavailable", 503, sender_fault=False),
    sns.NotFound: _e("NotFoundException", "NotFound", 404),
    sns.AuthorizationError: _e("AuthorizationErrorException", "AuthorizationError", 403),
    sns.TagLimitExceeded: _e("TagLimitExceededException", "TagLimitExceeded"),
    sns.SubscriptionLimitExceeded: _e("SubscriptionLimitExceededException", "SubscriptionLimitExceeded", 403),
    sns.FilterPolicyLimitExceeded: _e("FilterPolicyLimitExceededException", "FilterPolicyLimitExceeded", 403),
    sns.EndpointDisabled: _e("EndpointDisabledException", "EndpointDisabled"),
    sns.PlatformApplicationDisabled: _e("PlatformApplicationDisabledException", "PlatformApplicationDisabled"),
    sns.OptedOut: _e("OptedOutException", "OptedOut"),
    sns.UserError: _e("UserErrorException", "UserError"),
    sns.VerificationFailed: _e("VerificationException", "VerificationException"),
    sns.ValidationError: _e("ValidationException", "ValidationException"),
    sns.Throttled: _e("ThrottledException", "Throttled", 429),
    core.LooselyError: INTERNAL_FAILURE,
}

SNS_ERROR_TABLE = ErrorTable(SNS_ERRORS)
