"""Platform applications and endpoints, SMS attributes, the opt-out list and SMS sandbox numbers.

All are documents. An endpoint's parent is its application, so deleting an application deletes its
endpoints at once; CreatePlatformEndpoint is idempotent per (application, device token) through a
key document claimed with ``if_absent``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from loosely.core.documents import Document
from loosely.core.errors import ResourceNotFound
from loosely.core.topics import platform, sms
from loosely.core.topics._context import TopicContext, loads, update_document
from loosely.core.topics.errors import NotFound, OptedOut, UserError, VerificationFailed
from loosely.core.topics.models import PUSH_SMS_VERIFICATION, PushDelivery
from loosely.core.topics.validation import check_phone_number, invalid, split_arn
from loosely.core.topics.values import (
    APPLICATION_KIND,
    ENDPOINT_KIND,
    ENDPOINT_TOKEN_KIND,
    OPTED_OUT_KIND,
    SANDBOX_NUMBER_KIND,
    SMS_ATTRIBUTES_KIND,
    AccountScope,
    Page,
    PlatformResource,
    SandboxNumber,
)

Change = Any  # Callable[[dict[str, str]], dict[str, str] | None]


class Mobile:
    def __init__(self, ctx: TopicContext) -> None:
        self._ctx = ctx

    # ---- applications ----

    async def create_application(
        self, scope: AccountScope, name: str, platform_name: str, attributes: Mapping[str, str]
    ) -> str:
        stored = platform.check_application(name, platform_name, attributes)
        arn = platform.application_arn(scope.region, scope.account_id, platform_name, name)
        await self._ctx.documents.put_document(APPLICATION_KIND, arn, _body(stored), self._ctx.now())
        return arn

    async def delete_application(self, scope: AccountScope, arn: str) -> None:
        _check_application_arn(arn)
        await self._ctx.documents.delete_children(ENDPOINT_KIND, arn)
        await self._ctx.documents.delete_children(ENDPOINT_TOKEN_KIND, arn)
        await self._ctx.documents.delete_document(APPLICATION_KIND, arn)

    async def get_application_attributes(self, scope: AccountScope, arn: str) -> dict[str, str]:
        _check_application_arn(arn)
        return platform.visible_application_attributes(
            await self._attributes(APPLICATION_KIND, arn, "PlatformApplication")
        )

    async def set_application_attributes(self, scope: AccountScope, arn: str, attributes: Mapping[str, str]) -> None:
        _check_application_arn(arn)
        changes = platform.check_application_attributes(attributes)
        await self._update(APPLICATION_KIND, arn, "PlatformApplication", lambda a: {**a, **changes})

    async def list_applications(self, scope: AccountScope, next_token: str | None) -> Page[PlatformResource]:
        page = await self._ctx.page(APPLICATION_KIND, next_token, prefix=scope.arn_prefix)
        items = [PlatformResource(d.key, platform.visible_application_attributes(_attrs(d))) for d in page.items]
        return Page(items, page.next_token)

    # ---- endpoints ----

    async def create_endpoint(
        self,
        scope: AccountScope,
        application_arn: str,
        token: str,
        custom_user_data: str | None,
        attributes: Mapping[str, str],
    ) -> str:
        _check_application_arn(application_arn, "PlatformApplicationArn")
        if not token:
            raise invalid("Token Reason: cannot be empty")
        requested = platform.check_endpoint_attributes(attributes)
        if custom_user_data is not None:
            requested.setdefault(
                "CustomUserData",
                platform.check_endpoint_attributes({"CustomUserData": custom_user_data})["CustomUserData"],
            )
        wanted = {"Enabled": "true", **requested, "Token": token}
        if await self._ctx.documents.get_document(APPLICATION_KIND, application_arn) is None:
            raise NotFound("PlatformApplication does not exist")
        arn = platform.endpoint_arn(application_arn, self._ctx.ids.uuid())
        now = self._ctx.now()
        claim, created = await self._ctx.documents.put_document(
            ENDPOINT_TOKEN_KIND,
            _token_key(application_arn, token),
            json.dumps({"arn": arn}),
            now,
            parent=application_arn,
            if_absent=True,
        )
        if not created:
            existing_arn = str(loads(claim.body)["arn"])
            existing = await self._ctx.documents.get_document(ENDPOINT_KIND, existing_arn)
            if existing is not None:
                if _attrs(existing) != wanted:
                    raise invalid(
                        f"Token Reason: Endpoint {existing_arn} already exists with the same Token, but different "
                        "attributes."
                    )
                return existing_arn
            await self._ctx.documents.put_document(
                ENDPOINT_TOKEN_KIND,
                _token_key(application_arn, token),
                json.dumps({"arn": arn}),
                now,
                parent=application_arn,
            )
        await self._ctx.documents.put_document(ENDPOINT_KIND, arn, _body(wanted), now, parent=application_arn)
        return arn

    async def delete_endpoint(self, scope: AccountScope, arn: str) -> None:
        doc = await self._ctx.documents.get_document(ENDPOINT_KIND, arn)
        if doc is None:
            return  # deleting an endpoint that does not exist is no error
        await self._ctx.documents.delete_document(ENDPOINT_KIND, arn)
        token = _attrs(doc).get("Token")
        if token and doc.parent:
            await self._ctx.documents.delete_document(ENDPOINT_TOKEN_KIND, _token_key(doc.parent, token))

    async def get_endpoint_attributes(self, scope: AccountScope, arn: str) -> dict[str, str]:
        _check_endpoint_arn(arn)
        return await self._attributes(ENDPOINT_KIND, arn, "Endpoint")

    async def set_endpoint_attributes(self, scope: AccountScope, arn: str, attributes: Mapping[str, str]) -> None:
        _check_endpoint_arn(arn)
        changes = platform.check_endpoint_attributes(attributes)
        before = await self._attributes(ENDPOINT_KIND, arn, "Endpoint")
        await self._update(ENDPOINT_KIND, arn, "Endpoint", lambda a: {**a, **changes})
        application = platform.application_of(arn)
        new_token = changes.get("Token")
        if application and new_token and new_token != before.get("Token"):
            await self._ctx.documents.delete_document(ENDPOINT_TOKEN_KIND, _token_key(application, before["Token"]))
            await self._ctx.documents.put_document(
                ENDPOINT_TOKEN_KIND,
                _token_key(application, new_token),
                json.dumps({"arn": arn}),
                self._ctx.now(),
                parent=application,
            )

    async def list_endpoints(
        self, scope: AccountScope, application_arn: str, next_token: str | None
    ) -> Page[PlatformResource]:
        _check_application_arn(application_arn, "PlatformApplicationArn")
        if await self._ctx.documents.get_document(APPLICATION_KIND, application_arn) is None:
            raise NotFound("PlatformApplication does not exist")
        page = await self._ctx.page(ENDPOINT_KIND, next_token, parent=application_arn)
        return Page([PlatformResource(d.key, _attrs(d)) for d in page.items], page.next_token)

    # ---- SMS attributes and opt-outs ----

    async def set_sms_attributes(self, scope: AccountScope, attributes: Mapping[str, str]) -> None:
        changes = sms.check_sms_attributes(attributes)
        key = f"{scope.account_id}:{scope.region}"
        await self._ctx.documents.put_document(SMS_ATTRIBUTES_KIND, key, "{}", self._ctx.now(), if_absent=True)
        await self._update(SMS_ATTRIBUTES_KIND, key, "SMS attributes", lambda a: {**a, **changes})

    async def get_sms_attributes(self, scope: AccountScope, names: Sequence[str]) -> dict[str, str]:
        doc = await self._ctx.documents.get_document(SMS_ATTRIBUTES_KIND, f"{scope.account_id}:{scope.region}")
        values = {**sms.SMS_DEFAULTS, **(_attrs(doc) if doc is not None else {})}
        return {k: v for k, v in values.items() if not names or k in names}

    async def is_opted_out(self, scope: AccountScope, phone: str) -> bool:
        check_phone_number(phone)
        return await self._ctx.documents.get_document(OPTED_OUT_KIND, f"{scope.account_id}/{phone}") is not None

    async def list_opted_out(self, scope: AccountScope, next_token: str | None) -> Page[str]:
        page = await self._ctx.page(OPTED_OUT_KIND, next_token, prefix=f"{scope.account_id}/")
        return Page([d.key.split("/", 1)[1] for d in page.items], page.next_token)

    async def opt_in(self, scope: AccountScope, phone: str) -> None:
        check_phone_number(phone)
        await self._ctx.documents.delete_document(OPTED_OUT_KIND, f"{scope.account_id}/{phone}")

    async def opt_out(self, scope: AccountScope, phone: str) -> None:
        check_phone_number(phone)
        await self._ctx.documents.put_document(OPTED_OUT_KIND, f"{scope.account_id}/{phone}", "{}", self._ctx.now())

    # ---- sandbox ----

    async def create_sandbox_number(self, scope: AccountScope, phone: str, language: str) -> None:
        check_phone_number(phone)
        sms.check_language(language)
        if await self.is_opted_out(scope, phone):
            raise OptedOut(f"Phone number {phone} has opted out of receiving SMS messages")
        prefix = _sandbox_prefix(scope)
        existing = await self._ctx.documents.list_documents(SANDBOX_NUMBER_KIND, prefix=prefix)
        if len(existing) >= self._ctx.settings.max_sandbox_numbers and all(d.key != prefix + phone for d in existing):
            raise UserError("You have reached the maximum number of phone numbers in the SMS sandbox")
        otp = sms.one_time_password(self._ctx.ids.token(16))
        body = {"status": "Pending", "otp": otp, "language": language}
        await self._ctx.documents.put_document(SANDBOX_NUMBER_KIND, prefix + phone, json.dumps(body), self._ctx.now())
        await self._ctx.send_push(
            PushDelivery(
                kind=PUSH_SMS_VERIFICATION,
                protocol="sms",
                endpoint=phone,
                topic_arn="",
                message_id=self._ctx.ids.uuid(),
                body=sms.verification_text(otp),
                timestamp_ms=self._ctx.now(),
            )
        )

    async def verify_sandbox_number(self, scope: AccountScope, phone: str, otp: str) -> None:
        key = _sandbox_prefix(scope) + phone
        doc = await self._ctx.documents.get_document(SANDBOX_NUMBER_KIND, key)
        if doc is None:
            raise ResourceNotFound(f"Phone number {phone} does not exist in the SMS sandbox")
        body = loads(doc.body)
        if body["status"] == "Verified":
            return
        if otp != body["otp"]:
            raise VerificationFailed("Invalid one-time password")
        body["status"] = "Verified"
        await self._ctx.documents.put_document(
            SANDBOX_NUMBER_KIND, key, json.dumps(body), self._ctx.now(), expected_version=doc.version
        )

    async def delete_sandbox_number(self, scope: AccountScope, phone: str) -> None:
        if not await self._ctx.documents.delete_document(SANDBOX_NUMBER_KIND, _sandbox_prefix(scope) + phone):
            raise ResourceNotFound(f"Phone number {phone} does not exist in the SMS sandbox")

    async def list_sandbox_numbers(
        self, scope: AccountScope, next_token: str | None, max_results: int | None
    ) -> Page[SandboxNumber]:
        sms.check_max_results(max_results, 100)
        page = await self._ctx.page(SANDBOX_NUMBER_KIND, next_token, prefix=_sandbox_prefix(scope))
        items = [SandboxNumber(d.key.split("/", 1)[1], loads(d.body)["status"]) for d in page.items]
        return Page(items, page.next_token)

    def list_origination_numbers(self, next_token: str | None, max_results: int | None) -> Page[dict[str, str]]:
        """This server owns no origination numbers (they are bought from AWS End User Messaging)."""
        sms.check_max_results(max_results, 30)
        return Page([])

    # ---- helpers ----

    async def _attributes(self, kind: str, arn: str, noun: str) -> dict[str, str]:
        doc = await self._ctx.documents.get_document(kind, arn)
        if doc is None:
            raise NotFound(f"{noun} does not exist")
        return _attrs(doc)

    async def _update(self, kind: str, key: str, noun: str, change: Change) -> None:
        async def load() -> tuple[Document, dict[str, str]]:
            doc = await self._ctx.documents.get_document(kind, key)
            if doc is None:
                raise NotFound(f"{noun} does not exist")
            return doc, _attrs(doc)

        async def store(doc: Document, attributes: dict[str, str]) -> None:
            await self._ctx.documents.put_document(
                kind, key, _body(attributes), self._ctx.now(), parent=doc.parent, expected_version=doc.version
            )

        await update_document(load, change, store)


def _attrs(doc: Document) -> dict[str, str]:
    body = loads(doc.body)
    attributes = body.get("attributes", body)
    return {str(k): str(v) for k, v in attributes.items()}


def _body(attributes: Mapping[str, str]) -> str:
    return json.dumps({"attributes": dict(attributes)})


def _token_key(application_arn: str, token: str) -> str:
    return f"{application_arn}\n{token}"


def _sandbox_prefix(scope: AccountScope) -> str:
    return f"{scope.account_id}:{scope.region}/"


def _check_application_arn(arn: str, parameter: str = "PlatformApplicationArn") -> None:
    split_arn(arn, parameter)
    if not platform.is_application_arn(arn):
        raise invalid(f"{parameter} Reason: Wrong format for resource: {arn}")


def _check_endpoint_arn(arn: str) -> None:
    split_arn(arn, "EndpointArn")
    if platform.application_of(arn) is None:
        raise invalid(f"EndpointArn Reason: Wrong format for resource: {arn}")
