"""Publish and PublishBatch: validate, then record one outbox publication per message.

The publish path is one topic read and one outbox write, whatever the number of subscribers: the
fan-out to subscriptions (filter policies, SQS sends, push deliveries) happens in the delivery
workers. FIFO topics give their publications the topic ARN as ordering key, so fan-out keeps
publish order, and a deduplication key (the MessageDeduplicationId, or the SHA-256 of the message
with ContentBasedDeduplication; per message group with ``FifoThroughputScope=MessageGroup``), so a
repeat within five minutes is accepted and not delivered again.

Publish to a phone number or a platform endpoint skips topics: it records a single `PushDelivery`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence

from loosely.core.documents import DocumentGuard, NewPublication, PublishOutcome
from loosely.core.errors import BatchRequestTooLong, ConcurrentUpdate, LooselyError
from loosely.core.topics import validation as check
from loosely.core.topics._context import TopicContext, loads
from loosely.core.topics.access import authorize_topic
from loosely.core.topics.archive import archive_until_ms
from loosely.core.topics.errors import AuthorizationError, EndpointDisabled, PlatformApplicationDisabled
from loosely.core.topics.models import (
    PUSH_NOTIFICATION,
    TOPIC_KIND,
    PublishedMessage,
    PushDelivery,
    Topic,
    sequence_number,
)
from loosely.core.topics.values import (
    APPLICATION_KIND,
    ENDPOINT_KIND,
    OPTED_OUT_KIND,
    SANDBOX_NUMBER_KIND,
    AccountScope,
    BatchOutcome,
    Published,
    PublishRequest,
)

_ATTEMPTS = 8  # writes refused because the topic changed meanwhile, before giving up

# The payload key a platform reads from a MessageStructure=json message, by platform.
_PLATFORM_KEYS = {"APNS_SANDBOX": "APNS_SANDBOX", "APNS": "APNS", "GCM": "GCM", "ADM": "ADM", "BAIDU": "BAIDU"}


class Publishing:
    def __init__(self, ctx: TopicContext) -> None:
        self._ctx = ctx

    async def publish(self, scope: AccountScope, request: PublishRequest) -> Published:
        _check_common(request)
        target = _target(request)
        if request.phone_number is not None:
            return await self._to_phone(scope, request, request.phone_number)
        if ":endpoint/" in target:
            return await self._to_endpoint(scope, request, target)
        parameter = "TopicArn" if request.topic_arn is not None else "TargetArn"
        topic, [outcome] = await self._record(target, scope, parameter, lambda t: [self._publication(t, request)])
        return _published(topic, outcome.message_id, outcome.sequence)

    async def publish_batch(
        self, scope: AccountScope, topic_arn: str, entries: Sequence[tuple[str, PublishRequest]]
    ) -> BatchOutcome[Published]:
        """Publish up to ten messages in one outbox write.

        An entry AWS would refuse (an attribute, a FIFO field, a MessageStructure, the size) fails the
        whole request, as on AWS, with the first such error in entry order: nothing is published. So
        ``failed`` stays empty; it is kept for failures of delivery machinery, not of input.
        """
        check.check_batch_ids([entry_id for entry_id, _ in entries])

        def build(topic: Topic) -> list[NewPublication]:
            total = sum(check.message_size(request.message, request.attributes) for _, request in entries)
            if total > check.MAX_MESSAGE_BYTES:
                raise BatchRequestTooLong("The length of all the messages put together is more than the limit.")
            publications: list[NewPublication] = []
            for _, request in entries:
                _check_common(request)
                publications.append(self._publication(topic, request))
            return publications

        topic, outcomes = await self._record(topic_arn, scope, "TopicArn", build)
        successful = [
            (entry_id, _published(topic, outcome.message_id, outcome.sequence))
            for (entry_id, _), outcome in zip(entries, outcomes, strict=True)
        ]
        return BatchOutcome(successful, [])

    async def _record(
        self, arn: str, scope: AccountScope, parameter: str, build: Callable[[Topic], list[NewPublication]]
    ) -> tuple[Topic, list[PublishOutcome]]:
        """Authorize, build and record publications to a topic, deciding on the topic as last seen.

        The outbox write is guarded by that topic document's body. When the document changed since (the
        write is refused), or a check failed on the remembered topic, it is all done again on the topic
        as stored now: an answer, error or not, always reflects the topic at the time of the write.
        """
        fresh = admitted = False
        for _ in range(_ATTEMPTS):
            doc = await self._ctx.publication_topic(arn, scope, parameter, fresh=fresh)
            topic = self._ctx.parsed_topic(doc)
            try:
                authorize_topic(topic, scope.account_id, "Publish")
                publications = build(topic)
            except LooselyError:
                if fresh:
                    raise
                fresh = True
                continue
            if not admitted:
                # Once the request is known to be valid (a refusal never waits). A topic changed while
                # it was held fails the guarded write below, which then decides on the topic anew.
                await self._ctx.admission.admit(len(publications))
                admitted = True
            guard = DocumentGuard(TOPIC_KIND, arn, doc.body)
            try:
                outcomes = await self._ctx.outbox.add_publications(publications, self._ctx.now(), self._dedup_ms, guard)
            except ConcurrentUpdate:
                fresh = True
                continue
            return topic, outcomes
        raise ConcurrentUpdate("The topic is being changed by another request; try again.")

    @property
    def _dedup_ms(self) -> int:
        return self._ctx.settings.dedup_window_ms

    def _publication(self, topic: Topic, request: PublishRequest) -> NewPublication:
        """Check the topic-dependent rules (FIFO fields) and build the outbox record."""
        messages = check.check_message_structure(request.message_structure, request.message)  # before FIFO fields
        fifo = topic.attributes.get("FifoTopic") == "true"
        dedup_key = _dedup_key(topic, request) if fifo else None
        if not fifo and request.dedup_id is not None:
            raise check.invalid(
                "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not "
                "valid for this topic type"
            )
        message_id = self._ctx.ids.uuid()
        payload = PublishedMessage(
            message_id=message_id,
            topic_arn=topic.arn,
            # With MessageStructure=json only string members count: AWS ignores the others (they fall back to
            # "default"), so they are dropped here once rather than by every subscriber's delivery.
            message=request.message if messages is None else json.dumps(messages, ensure_ascii=False),
            timestamp_ms=self._ctx.now(),
            subject=request.subject,
            message_structure=request.message_structure,
            attributes=_envelope_attributes(request),
            group_id=request.group_id,
            dedup_id=request.dedup_id if fifo else None,
            trace_header=request.trace_header,
        )
        return NewPublication(
            topic_arn=topic.arn,
            message_id=message_id,
            payload=payload.to_json(),
            ordering_key=topic.arn if fifo else None,
            dedup_key=dedup_key,
            archive_until_ms=archive_until_ms(topic.attributes, payload.timestamp_ms) if fifo else None,
        )

    async def _to_phone(self, scope: AccountScope, request: PublishRequest, phone: str) -> Published:
        if not check.is_phone_number(phone):
            raise check.invalid(f"PhoneNumber Reason: {phone} is not valid to publish to")
        messages = check.check_message_structure(request.message_structure, request.message)
        text = (messages or {}).get("sms") or (messages or {}).get("default") or request.message
        if self._ctx.settings.sms_sandbox and not await self._verified(scope, phone):
            raise AuthorizationError(
                f"You can only send SMS to verified phone numbers while your account is in the SMS sandbox: {phone}"
            )
        message_id = self._ctx.ids.uuid()
        if await self._ctx.documents.get_document(OPTED_OUT_KIND, f"{scope.account_id}/{phone}") is None:
            await self._push(message_id, "sms", phone, text, request.subject)
        return Published(message_id)

    async def _verified(self, scope: AccountScope, phone: str) -> bool:
        doc = await self._ctx.documents.get_document(SANDBOX_NUMBER_KIND, f"{scope.account_id}:{scope.region}/{phone}")
        return doc is not None and loads(doc.body).get("status") == "Verified"

    async def _to_endpoint(self, scope: AccountScope, request: PublishRequest, arn: str) -> Published:
        doc = await self._ctx.documents.get_document(ENDPOINT_KIND, arn)
        if doc is None or arn.split(":")[3] != scope.region:
            raise check.invalid("TargetArn Reason: No endpoint found for the target arn specified")
        if loads(doc.body)["attributes"].get("Enabled", "true") != "true":
            raise EndpointDisabled("Endpoint is disabled")
        application = await self._ctx.documents.get_document(APPLICATION_KIND, doc.parent or "")
        if application is not None and loads(application.body)["attributes"].get("Enabled", "true") != "true":
            raise PlatformApplicationDisabled("Platform application is disabled")
        messages = check.check_message_structure(request.message_structure, request.message, needs_default=False)
        platform = arn.split(":", 5)[5].split("/")[1]
        text = request.message
        if messages is not None:
            text = messages.get(_PLATFORM_KEYS.get(platform, platform)) or messages.get("default") or ""
            if not text:
                raise check.invalid("Message Structure - No default entry in JSON message body")
        message_id = self._ctx.ids.uuid()
        await self._push(message_id, "application", arn, text, request.subject)
        return Published(message_id)

    async def _push(self, message_id: str, protocol: str, endpoint: str, body: str, subject: str | None) -> None:
        delivery = PushDelivery(
            kind=PUSH_NOTIFICATION,
            protocol=protocol,
            endpoint=endpoint,
            topic_arn="",
            message_id=message_id,
            body=body,
            subject=subject,
            timestamp_ms=self._ctx.now(),
        )
        await self._ctx.admission.admit(1)
        await self._ctx.send_push(delivery)


def _check_common(request: PublishRequest) -> None:
    """The rules that do not depend on the target, in the order AWS applies them."""
    check.check_subject(request.subject)
    check.check_message(request.message)
    check.check_message_attributes(request.attributes)
    check.check_message_size(request.message, request.attributes)
    check.check_fifo_id(request.group_id, "MessageGroupId")
    check.check_fifo_id(request.dedup_id, "MessageDeduplicationId")


def _target(request: PublishRequest) -> str:
    given = [v for v in (request.topic_arn, request.target_arn, request.phone_number) if v is not None]
    if not given:
        raise check.invalid("TopicArn or TargetArn Reason: no value for required parameter")
    if len(given) > 1:
        raise check.invalid("TopicArn Reason: Only one of TopicArn, TargetArn or PhoneNumber may be specified")
    return given[0]


def _dedup_key(topic: Topic, request: PublishRequest) -> str:
    """What a repeat is recognised by: the deduplication id (per group with ``FifoThroughputScope=MessageGroup``),
    under this topic's instance, so a topic created again under the same ARN starts with no history."""
    if request.group_id is None:
        raise check.invalid("The MessageGroupId parameter is required for FIFO topics")
    dedup = request.dedup_id
    if dedup is None:
        if topic.attributes.get("ContentBasedDeduplication") != "true":
            raise check.invalid(
                "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
                "explicitly"
            )
        dedup = hashlib.sha256(request.message.encode("utf-8", "surrogatepass")).hexdigest()
    if topic.attributes.get("FifoThroughputScope") == "MessageGroup":
        dedup = f"{request.group_id}\n{dedup}"
    return f"{topic.instance_id}\n{dedup}" if topic.instance_id else dedup


def _envelope_attributes(request: PublishRequest) -> dict[str, dict[str, str]]:
    """Attributes as envelopes carry them: ``{name: {"Type", "Value"}}``, binary values in base64."""
    out: dict[str, dict[str, str]] = {}
    for name, value in request.attributes.items():
        if value.binary_value is not None and value.data_type.startswith("Binary"):
            text = base64.b64encode(value.binary_value).decode("ascii")
        else:
            text = value.string_value or ""
        out[name] = {"Type": value.data_type, "Value": text}
    return out


def _published(topic: Topic, message_id: str, sequence: int) -> Published:
    fifo = topic.attributes.get("FifoTopic") == "true"
    return Published(message_id, sequence_number(sequence) if fifo else None)
