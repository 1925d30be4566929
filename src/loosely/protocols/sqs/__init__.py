"""SQS on the wire: AWS JSON 1.0 (``X-Amz-Target: AmazonSQS.<Op>``) and Query (``Version=2012-11-05``)."""

from __future__ import annotations

from dataclasses import replace

from loosely.protocols.model import ServiceModel, load_service_model
from loosely.protocols.service import ServiceSpec
from loosely.protocols.sqs.errors import SQS_ERROR_TABLE
from loosely.protocols.sqs.operations import SQS_OPERATIONS

__all__ = ["SQS"]

# Members the model marks required but AWS checks itself, with errors other than MissingParameter:
# a missing QueueUrl names no queue (QueueDoesNotExist) and a missing QueueName is an invalid value.
_CHECKED_BY_OPERATIONS = frozenset(("QueueUrl", "QueueName"))


def _with_aws_required_members(model: ServiceModel) -> ServiceModel:
    """A copy of the model whose operation inputs leave QueueUrl and QueueName to the operations.

    Why: the codecs answer an absent required member with MissingParameter before an operation
    runs; responses recorded from AWS answer these two differently (see `operations._key`). The
    shared model is left as botocore publishes it.
    """
    operations = {
        name: operation
        if operation.input is None
        else replace(
            operation, input=replace(operation.input, required=operation.input.required - _CHECKED_BY_OPERATIONS)
        )
        for name, operation in model.operations.items()
    }
    return replace(model, operations=operations)


SQS = ServiceSpec(
    signing_name="sqs",
    model=_with_aws_required_members(load_service_model("sqs-2012-11-05")),
    operations=SQS_OPERATIONS,
    errors=SQS_ERROR_TABLE,
    json_target_prefix="AmazonSQS",
    json_error_namespace="com.amazonaws.sqs",
    protocols=("json", "query"),
)
