"""Topics and subscriptions as the workers read them: always fresh, parsed once per version.

Every fan-out reads the topic document and the list of its subscriptions, so a Subscribe,
Unsubscribe or SetSubscriptionAttributes takes effect from the next publication on. What is costly
to redo per message (JSON parsing, compiling filter policies, combining delivery policies) is
cached by document key and version, so a new version is parsed once and an old one never served.

The delivery worker looks the same things up per attempt; it may use answers up to
``ttl_s`` old, which bounds its reads under load without delaying a change noticeably.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from loosely.core.documents import Document
from loosely.core.errors import InvalidParameter
from loosely.core.frozen import record
from loosely.core.ports import DocumentStore
from loosely.core.topics.delivery_policy import (
    EffectiveDeliveryPolicy,
    effective_delivery_policy,
    parse_subscription_delivery_policy,
    parse_topic_delivery_policy,
)
from loosely.core.topics.filter_policy import ATTRIBUTES_SCOPE, FilterPolicy, check_scope, parse_filter_policy
from loosely.core.topics.models import SUBSCRIPTION_KIND, TOPIC_KIND, Subscription, Topic

__all__ = ["Directory", "Subscriber"]

log = logging.getLogger(__name__)

_MAX_CACHED = 50_000


@record
class Subscriber:
    """A subscription with what delivering to it needs, parsed."""

    subscription: Subscription
    version: int  # of the subscription's document
    filter_policy: FilterPolicy | None  # None: no policy, every message matches
    broken_filter: bool = False  # a stored policy that no longer parses: nothing matches (logged once)

    @property
    def dead_letter_arn(self) -> str | None:
        return dead_letter_arn(self.subscription)


def dead_letter_arn(subscription: Subscription) -> str | None:
    """The SQS queue ARN of the subscription's RedrivePolicy, if it has one."""
    text = subscription.attributes.get("RedrivePolicy")
    if not text:
        return None
    try:
        value = json.loads(text).get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


class Directory:
    """Reads topics and subscriptions for the workers, parsing each document version once."""

    def __init__(self, documents: DocumentStore, ttl_s: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        self._documents = documents
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._topics: dict[str, tuple[int, Topic]] = {}
        self._subscribers: dict[str, tuple[int, Subscriber]] = {}
        self._policies: dict[tuple[str, int, int], EffectiveDeliveryPolicy] = {}
        self._recent: dict[tuple[str, str], tuple[float, Document | None]] = {}

    # ---- fresh reads (fan-out) ----

    async def topic(self, arn: str) -> tuple[Topic, int] | None:
        """The topic and its document version, or None when it was deleted."""
        return self._topic(await self._documents.get_document(TOPIC_KIND, arn))

    async def subscribers(self, topic_arn: str) -> list[Subscriber]:
        """Every subscription of the topic (pending ones included), in ARN order."""
        docs = await self._documents.list_documents(SUBSCRIPTION_KIND, parent=topic_arn)
        return [self._subscriber(doc) for doc in docs]

    # ---- recent reads (delivery attempts) ----

    async def recent_topic(self, arn: str) -> tuple[Topic, int] | None:
        return self._topic(await self._recent_document(TOPIC_KIND, arn))

    async def recent_subscriber(self, arn: str) -> Subscriber | None:
        doc = await self._recent_document(SUBSCRIPTION_KIND, arn)
        return None if doc is None else self._subscriber(doc)

    async def _recent_document(self, kind: str, key: str) -> Document | None:
        now = self._monotonic()
        cached = self._recent.get((kind, key))
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        doc = await self._documents.get_document(kind, key)
        if len(self._recent) > _MAX_CACHED:
            self._recent.clear()
        self._recent[(kind, key)] = (now, doc)
        return doc

    # ---- policies ----

    def delivery_policy(self, subscriber: Subscriber, topic: tuple[Topic, int] | None) -> EffectiveDeliveryPolicy:
        """The effective HTTP/S delivery policy of a subscription under its topic (defaults when unparsable)."""
        sub = subscriber.subscription
        topic_version = topic[1] if topic is not None else 0
        key = (sub.arn, subscriber.version, topic_version)
        cached = self._policies.get(key)
        if cached is not None:
            return cached
        try:
            topic_text = topic[0].attributes.get("DeliveryPolicy") if topic is not None else None
            sub_text = sub.attributes.get("DeliveryPolicy")
            policy = effective_delivery_policy(
                parse_topic_delivery_policy(topic_text) if topic_text else None,
                parse_subscription_delivery_policy(sub_text) if sub_text else None,
            )
        except InvalidParameter as exc:
            log.warning("delivery policy of %s does not parse (%s); using the defaults", sub.arn, exc)
            policy = EffectiveDeliveryPolicy()
        if len(self._policies) > _MAX_CACHED:
            self._policies.clear()
        self._policies[key] = policy
        return policy

    # ---- parsing, once per version ----

    def _topic(self, doc: Document | None) -> tuple[Topic, int] | None:
        if doc is None:
            return None
        cached = self._topics.get(doc.key)
        if cached is not None and cached[0] == doc.version:
            return cached[1], doc.version
        topic = Topic.from_json(doc.body)
        if len(self._topics) > _MAX_CACHED:
            self._topics.clear()
        self._topics[doc.key] = (doc.version, topic)
        return topic, doc.version

    def _subscriber(self, doc: Document) -> Subscriber:
        cached = self._subscribers.get(doc.key)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        subscriber = _parse_subscriber(Subscription.from_json(doc.body), doc.version)
        if len(self._subscribers) > _MAX_CACHED:
            self._subscribers.clear()
        self._subscribers[doc.key] = (doc.version, subscriber)
        return subscriber


def _parse_subscriber(subscription: Subscription, version: int) -> Subscriber:
    text = subscription.attributes.get("FilterPolicy", "")
    if not text:
        return Subscriber(subscription, version, None)
    try:
        scope = check_scope(subscription.attributes.get("FilterPolicyScope") or ATTRIBUTES_SCOPE)
        policy = parse_filter_policy(text, scope)
    except InvalidParameter as exc:
        log.warning("filter policy of %s does not parse (%s); it matches nothing", subscription.arn, exc)
        return Subscriber(subscription, version, None, broken_filter=True)
    return Subscriber(subscription, version, None if policy.matches_everything else policy)
