"""TopicService: every SNS action as a use case over a `DocumentStore` and an `OutboxStore`.

Public methods mirror the SNS actions in snake_case and take the caller's `AccountScope`. Each
validates its input as AWS does (pure checks in `validation`), then reads or writes documents.
Topics, subscriptions, platform resources and SMS settings are JSON documents; a publish is one
outbox publication whatever the number of subscribers, fanned out later by the delivery workers.
Errors are `loosely.core.errors` / `loosely.core.topics.errors` conditions only; the SNS protocol
table turns them into AWS codes.

Topic administration lives here; subscriptions, publishing and the mobile/SMS actions are in
``_subscriptions``, ``_publishing`` and ``_mobile``, sharing one `TopicContext`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from loosely.core.clock import Clock
from loosely.core.errors import ResourceNotFound
from loosely.core.ids import IdGenerator
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.topics import access, archive
from loosely.core.topics import validation as check
from loosely.core.topics._context import TopicContext, topic_key
from loosely.core.topics._mobile import Mobile
from loosely.core.topics._publishing import Publishing
from loosely.core.topics._subscriptions import Subscriptions
from loosely.core.topics.admission import AdmitAll, PublishAdmission
from loosely.core.topics.delivery_policy import parse_topic_delivery_policy, topic_effective_delivery_policy_json
from loosely.core.topics.models import SUBSCRIPTION_KIND, TOPIC_KIND, Subscription, Topic, TopicKey
from loosely.core.topics.values import (
    SUBSCRIPTION_KEY_KIND,
    TOKEN_KIND,
    AccountScope,
    BatchOutcome,
    Page,
    PlatformResource,
    Published,
    PublishRequest,
    SandboxNumber,
    SubscriptionView,
    TopicSettings,
)

__all__ = ["AccountScope", "TopicService", "TopicSettings"]

_DATA_PROTECTION = "DataProtectionPolicy"  # kept with the topic's attributes, never shown by GetTopicAttributes
_HIDDEN = frozenset({_DATA_PROTECTION, archive.ARCHIVE_SINCE})


class TopicService:
    def __init__(
        self,
        documents: DocumentStore,
        outbox: OutboxStore,
        clock: Clock,
        ids: IdGenerator,
        settings: TopicSettings | None = None,
        admission: PublishAdmission | None = None,
    ) -> None:
        self._ctx = TopicContext(documents, outbox, clock, ids, settings or TopicSettings(), admission or AdmitAll())
        self._subscriptions = Subscriptions(self._ctx)
        self._publishing = Publishing(self._ctx)
        self._mobile = Mobile(self._ctx)

    @property
    def settings(self) -> TopicSettings:
        return self._ctx.settings

    # ---- topics ----

    async def create_topic(
        self,
        scope: AccountScope,
        name: str,
        attributes: Mapping[str, str],
        tags: Sequence[tuple[str, str]] = (),
        data_protection_policy: str | None = None,
    ) -> str:
        """Create the topic, or return the existing one's ARN when every attribute and tag given matches it."""
        fifo = check.requests_fifo(attributes)
        check.check_topic_name(name, fifo)
        requested = check.canonical_topic_attributes(attributes, fifo, creating=True)
        tag_map = check.check_tags(tags, {})
        if data_protection_policy:
            requested[_DATA_PROTECTION] = _check_json_policy(data_protection_policy, "DataProtectionPolicy")
        key = TopicKey(scope.account_id, scope.region, name)
        existing = await self._ctx.documents.get_document(TOPIC_KIND, key.arn)
        if existing is None:
            attrs = archive.archive_attributes(
                {**check.topic_defaults(key.arn, scope.account_id, fifo), **requested}, self._ctx.now()
            )
            now, instance_id = self._ctx.now(), self._ctx.ids.uuid()
            topic = Topic(arn=key.arn, attributes=attrs, tags=tag_map, created_ms=now, instance_id=instance_id)
            doc, created = await self._ctx.documents.put_document(
                TOPIC_KIND, key.arn, topic.to_json(), self._ctx.now(), if_absent=True
            )
            if created:
                return key.arn
            existing = doc
        _same_topic(Topic.from_json(existing.body), requested, tag_map)
        return key.arn

    async def delete_topic(self, scope: AccountScope, topic_arn: str) -> None:
        """Delete the topic and its subscriptions; deleting a topic that does not exist is no error."""
        topic_key(topic_arn, scope)
        doc = await self._ctx.documents.get_document(TOPIC_KIND, topic_arn)
        if doc is None:
            return
        topic = Topic.from_json(doc.body)
        _authorize(topic, scope, "DeleteTopic")
        await self._ctx.documents.delete_document(TOPIC_KIND, topic_arn)
        for kind in (SUBSCRIPTION_KIND, SUBSCRIPTION_KEY_KIND, TOKEN_KIND, archive.REPLAY_KIND):
            await self._ctx.documents.delete_children(kind, topic_arn)

    async def list_topics(self, scope: AccountScope, next_token: str | None) -> Page[str]:
        page = await self._ctx.page(TOPIC_KIND, next_token, prefix=scope.arn_prefix)
        return Page([doc.key for doc in page.items], page.next_token)

    async def get_topic_attributes(self, scope: AccountScope, topic_arn: str) -> dict[str, str]:
        """Stored attributes plus the computed ones: Owner, TopicArn, subscription counts, EffectiveDeliveryPolicy."""
        topic = await self._ctx.require_topic(topic_arn, scope)
        _authorize(topic, scope, "GetTopicAttributes")
        values = {k: v for k, v in topic.attributes.items() if k not in _HIDDEN}
        beginning = archive.beginning_archive_ms(topic.attributes, self._ctx.now())
        if beginning is not None:
            values[archive.BEGINNING_ARCHIVE_TIME] = archive.iso_ms(beginning)
        confirmed, pending = await self._subscriptions.counts(topic_arn)
        delivery = topic.attributes.get("DeliveryPolicy")
        values.update(
            {
                "Owner": TopicKey.from_arn(topic_arn).account_id,  # type: ignore[union-attr]
                "TopicArn": topic_arn,
                "SubscriptionsConfirmed": str(confirmed),
                "SubscriptionsPending": str(pending),
                "SubscriptionsDeleted": "0",
                "EffectiveDeliveryPolicy": topic_effective_delivery_policy_json(
                    parse_topic_delivery_policy(delivery) if delivery else None
                ),
            }
        )
        return dict(sorted(values.items()))

    async def set_topic_attributes(self, scope: AccountScope, topic_arn: str, name: str, value: str | None) -> None:
        key = topic_key(topic_arn, scope)
        changes = check.canonical_topic_attributes({name: value or ""}, key.fifo, creating=False)

        def change(topic: Topic) -> Topic:
            _authorize(topic, scope, "SetTopicAttributes")
            attributes = dict(topic.attributes)
            for attr, new in changes.items():
                if new == "" and attr != "DisplayName":
                    attributes.pop(attr, None)
                else:
                    attributes[attr] = new
            if "Policy" not in attributes:
                attributes["Policy"] = check.default_policy(topic_arn, key.account_id)
            return replace(topic, attributes=archive.archive_attributes(attributes, self._ctx.now()))

        await self._ctx.update_topic(topic_arn, scope, change)

    # ---- permissions ----

    async def add_permission(
        self, scope: AccountScope, topic_arn: str, label: str, accounts: Sequence[str], actions: Sequence[str]
    ) -> None:
        def change(topic: Topic) -> Topic:
            _authorize(topic, scope, "AddPermission")
            policy = access.add_statement(topic.attributes.get("Policy", ""), topic_arn, label, accounts, actions)
            return replace(topic, attributes={**topic.attributes, "Policy": policy})

        await self._ctx.update_topic(topic_arn, scope, change)

    async def remove_permission(self, scope: AccountScope, topic_arn: str, label: str) -> None:
        def change(topic: Topic) -> Topic | None:
            _authorize(topic, scope, "RemovePermission")
            policy = access.remove_statement(topic.attributes.get("Policy", ""), label)
            return None if policy is None else replace(topic, attributes={**topic.attributes, "Policy": policy})

        await self._ctx.update_topic(topic_arn, scope, change)

    # ---- tags ----

    async def tag_resource(self, scope: AccountScope, resource_arn: str, tags: Sequence[tuple[str, str]]) -> None:
        await self._tagged(resource_arn, scope)

        def change(topic: Topic) -> Topic:
            return replace(topic, tags=check.check_tags(tags, topic.tags))

        await self._ctx.update_topic(resource_arn, scope, change)

    async def untag_resource(self, scope: AccountScope, resource_arn: str, keys: Sequence[str]) -> None:
        await self._tagged(resource_arn, scope)
        dropped = set(keys)

        def change(topic: Topic) -> Topic | None:
            kept = {k: v for k, v in topic.tags.items() if k not in dropped}
            return None if len(kept) == len(topic.tags) else replace(topic, tags=kept)

        await self._ctx.update_topic(resource_arn, scope, change)

    async def list_tags_for_resource(self, scope: AccountScope, resource_arn: str) -> list[tuple[str, str]]:
        topic = await self._tagged(resource_arn, scope)
        return list(topic.tags.items())

    async def _tagged(self, resource_arn: str, scope: AccountScope) -> Topic:
        """Tags address resources by ARN; an unknown one is ResourceNotFound rather than NotFound."""
        key = TopicKey.from_arn(resource_arn)
        if key is None or key.region != scope.region:
            raise ResourceNotFound("Resource does not exist")
        doc = await self._ctx.documents.get_document(TOPIC_KIND, resource_arn)
        if doc is None:
            raise ResourceNotFound("Resource does not exist")
        return Topic.from_json(doc.body)

    # ---- data protection ----

    async def get_data_protection_policy(self, scope: AccountScope, resource_arn: str) -> str | None:
        topic = await self._ctx.require_topic(resource_arn, scope, "ResourceArn")
        return topic.attributes.get(_DATA_PROTECTION)

    async def put_data_protection_policy(self, scope: AccountScope, resource_arn: str, policy: str) -> None:
        text = _check_json_policy(policy, "DataProtectionPolicy") if policy else ""

        def change(topic: Topic) -> Topic:
            attributes = {k: v for k, v in topic.attributes.items() if k != _DATA_PROTECTION}
            if text:
                attributes[_DATA_PROTECTION] = text
            return replace(topic, attributes=attributes)

        await self._ctx.require_topic(resource_arn, scope, "ResourceArn")
        await self._ctx.update_topic(resource_arn, scope, change)

    # ---- subscriptions ----

    async def subscribe(
        self,
        scope: AccountScope,
        topic_arn: str,
        protocol: str,
        endpoint: str | None,
        attributes: Mapping[str, str],
        return_subscription_arn: bool = False,
    ) -> str:
        return await self._subscriptions.subscribe(
            scope, topic_arn, protocol, endpoint, attributes, return_subscription_arn
        )

    async def confirm_subscription(
        self, scope: AccountScope, topic_arn: str, token: str, authenticate_on_unsubscribe: bool, authenticated: bool
    ) -> str:
        return await self._subscriptions.confirm(scope, topic_arn, token, authenticate_on_unsubscribe, authenticated)

    async def unsubscribe(self, scope: AccountScope, subscription_arn: str, authenticated: bool = True) -> None:
        await self._subscriptions.unsubscribe(scope, subscription_arn, authenticated)

    async def get_subscription_attributes(self, scope: AccountScope, subscription_arn: str) -> dict[str, str]:
        return await self._subscriptions.get_attributes(scope, subscription_arn)

    async def set_subscription_attributes(
        self, scope: AccountScope, subscription_arn: str, name: str, value: str | None
    ) -> None:
        await self._subscriptions.set_attribute(scope, subscription_arn, name, value)

    async def list_subscriptions(self, scope: AccountScope, next_token: str | None) -> Page[SubscriptionView]:
        return await self._subscriptions.list(scope, next_token)

    async def list_subscriptions_by_topic(
        self, scope: AccountScope, topic_arn: str, next_token: str | None
    ) -> Page[SubscriptionView]:
        topic = await self._ctx.require_topic(topic_arn, scope)
        _authorize(topic, scope, "ListSubscriptionsByTopic")
        return await self._subscriptions.list_by_topic(topic_arn, next_token)

    async def get_subscription(self, subscription_arn: str) -> Subscription | None:
        """The stored subscription (for the delivery side and tests), or None."""
        return await self._subscriptions.get(subscription_arn)

    async def pending_token(self, subscription_arn: str) -> str | None:
        """The confirmation token of a pending subscription (what the confirmation message carries)."""
        sub = await self._subscriptions.get(subscription_arn)
        return sub.token if sub is not None and not sub.confirmed else None

    # ---- publishing ----

    async def publish(self, scope: AccountScope, request: PublishRequest) -> Published:
        return await self._publishing.publish(scope, request)

    async def publish_batch(
        self, scope: AccountScope, topic_arn: str, entries: Sequence[tuple[str, PublishRequest]]
    ) -> BatchOutcome[Published]:
        return await self._publishing.publish_batch(scope, topic_arn, entries)

    # ---- platform applications and endpoints ----

    async def create_platform_application(
        self, scope: AccountScope, name: str, platform: str, attributes: Mapping[str, str]
    ) -> str:
        return await self._mobile.create_application(scope, name, platform, attributes)

    async def delete_platform_application(self, scope: AccountScope, arn: str) -> None:
        await self._mobile.delete_application(scope, arn)

    async def get_platform_application_attributes(self, scope: AccountScope, arn: str) -> dict[str, str]:
        return await self._mobile.get_application_attributes(scope, arn)

    async def set_platform_application_attributes(
        self, scope: AccountScope, arn: str, attributes: Mapping[str, str]
    ) -> None:
        await self._mobile.set_application_attributes(scope, arn, attributes)

    async def list_platform_applications(self, scope: AccountScope, next_token: str | None) -> Page[PlatformResource]:
        return await self._mobile.list_applications(scope, next_token)

    async def create_platform_endpoint(
        self,
        scope: AccountScope,
        application_arn: str,
        token: str,
        custom_user_data: str | None,
        attributes: Mapping[str, str],
    ) -> str:
        return await self._mobile.create_endpoint(scope, application_arn, token, custom_user_data, attributes)

    async def delete_endpoint(self, scope: AccountScope, arn: str) -> None:
        await self._mobile.delete_endpoint(scope, arn)

    async def get_endpoint_attributes(self, scope: AccountScope, arn: str) -> dict[str, str]:
        return await self._mobile.get_endpoint_attributes(scope, arn)

    async def set_endpoint_attributes(self, scope: AccountScope, arn: str, attributes: Mapping[str, str]) -> None:
        await self._mobile.set_endpoint_attributes(scope, arn, attributes)

    async def list_endpoints_by_platform_application(
        self, scope: AccountScope, application_arn: str, next_token: str | None
    ) -> Page[PlatformResource]:
        return await self._mobile.list_endpoints(scope, application_arn, next_token)

    # ---- SMS ----

    async def set_sms_attributes(self, scope: AccountScope, attributes: Mapping[str, str]) -> None:
        await self._mobile.set_sms_attributes(scope, attributes)

    async def get_sms_attributes(self, scope: AccountScope, names: Sequence[str]) -> dict[str, str]:
        return await self._mobile.get_sms_attributes(scope, names)

    async def check_if_phone_number_is_opted_out(self, scope: AccountScope, phone_number: str) -> bool:
        return await self._mobile.is_opted_out(scope, phone_number)

    async def list_phone_numbers_opted_out(self, scope: AccountScope, next_token: str | None) -> Page[str]:
        return await self._mobile.list_opted_out(scope, next_token)

    async def opt_in_phone_number(self, scope: AccountScope, phone_number: str) -> None:
        await self._mobile.opt_in(scope, phone_number)

    async def opt_out_phone_number(self, scope: AccountScope, phone_number: str) -> None:
        """Record that a number replied STOP (no AWS action: the SMS provider side calls this)."""
        await self._mobile.opt_out(scope, phone_number)

    async def create_sms_sandbox_phone_number(self, scope: AccountScope, phone_number: str, language: str) -> None:
        await self._mobile.create_sandbox_number(scope, phone_number, language)

    async def verify_sms_sandbox_phone_number(self, scope: AccountScope, phone_number: str, otp: str) -> None:
        await self._mobile.verify_sandbox_number(scope, phone_number, otp)

    async def delete_sms_sandbox_phone_number(self, scope: AccountScope, phone_number: str) -> None:
        await self._mobile.delete_sandbox_number(scope, phone_number)

    async def list_sms_sandbox_phone_numbers(
        self, scope: AccountScope, next_token: str | None, max_results: int | None
    ) -> Page[SandboxNumber]:
        return await self._mobile.list_sandbox_numbers(scope, next_token, max_results)

    async def get_sms_sandbox_account_status(self, scope: AccountScope) -> bool:
        return self._ctx.settings.sms_sandbox

    async def list_origination_numbers(
        self, scope: AccountScope, next_token: str | None, max_results: int | None
    ) -> Page[dict[str, str]]:
        return self._mobile.list_origination_numbers(next_token, max_results)


def _authorize(topic: Topic, scope: AccountScope, action: str) -> None:
    access.authorize_topic(topic, scope.account_id, action)


def _same_topic(existing: Topic, requested: Mapping[str, str], tags: Mapping[str, str]) -> None:
    """CreateTopic of an existing name succeeds only when what it asks for is what the topic has."""
    for name, value in requested.items():
        if not check.same_attribute_value(name, existing.attributes.get(name, _implicit(name)), value):
            raise check.invalid("Attributes Reason: Topic already exists with different attributes")
    for name, value in tags.items():
        if existing.tags.get(name) != value:
            raise check.invalid("Tags Reason: Topic already exists with different tags")


def _implicit(name: str) -> str | None:
    """The value an attribute that was never set has, for comparison."""
    return {"SignatureVersion": "1", "TracingConfig": "PassThrough", "ContentBasedDeduplication": "false"}.get(name)


def _check_json_policy(text: str, parameter: str) -> str:
    import json

    try:
        document = json.loads(text)
    except ValueError:
        raise check.invalid(f"{parameter} Reason: failed to parse JSON") from None
    if not isinstance(document, dict):
        raise check.invalid(f"{parameter} Reason: must be a JSON object")
    return text
