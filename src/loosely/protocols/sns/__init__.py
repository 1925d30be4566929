"""SNS on the wire: Query/XML only (``Action=...&Version=2010-03-31``), errors as XML ``ErrorResponse``."""

from __future__ import annotations

from loosely.protocols.model import load_service_model
from loosely.protocols.service import ServiceSpec
from loosely.protocols.sns.errors import SNS_ERROR_TABLE
from loosely.protocols.sns.operations import SNS_OPERATIONS

__all__ = ["SNS"]

SNS = ServiceSpec(
    signing_name="sns",
    model=load_service_model("sns-2010-03-31"),
    operations=SNS_OPERATIONS,
    errors=SNS_ERROR_TABLE,
    protocols=("query",),
)
