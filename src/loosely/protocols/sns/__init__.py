"""SNS on the wire: Query/XML only (``Action=...&Version=2010-03-31``), errors as XML ``ErrorResponse``."""

from __future__ import annotations

from loosely.protocols.model import ServiceModel, load_service_model
from loosely.protocols.service import ServiceSpec
from loosely.protocols.sns.errors import SNS_ERROR_TABLE
from loosely.protocols.sns.operations import ARNS_CHECKED_BY_SNS, SNS_OPERATIONS

__all__ = ["SNS"]


def _sns_model() -> ServiceModel:
    """The SNS model, without the ARN members SNS checks itself.

    The Query codec answers a missing required member with a model error; SNS instead says
    ``Invalid parameter: TopicArn Reason: no value for required parameter``, which the operations
    word themselves (`operations._arn`), so those members are not required at the codec.
    """
    model = load_service_model("sns-2010-03-31")
    for operation in model.operations.values():
        if operation.input is not None:
            operation.input.required = operation.input.required - ARNS_CHECKED_BY_SNS
    return model


SNS = ServiceSpec(
    signing_name="sns",
    model=_sns_model(),
    operations=SNS_OPERATIONS,
    errors=SNS_ERROR_TABLE,
    protocols=("query",),
    query_error_detail=False,  # AWS's SNS ErrorResponse has Type, Code and Message only
)
