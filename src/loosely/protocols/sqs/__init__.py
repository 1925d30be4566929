"""SQS on the wire: AWS JSON 1.0 (``X-Amz-Target: AmazonSQS.<Op>``) and Query (``Version=2012-11-05``)."""

from __future__ import annotations

from loosely.protocols.model import load_service_model
from loosely.protocols.service import ServiceSpec
from loosely.protocols.sqs.errors import SQS_ERROR_TABLE
from loosely.protocols.sqs.operations import SQS_OPERATIONS

__all__ = ["SQS"]

SQS = ServiceSpec(
    signing_name="sqs",
    model=load_service_model("sqs-2012-11-05"),
    operations=SQS_OPERATIONS,
    errors=SQS_ERROR_TABLE,
    json_target_prefix="AmazonSQS",
    json_error_namespace="com.amazonaws.sqs",
    protocols=("json", "query"),
)
