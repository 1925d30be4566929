"""The JSON documents SNS pushes: Notification, SubscriptionConfirmation, UnsubscribeConfirmation.

These bodies reach HTTP/S endpoints, email-json inboxes and (unless RawMessageDelivery) SQS queues,
where receivers parse them and often verify their signature. So the keys, their order, the
timestamp form and the text of the confirmation messages follow AWS's documented examples, and
`string_to_sign` builds exactly the canonical string AWS documents for verifiers:

* Notification: ``Message``, ``MessageId``, ``Subject`` (only when present), ``Timestamp``,
  ``TopicArn``, ``Type``;
* SubscriptionConfirmation and UnsubscribeConfirmation: ``Message``, ``MessageId``, ``SubscribeURL``,
  ``Timestamp``, ``Token``, ``TopicArn``, ``Type``;

each written as ``name + "\\n" + value + "\\n"``. Signing itself needs a private key and lives outside
the core (`loosely.delivery.signing`); builders here take any `EnvelopeSigner`.

`render` writes an envelope the way SNS does on the wire: two-space indented, with ``" : "`` between
a key and its value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import quote

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

SIGNATURE_VERSIONS = frozenset({"1", "2"})
"""1 = SHA1withRSA (the default), 2 = SHA256withRSA; chosen by the topic's SignatureVersion attribute."""

_NOTIFICATION_SIGNED_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_SIGNED_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")

Envelope = dict[str, object]
"""An envelope: string values, plus ``MessageAttributes`` (name -> {"Type", "Value"}) on notifications."""


class EnvelopeSigner(Protocol):
    """Signs the canonical string of an envelope; returns the base64 signature."""

    def sign(self, string_to_sign: bytes, signature_version: str) -> str: ...


def iso_timestamp(epoch_ms: int) -> str:
    """An instant as SNS writes it: ISO 8601 in UTC with milliseconds and a ``Z``.

    From `time.gmtime` rather than a `datetime`, whose construction and ``strftime`` cost three
    times as much (once per publication fanned out).
    """
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)) + f"{millis:03d}Z"


def subscription_confirmation_text(topic_arn: str) -> str:
    """The ``Message`` of a SubscriptionConfirmation, worded as AWS words it."""
    return (
        f"You have chosen to subscribe to the topic {topic_arn}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )


def unsubscribe_confirmation_text(subscription_arn: str) -> str:
    """The ``Message`` of an UnsubscribeConfirmation, worded as AWS words it."""
    return (
        f"You have chosen to deactivate subscription {subscription_arn}.\n"
        "To cancel this operation and restore the subscription, visit the SubscribeURL included in this message."
    )


def subscribe_url(base_url: str, topic_arn: str, token: str) -> str:
    """The SubscribeURL: a GET of it confirms the subscription (``Action=ConfirmSubscription``)."""
    return f"{_endpoint(base_url)}?Action=ConfirmSubscription&TopicArn={_q(topic_arn)}&Token={_q(token)}"


def unsubscribe_url(base_url: str, subscription_arn: str) -> str:
    """The UnsubscribeURL: a GET of it removes the subscription (``Action=Unsubscribe``)."""
    return f"{_endpoint(base_url)}?Action=Unsubscribe&SubscriptionArn={_q(subscription_arn)}"


def _endpoint(base_url: str) -> str:
    return base_url if base_url.endswith("/") else base_url + "/"


def _q(value: str) -> str:
    """Percent-encode a query value, keeping the colons of ARNs readable as AWS does."""
    return quote(value, safe=":")


def notification(
    *,
    message_id: str,
    topic_arn: str,
    message: str,
    timestamp_ms: int,
    signing_cert_url: str,
    unsubscribe_url: str,
    signer: EnvelopeSigner,
    signature_version: str = "1",
    subject: str | None = None,
    message_attributes: Mapping[str, Mapping[str, str]] | None = None,
    sequence_number: str | None = None,
    replayed: bool = False,
) -> Envelope:
    """A Notification envelope, signed unless it comes from a FIFO topic.

    ``Subject`` appears only when given and ``MessageAttributes`` only when there are some, each as
    ``{"Type": ..., "Value": ...}`` (Binary values are already base64 text). A FIFO topic's
    notification (``sequence_number`` given) carries ``SequenceNumber`` right after ``MessageId`` and
    no ``SignatureVersion``, ``Signature`` or ``SigningCertURL``: that is what SQS subscribers of FIFO
    topics receive from AWS.
    """
    _check_version(signature_version)
    envelope: Envelope = {"Type": NOTIFICATION, "MessageId": message_id}
    if sequence_number is not None:
        envelope["SequenceNumber"] = sequence_number
    envelope["TopicArn"] = topic_arn
    if subject is not None:
        envelope["Subject"] = subject
    envelope["Message"] = message
    envelope["Timestamp"] = iso_timestamp(timestamp_ms)
    if replayed:  # a message replayed from a FIFO topic's archive (`loosely.core.topics.archive`)
        envelope["Replayed"] = True
    if sequence_number is None:
        envelope["SignatureVersion"] = signature_version
        envelope["Signature"] = signer.sign(string_to_sign(envelope), signature_version)
        envelope["SigningCertURL"] = signing_cert_url
    envelope["UnsubscribeURL"] = unsubscribe_url
    if message_attributes:
        envelope["MessageAttributes"] = {
            name: {"Type": value["Type"], "Value": value["Value"]} for name, value in message_attributes.items()
        }
    return envelope


def subscription_confirmation(
    *,
    message_id: str,
    topic_arn: str,
    token: str,
    subscribe_url: str,
    timestamp_ms: int,
    signing_cert_url: str,
    signer: EnvelopeSigner,
    signature_version: str = "1",
) -> Envelope:
    """A signed SubscriptionConfirmation: visit ``SubscribeURL`` (or ConfirmSubscription the ``Token``)."""
    return _confirmation(
        kind=SUBSCRIPTION_CONFIRMATION,
        message=subscription_confirmation_text(topic_arn),
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        subscribe_url=subscribe_url,
        timestamp_ms=timestamp_ms,
        signing_cert_url=signing_cert_url,
        signer=signer,
        signature_version=signature_version,
    )


def unsubscribe_confirmation(
    *,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    token: str,
    subscribe_url: str,
    timestamp_ms: int,
    signing_cert_url: str,
    signer: EnvelopeSigner,
    signature_version: str = "1",
) -> Envelope:
    """A signed UnsubscribeConfirmation; its ``SubscribeURL`` restores the subscription."""
    return _confirmation(
        kind=UNSUBSCRIBE_CONFIRMATION,
        message=unsubscribe_confirmation_text(subscription_arn),
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        subscribe_url=subscribe_url,
        timestamp_ms=timestamp_ms,
        signing_cert_url=signing_cert_url,
        signer=signer,
        signature_version=signature_version,
    )


def _confirmation(
    *,
    kind: str,
    message: str,
    message_id: str,
    topic_arn: str,
    token: str,
    subscribe_url: str,
    timestamp_ms: int,
    signing_cert_url: str,
    signer: EnvelopeSigner,
    signature_version: str,
) -> Envelope:
    _check_version(signature_version)
    envelope: Envelope = {
        "Type": kind,
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": message,
        "SubscribeURL": subscribe_url,
        "Timestamp": iso_timestamp(timestamp_ms),
        "SignatureVersion": signature_version,
    }
    envelope["Signature"] = signer.sign(string_to_sign(envelope), signature_version)
    envelope["SigningCertURL"] = signing_cert_url
    return envelope


def _check_version(signature_version: str) -> None:
    if signature_version not in SIGNATURE_VERSIONS:
        raise ValueError(f"unknown SNS SignatureVersion {signature_version!r}")


def string_to_sign(envelope: Mapping[str, object]) -> bytes:
    """The canonical bytes SNS signs (and verifiers rebuild) for an envelope of any of the three types.

    Raises:
        ValueError: the envelope's ``Type`` is not one SNS signs, or a field it needs is missing.
    """
    kind = envelope.get("Type")
    names: tuple[str, ...]
    if kind == NOTIFICATION:
        names = _NOTIFICATION_SIGNED_FIELDS
    elif kind in (SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION):
        names = _CONFIRMATION_SIGNED_FIELDS
    else:
        raise ValueError(f"cannot sign an envelope of Type {kind!r}")
    parts: list[str] = []
    for name in names:
        value = envelope.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise ValueError(f"envelope lacks {name}")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def render(envelope: Mapping[str, object]) -> str:
    """The envelope as SNS sends it: indented by two spaces, ``"Key" : value``, non-ASCII kept as is.

    Exactly ``json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)``, written
    here for what envelopes hold (text, and mappings of text): the standard library encodes indented
    JSON in Python, not C, which cost every publication tens of microseconds. Anything else goes to
    ``json.dumps``.
    """
    try:
        return _render_value(envelope, 1)
    except TypeError:
        return json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)


_encode_text = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes for a str


def _render_value(value: object, depth: int) -> str:
    if type(value) is str:
        return _encode_text(value)
    if not isinstance(value, dict):
        raise TypeError(type(value).__name__)
    if not value:
        return "{}"
    pad = "\n" + "  " * depth
    # Text members in line, the common case; a key that is not text raises TypeError in the encoder.
    members = [
        f"{_encode_text(key)} : {_encode_text(member) if type(member) is str else _render_value(member, depth + 1)}"
        for key, member in value.items()
    ]
    return "{" + pad + ("," + pad).join(members) + "\n" + "  " * (depth - 1) + "}"
