"""TopicService: platform applications and endpoints, SMS attributes, opt-outs, sandbox numbers."""

from __future__ import annotations

import pytest
from test_service_support import SCOPE, Harness

from loosely.core.errors import InvalidParameter, ResourceNotFound
from loosely.core.topics.errors import NotFound, OptedOut, ValidationError, VerificationFailed
from loosely.core.topics.models import PUSH_SMS_VERIFICATION

PHONE = "+15555550100"


async def test_platform_application_life_cycle(h: Harness) -> None:
    arn = await h.service.create_platform_application(
        SCOPE, "my.app", "APNS", {"PlatformCredential": "key", "PlatformPrincipal": "cert"}
    )

    assert arn == "arn:aws:sns:us-east-1:123456789012:app/APNS/my.app"
    assert await h.service.get_platform_application_attributes(SCOPE, arn) == {"Enabled": "true"}
    await h.service.set_platform_application_attributes(SCOPE, arn, {"EventEndpointCreated": "arn:x"})
    listed = (await h.service.list_platform_applications(SCOPE, None)).items
    assert [(a.arn, dict(a.attributes)) for a in listed] == [
        (arn, {"Enabled": "true", "EventEndpointCreated": "arn:x"})
    ]

    await h.service.delete_platform_application(SCOPE, arn)
    with pytest.raises(NotFound, match="PlatformApplication does not exist"):
        await h.service.get_platform_application_attributes(SCOPE, arn)


@pytest.mark.parametrize(
    ("name", "platform", "attributes", "message"),
    [
        ("bad name", "GCM", {"PlatformCredential": "k"}, "must contain only characters"),
        ("app", "PAGER", {"PlatformCredential": "k"}, "Platform Reason: PAGER is not supported"),
        ("app", "APNS", {"PlatformCredential": "k"}, "PlatformCredential attribute provided without PlatformPrincipal"),
        ("app", "GCM", {}, "PlatformCredential attribute is required"),
        ("app", "GCM", {"PlatformCredential": "k", "Colour": "x"}, "Invalid attribute name: Colour"),
    ],
)
async def test_create_platform_application_validation(
    h: Harness, name: str, platform: str, attributes: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        await h.service.create_platform_application(SCOPE, name, platform, attributes)


async def test_platform_endpoints_are_idempotent_per_token(h: Harness) -> None:
    app = await h.service.create_platform_application(SCOPE, "app", "GCM", {"PlatformCredential": "k"})

    endpoint = await h.service.create_platform_endpoint(SCOPE, app, "tok", "user-1", {})

    assert endpoint.startswith("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/")
    assert await h.service.create_platform_endpoint(SCOPE, app, "tok", "user-1", {}) == endpoint
    with pytest.raises(InvalidParameter, match="already exists with the same Token, but different attributes"):
        await h.service.create_platform_endpoint(SCOPE, app, "tok", "user-2", {})
    assert await h.service.get_endpoint_attributes(SCOPE, endpoint) == {
        "Enabled": "true",
        "CustomUserData": "user-1",
        "Token": "tok",
    }
    await h.service.set_endpoint_attributes(SCOPE, endpoint, {"Token": "tok2", "Enabled": "False"})
    assert (await h.service.get_endpoint_attributes(SCOPE, endpoint))["Enabled"] == "false"
    assert await h.service.create_platform_endpoint(SCOPE, app, "tok", None, {}) != endpoint
    listed = (await h.service.list_endpoints_by_platform_application(SCOPE, app, None)).items
    assert len(listed) == 2

    await h.service.delete_endpoint(SCOPE, endpoint)
    await h.service.delete_endpoint(SCOPE, endpoint)
    with pytest.raises(NotFound, match="Endpoint does not exist"):
        await h.service.get_endpoint_attributes(SCOPE, endpoint)
    with pytest.raises(NotFound, match="PlatformApplication does not exist"):
        await h.service.create_platform_endpoint(SCOPE, app + "x", "tok", None, {})


async def test_subscribe_application_needs_an_existing_endpoint(h: Harness) -> None:
    topic = await h.service.create_topic(SCOPE, "t", {})
    app = await h.service.create_platform_application(SCOPE, "app", "GCM", {"PlatformCredential": "k"})
    endpoint = await h.service.create_platform_endpoint(SCOPE, app, "tok", None, {})

    sub = await h.service.subscribe(SCOPE, topic, "application", endpoint, {})

    assert (await h.service.get_subscription_attributes(SCOPE, sub))["PendingConfirmation"] == "false"
    with pytest.raises(InvalidParameter, match="Endpoint does not exist for endpoint arn"):
        await h.service.subscribe(SCOPE, topic, "application", endpoint + "0", {})


async def test_sms_attributes_set_and_get(h: Harness) -> None:
    assert await h.service.get_sms_attributes(SCOPE, []) == {"MonthlySpendLimit": "1"}

    await h.service.set_sms_attributes(SCOPE, {"DefaultSMSType": "Transactional", "DefaultSenderID": "Shop1"})

    assert await h.service.get_sms_attributes(SCOPE, ["DefaultSMSType"]) == {"DefaultSMSType": "Transactional"}
    with pytest.raises(InvalidParameter, match="DefaultSMSType is invalid"):
        await h.service.set_sms_attributes(SCOPE, {"DefaultSMSType": "Loud"})
    with pytest.raises(InvalidParameter, match="Colour is not a valid attribute"):
        await h.service.set_sms_attributes(SCOPE, {"Colour": "x"})


async def test_opt_out_list(h: Harness) -> None:
    assert not await h.service.check_if_phone_number_is_opted_out(SCOPE, PHONE)
    await h.service.opt_out_phone_number(SCOPE, PHONE)

    assert await h.service.check_if_phone_number_is_opted_out(SCOPE, PHONE)
    assert (await h.service.list_phone_numbers_opted_out(SCOPE, None)).items == [PHONE]
    await h.service.opt_in_phone_number(SCOPE, PHONE)
    assert not await h.service.check_if_phone_number_is_opted_out(SCOPE, PHONE)
    with pytest.raises(InvalidParameter, match="PhoneNumber Reason: input incorrectly formatted"):
        await h.service.check_if_phone_number_is_opted_out(SCOPE, "555")


async def test_sandbox_numbers_verify_with_the_sent_code(h: Harness) -> None:
    await h.service.create_sms_sandbox_phone_number(SCOPE, PHONE, "en-US")
    [otp_sms] = await h.pushes()
    otp = otp_sms.body.rsplit(" ", 1)[1]

    assert otp_sms.kind == PUSH_SMS_VERIFICATION and otp_sms.endpoint == PHONE and len(otp) == 6
    assert [
        (n.phone_number, n.status) for n in (await h.service.list_sms_sandbox_phone_numbers(SCOPE, None, None)).items
    ] == [(PHONE, "Pending")]
    with pytest.raises(VerificationFailed):
        await h.service.verify_sms_sandbox_phone_number(SCOPE, PHONE, "000000" if otp != "000000" else "111111")
    await h.service.verify_sms_sandbox_phone_number(SCOPE, PHONE, otp)
    assert (await h.service.list_sms_sandbox_phone_numbers(SCOPE, None, 10)).items[0].status == "Verified"

    await h.service.delete_sms_sandbox_phone_number(SCOPE, PHONE)
    with pytest.raises(ResourceNotFound):
        await h.service.delete_sms_sandbox_phone_number(SCOPE, PHONE)
    with pytest.raises(ResourceNotFound):
        await h.service.verify_sms_sandbox_phone_number(SCOPE, PHONE, otp)


async def test_sandbox_refuses_opted_out_numbers_and_bad_language(h: Harness) -> None:
    await h.service.opt_out_phone_number(SCOPE, PHONE)

    with pytest.raises(OptedOut):
        await h.service.create_sms_sandbox_phone_number(SCOPE, PHONE, "en-US")
    with pytest.raises(InvalidParameter, match="LanguageCode"):
        await h.service.create_sms_sandbox_phone_number(SCOPE, "+15555550101", "xx-XX")


async def test_origination_numbers_are_empty_and_max_results_is_checked(h: Harness) -> None:
    assert (await h.service.list_origination_numbers(SCOPE, None, 30)).items == []
    with pytest.raises(ValidationError, match="less than or equal to 30"):
        await h.service.list_origination_numbers(SCOPE, None, 31)
    assert await h.service.get_sms_sandbox_account_status(SCOPE) is False
