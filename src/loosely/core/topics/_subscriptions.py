"""Subscriptions: Subscribe, ConfirmSubscription, Unsubscribe, their attributes and listings.

A subscription is a document (kind ``sns-subscription``, parent = its topic ARN). Subscribe is
idempotent per (topic, protocol, endpoint) through a small key document claimed with
``if_absent``, so two concurrent Subscribes of one endpoint end with one subscription.

Push endpoints (http/https, email, email-json, and SQS queues of another account) start pending:
Subscribe records a confirmation token (kind ``sns-token``) and a SubscriptionConfirmation push in
the outbox; ConfirmSubscription with the token (or a GET of the SubscribeURL, which arrives as an
unsigned ConfirmSubscription) confirms it. Unsubscribing an http/https subscription sends an
UnsubscribeConfirmation whose token restores the subscription through ConfirmSubscription.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from loosely.core.documents import Document
from loosely.core.errors import InvalidParameter
from loosely.core.topics import validation as check
from loosely.core.topics._context import TopicContext, loads, topic_key, update_document
from loosely.core.topics.access import authorize_topic
from loosely.core.topics.archive import (
    REPLAY_KIND,
    REPLAY_POLICY,
    REPLAY_STATUS,
    ReplayState,
    ReplayWindow,
    beginning_archive_ms,
    check_replay_window,
    parse_replay_policy,
)
from loosely.core.topics.delivery_policy import (
    effective_delivery_policy,
    parse_subscription_delivery_policy,
    parse_topic_delivery_policy,
)
from loosely.core.topics.errors import (
    AuthorizationError,
    FilterPolicyLimitExceeded,
    NotFound,
    SubscriptionLimitExceeded,
)
from loosely.core.topics.models import (
    PUSH_SUBSCRIPTION_CONFIRMATION,
    PUSH_UNSUBSCRIBE_CONFIRMATION,
    SUBSCRIPTION_KIND,
    TOPIC_KIND,
    PushDelivery,
    Subscription,
    Topic,
    TopicKey,
)
from loosely.core.topics.values import (
    ENDPOINT_KIND,
    SUBSCRIPTION_KEY_KIND,
    TOKEN_KIND,
    AccountScope,
    Page,
    SubscriptionView,
)

MAX_FIFO_TOPIC_SUBSCRIPTIONS = 100  # AWS quota: subscriptions per FIFO topic
MAX_TOPIC_FILTER_POLICIES = 200  # AWS quota: filter policies per topic
PENDING_ARN = "pending confirmation"  # what Subscribe returns for a pending subscription
PENDING_LISTED = "PendingConfirmation"  # what the List actions show in place of its ARN
_PURPOSE_CONFIRM = "confirm"
_PURPOSE_RESTORE = "restore"
_HTTP = frozenset({"http", "https"})
_TOKEN_SHAPE = re.compile(r"[0-9a-fA-F]+")


class Subscriptions:
    def __init__(self, ctx: TopicContext) -> None:
        self._ctx = ctx

    # ---- Subscribe ----

    async def subscribe(
        self,
        scope: AccountScope,
        topic_arn: str,
        protocol: str,
        endpoint: str | None,
        attributes: dict[str, str] | Any,
        return_arn: bool,
    ) -> str:
        topic = await self._ctx.require_topic(topic_arn, scope)
        authorize_topic(topic, scope.account_id, "Subscribe")
        key = topic_key(topic_arn, scope)
        endpoint = check.check_protocol_endpoint(protocol, endpoint, key.fifo)
        attrs = check.canonical_subscription_attributes(attributes, protocol, {}, subscribing=True)
        check.check_fifo_dead_letter_queue(attrs.get("RedrivePolicy", ""), key.fifo, endpoint)
        if protocol == "application" and await self._ctx.documents.get_document(ENDPOINT_KIND, endpoint) is None:
            # AWS words it so, with no space before the ARN
            raise check.invalid(f"Endpoint Reason: Endpoint does not exist for endpoint arn{endpoint}")
        window = self._replay_window(attrs.get(REPLAY_POLICY, ""), topic)
        existing = await self._existing(topic_arn, protocol, endpoint)
        if existing is None:
            await self._check_room(key, new_subscription=True, adds_filter_policy=_filters(attrs))
            existing = await self._create(scope, key, protocol, endpoint, attrs)
            if window is not None:
                await self._start_replay(existing, window)
        else:
            _same_subscription(existing, attrs)
        return existing.arn if existing.confirmed or return_arn else PENDING_ARN

    # ---- replay (`loosely.core.topics.archive`) ----

    def _replay_window(self, policy: str, topic: Topic) -> ReplayWindow | None:
        """A ReplayPolicy checked against the topic's archive and the clock; None when it asks for no replay."""
        window = parse_replay_policy(policy)
        if window is not None:
            now = self._ctx.now()
            fifo = topic.arn.endswith(".fifo")
            check_replay_window(window, fifo, beginning_archive_ms(topic.attributes, now), now)
        return window

    async def _start_replay(self, sub: Subscription, window: ReplayWindow | None) -> None:
        """Record a replay to run (replacing one running), or stop it (no window)."""
        if window is None:
            await self._ctx.documents.delete_document(REPLAY_KIND, sub.arn)
            return
        state = ReplayState.start(sub.arn, sub.topic_arn, window, self._ctx.now())
        await self._ctx.documents.put_document(
            REPLAY_KIND, sub.arn, state.to_json(), self._ctx.now(), parent=sub.topic_arn
        )

    async def _replay_status(self, sub: Subscription) -> str | None:
        if not sub.attributes.get(REPLAY_POLICY):
            return None
        doc = await self._ctx.documents.get_document(REPLAY_KIND, sub.arn)
        return ReplayState.from_json(doc.body).status if doc is not None else None

    async def _check_room(self, key: TopicKey, new_subscription: bool, adds_filter_policy: bool) -> None:
        """SNS's per-topic quotas: 100 subscriptions on a FIFO topic, 200 filter policies on any topic.

        The count is read before the write, so concurrent requests may overshoot a quota by a few.
        """
        counts_subscriptions = new_subscription and key.fifo
        if not (counts_subscriptions or adds_filter_policy):
            return
        docs = await self._ctx.documents.list_documents(SUBSCRIPTION_KIND, parent=key.arn)
        if counts_subscriptions and len(docs) >= MAX_FIFO_TOPIC_SUBSCRIPTIONS:
            raise SubscriptionLimitExceeded("Topic has reached its maximum number of subscriptions")
        if adds_filter_policy:
            # only documents that mention a filter policy are parsed: most subscriptions of a big topic have none
            mentioned = (Subscription.from_json(doc.body) for doc in docs if '"FilterPolicy"' in doc.body)
            filtered = sum(1 for sub in mentioned if _filters(sub.attributes))
            if filtered >= MAX_TOPIC_FILTER_POLICIES:
                raise FilterPolicyLimitExceeded("Topic has reached its maximum number of filter policies")

    async def _existing(self, topic_arn: str, protocol: str, endpoint: str) -> Subscription | None:
        index = await self._ctx.documents.get_document(SUBSCRIPTION_KEY_KIND, _index_key(topic_arn, protocol, endpoint))
        return await self.get(loads(index.body)["arn"]) if index is not None else None

    async def _create(
        self, scope: AccountScope, key: TopicKey, protocol: str, endpoint: str, attrs: dict[str, str]
    ) -> Subscription:
        now = self._ctx.now()
        confirmed = _confirms_at_once(protocol, endpoint, key)
        sub = Subscription(
            arn=f"{key.arn}:{self._ctx.ids.uuid()}",
            topic_arn=key.arn,
            protocol=protocol,
            endpoint=endpoint,
            owner=scope.account_id,
            attributes={**attrs, "ConfirmationWasAuthenticated": "true" if confirmed else "false"},
            confirmed=confirmed,
            token=None if confirmed else self._new_token(),
            created_ms=now,
        )
        index_key = _index_key(key.arn, protocol, endpoint)
        claim, created = await self._ctx.documents.put_document(
            SUBSCRIPTION_KEY_KIND, index_key, json.dumps({"arn": sub.arn}), now, parent=key.arn, if_absent=True
        )
        if not created:
            winner = await self.get(loads(claim.body)["arn"])
            if winner is not None:
                return winner  # a concurrent Subscribe of the same endpoint won
            await self._ctx.documents.put_document(
                SUBSCRIPTION_KEY_KIND, index_key, json.dumps({"arn": sub.arn}), now, parent=key.arn
            )
        await self._ctx.documents.put_document(SUBSCRIPTION_KIND, sub.arn, sub.to_json(), now, parent=key.arn)
        if sub.token is not None:
            await self._put_token(sub.token, sub, _PURPOSE_CONFIRM)
            await self._send(PUSH_SUBSCRIPTION_CONFIRMATION, sub, sub.token)
        return sub

    def _new_token(self) -> str:
        """A confirmation token shaped like AWS's: 288 lower-case hex digits (the text of 144 random bytes)."""
        return self._ctx.ids.token(108).encode("ascii").hex()

    async def _put_token(self, token: str, sub: Subscription, purpose: str) -> None:
        body = {"subscription_arn": sub.arn, "topic_arn": sub.topic_arn, "purpose": purpose}
        body["created_ms"] = self._ctx.now()  # type: ignore[assignment]
        if purpose == _PURPOSE_RESTORE:
            body["subscription"] = sub.to_json()
        await self._ctx.documents.put_document(
            TOKEN_KIND, token, json.dumps(body), self._ctx.now(), parent=sub.topic_arn
        )

    async def _send(self, kind: str, sub: Subscription, token: str) -> None:
        await self._ctx.send_push(
            PushDelivery(
                kind=kind,
                protocol=sub.protocol,
                endpoint=sub.endpoint,
                topic_arn=sub.topic_arn,
                message_id=self._ctx.ids.uuid(),
                body="",
                subscription_arn=sub.arn,
                token=token,
                timestamp_ms=self._ctx.now(),
            )
        )

    # ---- ConfirmSubscription ----

    async def confirm(
        self, scope: AccountScope, topic_arn: str, token: str, authenticate_on_unsubscribe: bool, authenticated: bool
    ) -> str:
        try:
            topic_key(topic_arn, scope, "Topic")
        except InvalidParameter:
            raise check.invalid("Topic") from None  # AWS gives no reason, whatever is wrong with the ARN
        doc = await self._ctx.documents.get_document(TOKEN_KIND, token)
        if doc is None and not _TOKEN_SHAPE.fullmatch(token):
            # AWS tells a token that cannot be one of its own (not hex) from one it does not know.
            raise InvalidParameter("Invalid token")
        body = loads(doc.body) if doc is not None else {}
        expired = self._ctx.now() - int(body.get("created_ms", 0)) > self._ctx.settings.confirmation_token_ttl_ms
        if doc is None or expired:
            raise check.invalid("Token")
        if body["topic_arn"].split(":")[3] != scope.region:
            # A SubscribeURL visited with the TopicArn of another region names the wrong topic (AWS).
            raise check.invalid("Topic")
        if body["purpose"] == _PURPOSE_RESTORE:
            return await self._restore(token, Subscription.from_json(body["subscription"]))
        extra = {"ConfirmationWasAuthenticated": "true" if authenticated else "false"}
        if authenticate_on_unsubscribe:
            extra["AuthenticateOnUnsubscribe"] = "true"

        def change(sub: Subscription) -> Subscription | None:
            if sub.confirmed:
                return None  # ConfirmSubscription is idempotent
            return replace(sub, confirmed=True, attributes={**sub.attributes, **extra})

        try:
            sub = await self._update(body["subscription_arn"], change)
        except NotFound:
            raise check.invalid("Token") from None
        return sub.arn

    async def _restore(self, token: str, sub: Subscription) -> str:
        now = self._ctx.now()
        index_key = _index_key(sub.topic_arn, sub.protocol, sub.endpoint)
        _, created = await self._ctx.documents.put_document(
            SUBSCRIPTION_KEY_KIND, index_key, json.dumps({"arn": sub.arn}), now, parent=sub.topic_arn, if_absent=True
        )
        if created:
            await self._ctx.documents.put_document(SUBSCRIPTION_KIND, sub.arn, sub.to_json(), now, parent=sub.topic_arn)
        await self._ctx.documents.delete_document(TOKEN_KIND, token)
        return sub.arn

    # ---- Unsubscribe ----

    async def unsubscribe(self, scope: AccountScope, arn: str, authenticated: bool) -> None:
        _check_subscription_arn(arn)
        sub = await self.get(arn)
        if sub is None:
            return  # unsubscribing twice is no error
        topic_owner = arn.split(":")[4]
        if scope.account_id not in (sub.owner, topic_owner):
            raise AuthorizationError(f"User: arn:aws:iam::{scope.account_id}:root is not authorized to unsubscribe")
        if sub.attributes.get("AuthenticateOnUnsubscribe") == "true" and not authenticated:
            raise AuthorizationError("The subscription requires an authenticated request to unsubscribe")
        await self._ctx.documents.delete_document(SUBSCRIPTION_KIND, arn)
        await self._ctx.documents.delete_document(
            SUBSCRIPTION_KEY_KIND, _index_key(sub.topic_arn, sub.protocol, sub.endpoint)
        )
        if sub.token is not None:
            await self._ctx.documents.delete_document(TOKEN_KIND, sub.token)
        if sub.attributes.get(REPLAY_POLICY):
            await self._ctx.documents.delete_document(REPLAY_KIND, arn)
        if sub.protocol in _HTTP:
            token = self._new_token()
            await self._put_token(token, replace(sub, confirmed=True, token=None), _PURPOSE_RESTORE)
            await self._send(PUSH_UNSUBSCRIBE_CONFIRMATION, sub, token)

    # ---- attributes ----

    async def get(self, arn: str) -> Subscription | None:
        doc = await self._ctx.documents.get_document(SUBSCRIPTION_KIND, arn)
        return Subscription.from_json(doc.body) if doc is not None else None

    async def get_attributes(self, scope: AccountScope, arn: str) -> dict[str, str]:
        _check_subscription_arn(arn)
        sub = await self.get(arn)
        if sub is None:
            raise NotFound("Subscription does not exist")
        values = {
            "Owner": sub.owner,
            "TopicArn": sub.topic_arn,
            "Endpoint": sub.endpoint,
            "Protocol": sub.protocol,
            "SubscriptionArn": sub.arn,
            "PendingConfirmation": "false" if sub.confirmed else "true",
            "ConfirmationWasAuthenticated": "false",
            "RawMessageDelivery": "false",
            "SubscriptionPrincipal": f"arn:aws:iam::{sub.owner}:root",
        }
        values.update(sub.attributes)
        values.pop("AuthenticateOnUnsubscribe", None)
        if values.get("FilterPolicy"):
            values.setdefault("FilterPolicyScope", "MessageAttributes")
        else:  # AWS shows the scope only beside a policy
            values.pop("FilterPolicy", None)
            values.pop("FilterPolicyScope", None)
        if sub.protocol in _HTTP:
            values["EffectiveDeliveryPolicy"] = await self._effective_policy(sub)
        status = await self._replay_status(sub)
        if status is not None:
            values[REPLAY_STATUS] = status
        return dict(sorted(values.items()))

    async def _effective_policy(self, sub: Subscription) -> str:
        doc = await self._ctx.documents.get_document(TOPIC_KIND, sub.topic_arn)
        topic_text = Topic.from_json(doc.body).attributes.get("DeliveryPolicy") if doc is not None else None
        sub_text = sub.attributes.get("DeliveryPolicy")
        return effective_delivery_policy(
            parse_topic_delivery_policy(topic_text) if topic_text else None,
            parse_subscription_delivery_policy(sub_text) if sub_text else None,
        ).to_json()

    async def set_attribute(self, scope: AccountScope, arn: str, name: str, value: str | None) -> None:
        _check_subscription_arn(arn)
        if _filters({name: value or ""}):
            current = await self.get(arn)
            key = TopicKey.from_arn(current.topic_arn) if current is not None else None
            if current is not None and key is not None and not _filters(current.attributes):
                attrs = current.attributes
                check.canonical_subscription_attributes({name: value or ""}, current.protocol, attrs, False)
                await self._check_room(key, new_subscription=False, adds_filter_policy=True)
        window = None
        if name == REPLAY_POLICY:
            window = await self._checked_replay(arn, value or "")

        def change(sub: Subscription) -> Subscription:
            if scope.account_id not in (sub.owner, arn.split(":")[4]):
                raise AuthorizationError(f"User: arn:aws:iam::{scope.account_id}:root is not authorized")
            new = check.canonical_subscription_attributes({name: value or ""}, sub.protocol, sub.attributes, False)
            if "RedrivePolicy" in new:
                check.check_fifo_dead_letter_queue(new["RedrivePolicy"], sub.topic_arn.endswith(".fifo"), sub.endpoint)
            attributes = dict(sub.attributes)
            for attr, text in new.items():
                if text:
                    attributes[attr] = text
                else:
                    attributes.pop(attr, None)
            return replace(sub, attributes=attributes)

        sub = await self._update(arn, change)
        if name == REPLAY_POLICY:
            await self._start_replay(sub, window)

    async def _checked_replay(self, arn: str, policy: str) -> ReplayWindow | None:
        current = await self.get(arn)
        if current is None:
            raise NotFound("Subscription does not exist")
        doc = await self._ctx.documents.get_document(TOPIC_KIND, current.topic_arn)
        if doc is None:
            raise NotFound("Topic does not exist")
        return self._replay_window(policy, self._ctx.parsed_topic(doc))

    async def _update(self, arn: str, change: Any) -> Subscription:
        async def load() -> tuple[Document, Subscription]:
            doc = await self._ctx.documents.get_document(SUBSCRIPTION_KIND, arn)
            if doc is None:
                raise NotFound("Subscription does not exist")
            return doc, Subscription.from_json(doc.body)

        async def store(doc: Document, sub: Subscription) -> None:
            await self._ctx.documents.put_document(
                SUBSCRIPTION_KIND,
                arn,
                sub.to_json(),
                self._ctx.now(),
                parent=sub.topic_arn,
                expected_version=doc.version,
            )

        result: Subscription = await update_document(load, change, store)
        return result

    # ---- listings ----

    async def counts(self, topic_arn: str) -> tuple[int, int]:
        """(confirmed, pending) subscriptions of a topic."""
        docs = await self._ctx.documents.list_documents(SUBSCRIPTION_KIND, parent=topic_arn)
        confirmed = sum(1 for doc in docs if Subscription.from_json(doc.body).confirmed)
        return confirmed, len(docs) - confirmed

    async def list(self, scope: AccountScope, next_token: str | None) -> Page[SubscriptionView]:
        page = await self._ctx.page(SUBSCRIPTION_KIND, next_token, prefix=scope.arn_prefix)
        return Page([_view(doc) for doc in page.items], page.next_token)

    async def list_by_topic(self, topic_arn: str, next_token: str | None) -> Page[SubscriptionView]:
        page = await self._ctx.page(SUBSCRIPTION_KIND, next_token, parent=topic_arn)
        return Page([_view(doc) for doc in page.items], page.next_token)


def _view(doc: Document) -> SubscriptionView:
    sub = Subscription.from_json(doc.body)
    return SubscriptionView(
        subscription_arn=sub.arn if sub.confirmed else PENDING_LISTED,
        owner=sub.owner,
        protocol=sub.protocol,
        endpoint=sub.endpoint,
        topic_arn=sub.topic_arn,
    )


def _filters(attributes: Mapping[str, str]) -> bool:
    """Whether the attributes hold a filter policy that counts against the quota (an empty one filters nothing)."""
    return attributes.get("FilterPolicy", "").strip() not in ("", "{}")


def _index_key(topic_arn: str, protocol: str, endpoint: str) -> str:
    return f"{topic_arn}\n{protocol}\n{endpoint}"


def _confirms_at_once(protocol: str, endpoint: str, topic: TopicKey) -> bool:
    """SMS, mobile endpoints and queues of the topic's own account need no confirmation."""
    if protocol == "sqs":
        return endpoint.split(":")[4] == topic.account_id
    return protocol in ("sms", "application")


_IMPLICIT = {"RawMessageDelivery": "false", "FilterPolicyScope": "MessageAttributes"}


def _same_subscription(existing: Subscription, requested: dict[str, str]) -> None:
    """Subscribe of an existing endpoint succeeds when the attributes asked for (or their defaults) match."""
    for name, value in requested.items():
        current = existing.attributes.get(name, _IMPLICIT.get(name))
        if not check.same_attribute_value(name, current, value):
            raise check.invalid("Attributes Reason: Subscription already exists with different attributes")


def _check_subscription_arn(arn: str) -> None:
    """AWS's complaints about a subscription ARN: too few elements, or no SNS subscription id in it
    (a topic ARN, or the ARN of another service such as a queue's with an id appended)."""
    parts = check.split_arn(arn, "SubscriptionArn")
    count = len(arn.split(":"))
    if count == 6 or parts[2] != "sns":
        raise check.invalid("SubscriptionId")
    if count != 7:
        raise check.invalid("SubscriptionArn")
