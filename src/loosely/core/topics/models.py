"""SNS records and the payloads that travel through the outbox.

Topics and subscriptions are stored as documents (`loosely.core.documents`): kind ``sns-topic``
keyed by topic ARN, kind ``sns-subscription`` keyed by subscription ARN with the topic ARN as
parent. Their JSON form is defined here, once, by ``to_json``/``from_json``.

A publish records a `PublishedMessage` as an outbox publication payload. The fan-out worker
turns it into SQS messages and `PushDelivery` payloads (one per http/https/email/sms/application
subscription that matched).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, field

from loosely.core.frozen import record

_text = json.encoder.encode_basestring_ascii  # what json.dumps (ensure_ascii) writes for a str

TOPIC_KIND = "sns-topic"
SUBSCRIPTION_KIND = "sns-subscription"


@record
class TopicKey:
    account_id: str
    region: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:sns:{self.region}:{self.account_id}:{self.name}"

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @classmethod
    def from_arn(cls, arn: str) -> TopicKey | None:
        """The key an SNS topic ARN names, or None when ``arn`` is not one."""
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
            return None
        return cls(account_id=parts[4], region=parts[3], name=parts[5])


@record
class Topic:
    arn: str
    attributes: Mapping[str, str]  # settable attributes as GetTopicAttributes returns them
    tags: Mapping[str, str]
    created_ms: int
    # Tells this topic from an earlier one of the same ARN (deleted, then created again), whose
    # FIFO deduplication history must not apply to it. Empty for topics stored before it existed.
    instance_id: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "arn": self.arn,
                "attributes": dict(self.attributes),
                "tags": dict(self.tags),
                "created_ms": self.created_ms,
                "instance_id": self.instance_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Topic:
        d = json.loads(text)
        return cls(
            arn=d["arn"],
            attributes=d["attributes"],
            tags=d["tags"],
            created_ms=d["created_ms"],
            instance_id=d.get("instance_id", ""),
        )


@record
class Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    owner: str  # account id
    attributes: Mapping[
        str, str
    ]  # RawMessageDelivery, FilterPolicy, FilterPolicyScope, DeliveryPolicy, RedrivePolicy, ...
    confirmed: bool
    token: str | None  # confirmation token while pending
    created_ms: int

    def to_json(self) -> str:
        d = asdict(self)
        d["attributes"] = dict(self.attributes)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Subscription:
        return cls(**json.loads(text))


@record  # built once per Publish and once more when fanned out
class PublishedMessage:
    """The outbox payload of one Publish (or one PublishBatch entry)."""

    message_id: str
    topic_arn: str
    message: str
    timestamp_ms: int
    subject: str | None = None
    message_structure: str | None = None  # "json": per-protocol messages in ``message``
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name -> {"Type", "Value"}
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None
    # A replay's redelivery of an archived message: to this subscription only, marked as replayed.
    replay_subscription: str | None = None
    # The Publish request's X-Amzn-Trace-Id: SQS subscribers' messages carry it as AWSTraceHeader.
    trace_header: str | None = None

    def to_json(self) -> str:
        """The payload as ``json.dumps`` of its fields writes it (once per Publish), written out by hand.

        Field by field, with json's own string encoder: the same text as `_to_json_dumps`, in half
        the time. Fields that are not text where text is expected go to ``json.dumps``.
        """
        if type(self.timestamp_ms) is not int:
            return self._to_json_dumps()
        try:
            attributes = ", ".join(
                f"{_text(name)}: {{{', '.join(f'{_text(k)}: {_text(v)}' for k, v in value.items())}}}"
                for name, value in self.attributes.items()
            )
            text = (
                f'{{"message_id": {_text(self.message_id)}, "topic_arn": {_text(self.topic_arn)}, '
                f'"message": {_text(self.message)}, "timestamp_ms": {self.timestamp_ms!r}, '
                f'"subject": {_optional(self.subject)}, "message_structure": {_optional(self.message_structure)}, '
                f'"attributes": {{{attributes}}}, "group_id": {_optional(self.group_id)}, '
                f'"dedup_id": {_optional(self.dedup_id)}, "sequence_number": {_optional(self.sequence_number)}'
            )
            # Written only when set: a node of an earlier release (rolling upgrade) still reads every other payload.
            if self.replay_subscription is not None:
                text += f', "replay_subscription": {_text(self.replay_subscription)}'
            if self.trace_header is not None:
                text += f', "trace_header": {_text(self.trace_header)}'
        except TypeError:
            return self._to_json_dumps()
        return text + "}"

    def _to_json_dumps(self) -> str:
        # Field by field rather than `asdict`, whose deep copy cost more than the encoding.
        extra: dict[str, str] = {}
        if self.replay_subscription is not None:
            extra["replay_subscription"] = self.replay_subscription
        if self.trace_header is not None:
            extra["trace_header"] = self.trace_header
        return json.dumps(
            {
                "message_id": self.message_id,
                "topic_arn": self.topic_arn,
                "message": self.message,
                "timestamp_ms": self.timestamp_ms,
                "subject": self.subject,
                "message_structure": self.message_structure,
                "attributes": {k: dict(v) for k, v in self.attributes.items()},
                "group_id": self.group_id,
                "dedup_id": self.dedup_id,
                "sequence_number": self.sequence_number,
                **extra,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PublishedMessage:
        return cls(**json.loads(text))


@record
class PushDelivery:
    """The outbox payload of one push delivery: what the transport sends, already rendered.

    ``kind`` is notification, subscription-confirmation or unsubscribe-confirmation. ``body`` is
    the exact request body (a signed JSON envelope, or the raw message when RawMessageDelivery);
    ``headers`` the HTTP headers AWS adds; for email, ``subject`` and ``body`` make the mail.
    """

    kind: str
    protocol: str
    endpoint: str
    topic_arn: str
    message_id: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    subject: str | None = None
    # Confirmations are recorded by the TopicService unrendered (``body`` empty): the delivery side
    # renders and signs the envelope from these, with the server's public URL for SubscribeURL.
    subscription_arn: str | None = None
    token: str | None = None
    timestamp_ms: int | None = None

    def to_json(self) -> str:
        # Field by field rather than `asdict` (a deep copy): one per push delivery fanned out.
        return json.dumps(
            {
                "kind": self.kind,
                "protocol": self.protocol,
                "endpoint": self.endpoint,
                "topic_arn": self.topic_arn,
                "message_id": self.message_id,
                "body": self.body,
                "headers": dict(self.headers),
                "subject": self.subject,
                "subscription_arn": self.subscription_arn,
                "token": self.token,
                "timestamp_ms": self.timestamp_ms,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PushDelivery:
        return cls(**json.loads(text))


def _optional(value: str | None) -> str:
    return "null" if value is None else _text(value)


# PushDelivery.kind values.
PUSH_NOTIFICATION = "notification"
PUSH_SUBSCRIPTION_CONFIRMATION = "subscription-confirmation"
PUSH_UNSUBSCRIBE_CONFIRMATION = "unsubscribe-confirmation"
PUSH_SMS_VERIFICATION = "sms-verification"  # a sandbox number's one-time password, sent as an SMS


def decode_publication(payload: str) -> PublishedMessage | PushDelivery:
    """An outbox publication's payload: a topic's `PublishedMessage` to fan out, or one `PushDelivery`.

    The TopicService records a `PushDelivery` directly (as the one delivery of its publication) for what
    goes to a single endpoint rather than to a topic's subscribers: subscription and unsubscribe
    confirmations, Publish to a phone number or to a platform endpoint, and sandbox verification codes.
    Its ``endpoint`` doubles as the delivery's ``subscription_arn`` when ``subscription_arn`` is None.
    """
    data = json.loads(payload)
    if "kind" in data:
        return PushDelivery(**data)
    return PublishedMessage(**data)


def sequence_number(sequence: int) -> str:
    """A FIFO topic's SequenceNumber for the outbox sequence of its publication (20 decimal digits)."""
    return f"{sequence:020d}"
