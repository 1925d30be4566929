"""Values that cross the TopicService's boundary: who calls, what a publish asks, what comes back.

Records that are stored (topics, subscriptions) live in `loosely.core.topics.models`; the kinds of
the other documents SNS keeps (lookup keys, tokens, platform and SMS resources) are named here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Generic, TypeVar

from loosely.core.batches import BatchResult
from loosely.core.frozen import record

T = TypeVar("T")

# Document kinds besides TOPIC_KIND and SUBSCRIPTION_KIND (models.py).
SUBSCRIPTION_KEY_KIND = "sns-subscription-key"  # topic + protocol + endpoint -> subscription ARN (idempotence)
TOKEN_KIND = "sns-token"  # confirmation token -> subscription (parent: topic ARN)
APPLICATION_KIND = "sns-platform-application"
ENDPOINT_KIND = "sns-platform-endpoint"  # parent: application ARN
ENDPOINT_TOKEN_KIND = "sns-platform-endpoint-token"  # application + device token -> endpoint ARN
SMS_ATTRIBUTES_KIND = "sns-sms-attributes"  # key: account:region
OPTED_OUT_KIND = "sns-sms-opted-out"  # key: account/phone
SANDBOX_NUMBER_KIND = "sns-sms-sandbox-number"  # key: account:region/phone
OPT_IN_KIND = "sns-sms-opt-in"  # key: account/phone; when the number was last opted in


@record
class AccountScope:
    """The caller's account and the region its request was signed for."""

    account_id: str
    region: str

    @property
    def arn_prefix(self) -> str:
        """The start of every SNS ARN of this account in this region."""
        return f"arn:aws:sns:{self.region}:{self.account_id}:"


@record
class TopicSettings:
    """Deployment choices; the defaults are AWS's."""

    dedup_window_ms: int = 5 * 60 * 1000
    confirmation_token_ttl_ms: int = 3 * 24 * 3600 * 1000  # a confirmation link works for three days
    sms_sandbox: bool = False  # True: SMS only to verified sandbox numbers, as in a new AWS account
    max_sandbox_numbers: int = 10


@record
class AttributeValue:
    """A message attribute as published: ``data_type`` and one of the two values."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None


@record
class PublishRequest:
    """One Publish, or one PublishBatch entry (which names its topic on the batch)."""

    message: str
    topic_arn: str | None = None
    target_arn: str | None = None
    phone_number: str | None = None
    subject: str | None = None
    message_structure: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    group_id: str | None = None
    dedup_id: str | None = None
    trace_header: str | None = None  # the request's X-Amzn-Trace-Id, passed on to SQS as AWSTraceHeader


@record
class Published:
    message_id: str
    sequence_number: str | None = None


BatchOutcome = BatchResult
"""What PublishBatch answers: the same per-entry outcome as the SQS batch calls."""


@record
class Page(Generic[T]):
    """One page of a listing; ``next_token`` is None on the last page."""

    items: Sequence[T]
    next_token: str | None = None


@record
class SubscriptionView:
    """A subscription as the List actions show it (``PendingConfirmation`` in place of a pending ARN)."""

    subscription_arn: str
    owner: str
    protocol: str
    endpoint: str
    topic_arn: str


@record
class PlatformResource:
    """A platform application or endpoint: its ARN and its attributes as Get*Attributes return them."""

    arn: str
    attributes: Mapping[str, str]


@record
class SandboxNumber:
    phone_number: str
    status: str  # Pending | Verified
