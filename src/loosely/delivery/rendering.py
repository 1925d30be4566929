"""What each subscriber receives: envelopes, raw bodies, HTTP headers, mail texts, SQS messages.

The fan-out worker renders every delivery once, when it fans a publication out, so a retry resends
exactly the bytes of the first attempt (same signature, same timestamp), as SNS does. A `Renderer`
knows the server's public URL (for SubscribeURL, UnsubscribeURL and SigningCertURL) and the signer.

Choices that follow AWS:

* ``MessageStructure=json``: each protocol takes its own key (``sqs``, ``http``, ``https``, ``email``,
  ``email-json``, ``sms``; a mobile endpoint its platform, e.g. ``GCM``) or else ``default``.
* Notifications carry ``Subject`` only when one was published, ``SequenceNumber`` on FIFO topics, and
  ``MessageAttributes`` unless delivery is raw.
* HTTP/S requests carry ``x-amz-sns-message-type``, ``-message-id``, ``-topic-arn`` and (except on a
  SubscriptionConfirmation) ``-subscription-arn``; raw deliveries add ``x-amz-sns-rawdelivery: true``.
  The content type is the delivery policy's ``headerContentType``, by default ``text/plain; charset=UTF-8``.
* Email: the message text with the unsubscribe footer, subject = the published Subject or
  ``AWS Notification Message``; email-json gets the JSON envelope.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import json
import os
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from loosely.core.queues.models import MessageAttributeValue, SendRequest
from loosely.core.topics import envelope
from loosely.core.topics.delivery_policy import DEFAULT_HEADER_CONTENT_TYPE
from loosely.core.topics.models import (
    PUSH_NOTIFICATION,
    PUSH_SUBSCRIPTION_CONFIRMATION,
    PUSH_UNSUBSCRIBE_CONFIRMATION,
    PublishedMessage,
    PushDelivery,
    Subscription,
)

__all__ = [
    "DEFAULT_EMAIL_SUBJECT",
    "DISPLAY_NAME_HEADER",
    "SNS_SENDER_ID",
    "USER_AGENT",
    "Renderer",
    "SigningKey",
    "SqsRequests",
    "message_for",
]

USER_AGENT = "Amazon Simple Notification Service Agent"
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"
"""The SenderId SQS shows on messages SNS sent (SNS's own principal)."""

DEFAULT_EMAIL_SUBJECT = "AWS Notification Message"
CONFIRMATION_EMAIL_SUBJECT = "AWS Notification - Subscription Confirmation"
DISPLAY_NAME_HEADER = "x-loosely-display-name"
"""On email deliveries: the topic's DisplayName, which the mail transport puts in the From name (not sent)."""

_HTTP = frozenset({"http", "https"})
_TEMPLATES = 128
_UNSIGNED = 256  # envelopes rendered ahead of their signature (two batches of fan-out, with room)
_SIGNING_THREADS = 2
_SIGNING_NICENESS = 10
"""How much lower than the rest of the process the signing threads' CPU priority is (Linux, per thread)."""
_LINKS = 10_000
_EMAIL = frozenset({"email", "email-json"})
_TemplateKey = tuple[str, str, str, str | None, bool]  # message id, text, signature version, sequence, replayed
_KIND_TYPES = {
    PUSH_NOTIFICATION: envelope.NOTIFICATION,
    PUSH_SUBSCRIPTION_CONFIRMATION: envelope.SUBSCRIPTION_CONFIRMATION,
    PUSH_UNSUBSCRIBE_CONFIRMATION: envelope.UNSUBSCRIBE_CONFIRMATION,
}


class SigningKey(envelope.EnvelopeSigner, Protocol):
    """A signer whose certificate the server publishes (`loosely.delivery.signing.Signer`)."""

    @property
    def certificate_name(self) -> str: ...


def message_for(published: PublishedMessage, key: str) -> str:
    """The text one protocol (or platform) receives: with MessageStructure=json its own key, else default."""
    if published.message_structure != "json":
        return published.message
    messages = _structured(published.message)
    if messages is None:
        return published.message
    chosen = messages.get(key, messages.get("default", ""))
    return chosen if isinstance(chosen, str) else json.dumps(chosen)


@functools.lru_cache(maxsize=64)
def _content_digest(message: str) -> str:
    """SHA-256 of a message (content-based deduplication id), once per publication rather than per FIFO queue."""
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=64)
def _structured(message: str) -> dict[str, object] | None:
    """A MessageStructure=json message parsed, once per publication rather than once per subscriber."""
    try:
        messages = json.loads(message)
    except ValueError:
        return None
    return messages if isinstance(messages, dict) else None


def platform_of(endpoint_arn: str) -> str:
    """The platform (APNS, GCM, ...) of a platform endpoint ARN (``...:endpoint/GCM/app/id``)."""
    resource = endpoint_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) > 2 else ""


class _SignatureCache:
    """Signs each canonical string once: every subscriber of a publication gets the same signed fields.

    Only ``UnsubscribeURL`` differs between subscribers, and it is not signed, so fanning one message
    out to a hundred queues costs one RSA signature (about 0.7 ms), not a hundred.
    """

    def __init__(self, signer: envelope.EnvelopeSigner, size: int = 256) -> None:
        self._signer = signer
        self._size = size
        self._recent: OrderedDict[tuple[bytes, str], str] = OrderedDict()

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        key = (string_to_sign, signature_version)
        signature = self._recent.get(key)
        if signature is None:
            signature = self._signer.sign(string_to_sign, signature_version)
            self._keep(key, signature)
        return signature

    async def sign_aside(self, wanted: list[tuple[bytes, str]], pool: ThreadPoolExecutor, jobs: int = 2) -> None:
        """Sign on ``pool`` what is not cached yet, so a later `sign` finds it.

        RSA signing takes about a third of a millisecond and releases the GIL: on threads it overlaps
        with the event loop's work (answering requests) instead of stopping it. The strings go in at
        most ``jobs`` lists, one per thread: a hand-off to a thread costs the loop tens of
        microseconds, which per string would add up to a good part of the signature's own cost.
        """
        todo = list(dict.fromkeys(key for key in wanted if key not in self._recent))
        if not todo:
            return
        loop = asyncio.get_running_loop()
        share = -(-len(todo) // jobs)
        parts = [todo[i : i + share] for i in range(0, len(todo), share)]
        signed = await asyncio.gather(*(loop.run_in_executor(pool, self._sign_all, part) for part in parts))
        for part, signatures in zip(parts, signed, strict=True):
            for key, signature in zip(part, signatures, strict=True):
                self._keep(key, signature)

    def _sign_all(self, keys: list[tuple[bytes, str]]) -> list[str]:
        return [self._signer.sign(string_to_sign, version) for string_to_sign, version in keys]

    def _keep(self, key: tuple[bytes, str], signature: str) -> None:
        self._recent[key] = signature
        if len(self._recent) > self._size:
            self._recent.popitem(last=False)


class _Wanted:
    """A signer that signs nothing: it notes what an envelope would have signed and leaves ``slot`` instead.

    `Renderer.strings_to_sign` renders each envelope once this way; rendering it for a subscriber
    later only puts the signature (base64, the same inside JSON) in the slot.
    """

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self.last: tuple[bytes, str] = (b"", "")

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        self.last = (string_to_sign, signature_version)
        return self.slot


class Renderer:
    """Renders deliveries for one server: its public URL and its signing key."""

    def __init__(self, signer: SigningKey, public_url: str) -> None:
        self._certificate_name = signer.certificate_name
        self._signer = _SignatureCache(signer)
        # Envelopes differ between a publication's subscribers only in UnsubscribeURL (unsigned): each
        # is rendered once with a slot no message can contain (a random nonce), which is then filled.
        self._slot = f"unsubscribe-{secrets.token_hex(16)}"
        self._templates: OrderedDict[_TemplateKey, str] = OrderedDict()
        # Envelopes rendered ahead of their signature (`strings_to_sign`), with a slot for it: the
        # rendered text, and what to sign. Taken by `notification_envelope` once signed.
        self._signature_slot = f"signature-{secrets.token_hex(16)}"
        self._unsigned: OrderedDict[_TemplateKey, tuple[str, bytes, str]] = OrderedDict()
        self._links: dict[str, str] = {}  # subscription ARN -> its UnsubscribeURL, JSON-escaped
        self._pool: ThreadPoolExecutor | None = None
        self.public_url = ""
        self.signing_cert_url = ""
        self.set_public_url(public_url)

    def set_public_url(self, public_url: str) -> None:
        """Where this server is reached (once known: a server on port 0 learns its port after start)."""
        self.public_url = public_url.rstrip("/")
        self.signing_cert_url = f"{self.public_url}/{self._certificate_name}"
        self._templates.clear()
        self._unsigned.clear()
        self._links.clear()

    def close(self) -> None:
        """Stop the signing threads (if any were started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ---- notifications ----

    async def presign(self, published: PublishedMessage, text: str, signature_version: str) -> None:
        """Sign a notification's envelope off the event loop, so rendering it for each subscriber finds
        the signature made. Rendering without this still works: it signs in line."""
        await self.presign_many([(published, text, signature_version)])

    async def presign_many(self, wanted: Sequence[tuple[PublishedMessage, str, str]]) -> None:
        """`presign` for many envelopes (message, text, signature version) at once: one job per signing thread."""
        await self.sign_ahead(self.strings_to_sign(wanted))

    def strings_to_sign(self, wanted: Sequence[tuple[PublishedMessage, str, str]]) -> list[tuple[bytes, str]]:
        """What `sign_ahead` must sign for these envelopes (message, text, signature version): none made yet.

        Each envelope is rendered here, once, with a slot where its signature goes: rendering it for
        its subscribers afterwards (`notification_envelope`) only fills the slot.
        """
        strings: list[tuple[bytes, str]] = []
        wanting = _Wanted(self._signature_slot)
        for published, text, signature_version in wanted:
            key = (published.message_id, text, signature_version, None, published.replay_subscription is not None)
            if key in self._templates or key in self._unsigned:
                continue
            document = self._notification(published, text, signature_version, wanting, None, key[4])
            self._unsigned[key] = (envelope.render(document), *wanting.last)
            if len(self._unsigned) > _UNSIGNED:
                self._unsigned.popitem(last=False)
            strings.append(wanting.last)
        return strings

    def _notification(
        self,
        published: PublishedMessage,
        text: str,
        signature_version: str,
        signer: envelope.EnvelopeSigner,
        sequence_number: str | None = None,
        replayed: bool = False,
    ) -> envelope.Envelope:
        """The Notification envelope of ``published`` with the unsubscribe URL left as a slot."""
        return envelope.notification(
            message_id=published.message_id,
            topic_arn=published.topic_arn,
            message=text,
            timestamp_ms=published.timestamp_ms,
            signing_cert_url=self.signing_cert_url,
            unsubscribe_url=self._slot,
            signer=signer,
            signature_version=signature_version,
            subject=published.subject,
            message_attributes=published.attributes,
            sequence_number=sequence_number,
            replayed=replayed,
        )

    async def sign_ahead(self, strings: list[tuple[bytes, str]]) -> None:
        """Sign these (string to sign, signature version) pairs on the signing threads, for rendering to find."""
        if not strings:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=_SIGNING_THREADS, thread_name_prefix="loosely-sign", initializer=_lower_priority
            )
        await self._signer.sign_aside(strings, self._pool, _SIGNING_THREADS)

    def notification_envelope(
        self,
        published: PublishedMessage,
        subscription_arn: str,
        text: str,
        signature_version: str,
        sequence_number: str | None = None,
    ) -> str:
        """The signed Notification JSON a subscriber receives (unless its delivery is raw)."""
        return self.template(published, text, signature_version, sequence_number).replace(
            self._slot, self.unsubscribe_link(subscription_arn), 1
        )

    def template(
        self, published: PublishedMessage, text: str, signature_version: str, sequence_number: str | None = None
    ) -> str:
        """The signed Notification JSON with the unsubscribe URL left as a slot (`unsubscribe_slot`)."""
        replayed = published.replay_subscription is not None
        key = (published.message_id, text, signature_version, sequence_number, replayed)
        template = self._templates.get(key)
        if template is None:
            unsigned = self._unsigned.pop(key, None)
            if unsigned is not None:
                rendered, string_to_sign, version = unsigned
                template = rendered.replace(self._signature_slot, self._signer.sign(string_to_sign, version), 1)
            else:
                document = self._notification(
                    published, text, signature_version, self._signer, sequence_number, replayed
                )
                template = envelope.render(document)
            self._templates[key] = template
            if len(self._templates) > _TEMPLATES:
                self._templates.popitem(last=False)
        return template

    @property
    def unsubscribe_slot(self) -> str:
        """What stands in a `template` for a subscriber's UnsubscribeURL (`unsubscribe_link`)."""
        return self._slot

    def unsubscribe_link(self, subscription_arn: str) -> str:
        """A subscription's UnsubscribeURL as it sits inside a JSON string, made once per subscription."""
        link = self._links.get(subscription_arn)
        if link is None:
            url = envelope.unsubscribe_url(self.public_url, subscription_arn)
            link = json.dumps(url, ensure_ascii=False)[1:-1]
            if len(self._links) >= _LINKS:
                self._links.clear()
            self._links[subscription_arn] = link
        return link

    def push_notification(
        self,
        published: PublishedMessage,
        subscription: Subscription,
        topic_attributes: Mapping[str, str],
        content_type: str | None = None,
    ) -> PushDelivery:
        """A rendered push delivery of a topic's message to an http/https/email/sms/application subscriber."""
        protocol = subscription.protocol
        key = platform_of(subscription.endpoint) if protocol == "application" else protocol
        text = message_for(published, key)
        raw = protocol in _HTTP and _is_raw(subscription)
        version = topic_attributes.get("SignatureVersion") or "1"
        headers: dict[str, str] = {}
        subject: str | None = published.subject
        if protocol in _HTTP:
            body = text if raw else self.notification_envelope(published, subscription.arn, text, version)
            headers = self.http_headers(
                envelope.NOTIFICATION, published.message_id, published.topic_arn, subscription.arn
            )
            headers["content-type"] = content_type or DEFAULT_HEADER_CONTENT_TYPE
            if raw:
                headers["x-amz-sns-rawdelivery"] = "true"
        elif protocol == "email-json":
            body = self.notification_envelope(published, subscription.arn, text, version)
            subject = DEFAULT_EMAIL_SUBJECT
            headers = _display_name(topic_attributes)
        elif protocol == "email":
            body = self.email_text(text, subscription.arn)
            subject = published.subject or DEFAULT_EMAIL_SUBJECT
            headers = _display_name(topic_attributes)
        else:  # sms, application: the provider gets the bare text
            body = text
        return PushDelivery(
            kind=PUSH_NOTIFICATION,
            protocol=protocol,
            endpoint=subscription.endpoint,
            topic_arn=published.topic_arn,
            message_id=published.message_id,
            body=body,
            headers=headers,
            subject=subject,
            subscription_arn=subscription.arn,
            timestamp_ms=published.timestamp_ms,
        )

    def email_text(self, text: str, subscription_arn: str) -> str:
        """An email notification: the message and the footer with the unsubscribe link, as SNS writes it."""
        return (
            f"{text}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit "
            f"the link below to unsubscribe:\n{envelope.unsubscribe_url(self.public_url, subscription_arn)}\n\n"
            "Please do not reply directly to this email. If you have any questions or comments regarding this "
            "email, please contact your loosely administrator.\n"
        )

    @staticmethod
    def http_headers(
        message_type: str, message_id: str, topic_arn: str, subscription_arn: str | None
    ) -> dict[str, str]:
        headers = {
            "x-amz-sns-message-type": message_type,
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": topic_arn,
        }
        if subscription_arn is not None:
            headers["x-amz-sns-subscription-arn"] = subscription_arn
        headers["user-agent"] = USER_AGENT
        return headers

    # ---- SQS ----

    def sqs_request(
        self,
        published: PublishedMessage,
        subscription: Subscription,
        signature_version: str,
        sequence_number: str | None,
        fifo_queue: bool,
    ) -> SendRequest:
        """The SendMessage an SQS subscriber's queue gets: the envelope, or the raw message and its attributes."""
        return self.sqs_requests(published, signature_version, sequence_number).request(subscription, fifo_queue)

    def sqs_requests(
        self, published: PublishedMessage, signature_version: str, sequence_number: str | None
    ) -> SqsRequests:
        """What one publication sends its SQS subscribers (`sqs_request` for each of them, sharing the work)."""
        return SqsRequests(self, published, signature_version, sequence_number)

    # ---- confirmations ----

    def confirmation(self, push: PushDelivery, signature_version: str = "1") -> PushDelivery:
        """Render a Subscription/UnsubscribeConfirmation recorded unrendered by the TopicService.

        http/https get the signed JSON with SNS's headers, email-json the JSON as the mail body, email a
        plain-text mail with the confirmation link, and an SQS queue (another account's) the JSON.
        """
        if push.token is None or push.kind not in (PUSH_SUBSCRIPTION_CONFIRMATION, PUSH_UNSUBSCRIBE_CONFIRMATION):
            return push
        document = self._confirmation_envelope(push, signature_version)
        link = str(document["SubscribeURL"])
        headers: dict[str, str] = {}
        subject = None
        body = envelope.render(document)
        if push.protocol in _HTTP:
            sub_arn = push.subscription_arn if push.kind == PUSH_UNSUBSCRIBE_CONFIRMATION else None
            headers = self.http_headers(str(document["Type"]), push.message_id, push.topic_arn, sub_arn)
            headers["content-type"] = DEFAULT_HEADER_CONTENT_TYPE
        elif push.protocol in _EMAIL:
            subject = CONFIRMATION_EMAIL_SUBJECT
            if push.protocol == "email":
                body = confirmation_email_text(push.topic_arn, link)
        return PushDelivery(
            kind=push.kind,
            protocol=push.protocol,
            endpoint=push.endpoint,
            topic_arn=push.topic_arn,
            message_id=push.message_id,
            body=body,
            headers=headers,
            subject=subject,
            subscription_arn=push.subscription_arn,
            token=push.token,
            timestamp_ms=push.timestamp_ms,
        )

    def _confirmation_envelope(self, push: PushDelivery, signature_version: str) -> envelope.Envelope:
        assert push.token is not None
        link = envelope.subscribe_url(self.public_url, push.topic_arn, push.token)
        timestamp = push.timestamp_ms or 0
        if push.kind == PUSH_SUBSCRIPTION_CONFIRMATION:
            return envelope.subscription_confirmation(
                message_id=push.message_id,
                topic_arn=push.topic_arn,
                token=push.token,
                subscribe_url=link,
                timestamp_ms=timestamp,
                signing_cert_url=self.signing_cert_url,
                signer=self._signer,
                signature_version=signature_version,
            )
        return envelope.unsubscribe_confirmation(
            message_id=push.message_id,
            topic_arn=push.topic_arn,
            subscription_arn=push.subscription_arn or push.endpoint,
            token=push.token,
            subscribe_url=link,
            timestamp_ms=timestamp,
            signing_cert_url=self.signing_cert_url,
            signer=self._signer,
            signature_version=signature_version,
        )


class SqsRequests:
    """The SendMessage requests one publication makes of its SQS subscribers, with what they share made once.

    Every subscriber without raw delivery gets the same envelope but for its ``UnsubscribeURL``;
    every raw subscriber gets the same text and attributes. `body_parts` gives a subscriber's body
    as ``prefix + link + suffix``, where only ``link`` depends on the subscriber (empty for raw
    delivery), so the queue side can work out what the bodies have in common once too
    (`loosely.delivery.sqs.SharedBody`).
    """

    __slots__ = (
        "_envelope",
        "_published",
        "_raw_attributes",
        "_renderer",
        "_sequence_number",
        "_signature_version",
        "_system",
        "text",
    )

    def __init__(
        self, renderer: Renderer, published: PublishedMessage, signature_version: str, sequence_number: str | None
    ) -> None:
        self._renderer = renderer
        self._published = published
        self._signature_version = signature_version
        self._sequence_number = sequence_number
        self.text = message_for(published, "sqs")
        self._envelope: tuple[str, str] | None = None  # the envelope before and after its UnsubscribeURL
        self._raw_attributes: dict[str, MessageAttributeValue] | None = None
        trace = published.trace_header
        self._system = {"AWSTraceHeader": MessageAttributeValue("String", string_value=trace)} if trace else {}

    def body_parts(self, subscription: Subscription) -> tuple[str, str, str]:
        """The subscriber's body as (prefix, link, suffix): only ``link`` differs between subscribers."""
        if _is_raw(subscription):
            return self.text, "", ""
        envelope_parts = self._envelope
        if envelope_parts is None:
            renderer = self._renderer
            template = renderer.template(self._published, self.text, self._signature_version, self._sequence_number)
            head, _, tail = template.partition(renderer.unsubscribe_slot)
            envelope_parts = self._envelope = (head, tail)
        return envelope_parts[0], self._renderer.unsubscribe_link(subscription.arn), envelope_parts[1]

    def request(
        self, subscription: Subscription, fifo_queue: bool, parts: tuple[str, str, str] | None = None
    ) -> SendRequest:
        """The SendMessage for one subscriber's queue (``parts``: its `body_parts`, when already known)."""
        prefix, link, suffix = parts or self.body_parts(subscription)
        attributes: dict[str, MessageAttributeValue] = {}
        if _is_raw(subscription):
            attributes = self.raw_attributes()
        published = self._published
        # From a standard topic the group id reaches standard queues too (fair queues); a FIFO topic's
        # groups order FIFO queues only, as AWS does.
        group_id = published.group_id if fifo_queue or not published.topic_arn.endswith(".fifo") else None
        dedup_id = None
        if fifo_queue:
            dedup_id = published.dedup_id or _content_digest(published.message)
        return SendRequest(
            body=prefix + link + suffix,
            message_attributes=attributes,
            system_attributes=self._system,
            group_id=group_id,
            deduplication_id=dedup_id,
        )

    def raw_attributes(self) -> dict[str, MessageAttributeValue]:
        """The published attributes as SQS message attributes, made once (raw delivery carries them over)."""
        if self._raw_attributes is None:
            self._raw_attributes = sqs_attributes(self._published.attributes)
        return self._raw_attributes


def confirmation_email_text(topic_arn: str, link: str) -> str:
    """The plain-text confirmation mail of an email subscription, worded as SNS words it."""
    return (
        f"You have chosen to subscribe to the topic: \n{topic_arn}\n\n"
        "To confirm this subscription, click or visit the link below (If this was in error no action is "
        f"necessary): \n{link}\n\n"
        "Please do not reply directly to this email. If you wish to remove yourself from receiving all future "
        "SNS subscription confirmation requests please contact your loosely administrator.\n"
    )


def sqs_attributes(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, MessageAttributeValue]:
    """Published attributes as SQS message attributes (raw delivery carries them over)."""
    out: dict[str, MessageAttributeValue] = {}
    for name, value in attributes.items():
        data_type = value["Type"]
        if data_type.startswith("Binary"):
            out[name] = MessageAttributeValue(data_type, binary_value=_b64(value["Value"]))
        else:
            out[name] = MessageAttributeValue(data_type, string_value=value["Value"])
    return out


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8")


def _is_raw(subscription: Subscription) -> bool:
    return subscription.attributes.get("RawMessageDelivery", "false").lower() == "true"


def _display_name(topic_attributes: Mapping[str, str]) -> dict[str, str]:
    name = topic_attributes.get("DisplayName")
    return {DISPLAY_NAME_HEADER: name} if name else {}


def _lower_priority() -> None:
    """Give the calling (signing) thread a lower CPU priority: requests win the CPU from signatures.

    Signatures are fan-out's, background work, and take most of its CPU (a third of a millisecond
    or more each, beside the event loop, since they release the GIL). When the loop (answering
    requests) or the SQLite writer's thread (committing them) are ready to run at the same moment
    as a signing thread, on a machine with few cores, the scheduler shared the CPU out evenly:
    requests waited for signatures, and a chunk of fan-out holding the writer took several times
    its own CPU time to finish. At a lower priority the signing threads get whatever CPU the rest
    leaves, and all of it when the process has nothing else to do. Linux only (there
    ``setpriority`` on a thread id sets that thread's niceness); elsewhere, or where it is not
    permitted, the threads keep the process's priority.
    """
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + _SIGNING_NICENESS))
    except OSError:
        pass
