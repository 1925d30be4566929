"""The 42 SNS actions: decoded Query parameters in, one `TopicService` call, AWS-named output out.

Every rule lives in ``loosely.core.topics``; a handler only converts wire values (tag lists,
message attribute structures, batch entries) to core values and back. The caller's account and
region come from its SigV4 credential; an unsigned request (a SubscribeURL or UnsubscribeURL that a
browser or an HTTP endpoint GETs) is served as the server's default account and counts as
unauthenticated for ConfirmSubscription and Unsubscribe.
"""

from __future__ import annotations

from typing import Any

from loosely.core.errors import InvalidParameter, MissingParameter, ServiceUnavailable
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AccountScope, AttributeValue, PlatformResource, Published, PublishRequest
from loosely.protocols.service import OperationContext, OperationTable, Params
from loosely.protocols.sns.errors import SNS_ERROR_TABLE

__all__ = ["ARNS_CHECKED_BY_SNS", "SNS_OPERATIONS"]

SNS_OPERATIONS = OperationTable()
ARNS_CHECKED_BY_SNS = frozenset({"TopicArn", "SubscriptionArn"})  # their absence is worded by `_arn`
operation = SNS_OPERATIONS.operation
Out = dict[str, Any]


# ---- conversions ----


def _svc(ctx: OperationContext) -> TopicService:
    topics = ctx.server.topics
    if topics is None:
        raise ServiceUnavailable("SNS is not available: the configured store keeps no documents.")
    return topics


def _scope(ctx: OperationContext) -> AccountScope:
    return AccountScope(ctx.account_id, ctx.region)


def _arn(p: Params, name: str) -> str:
    """A required topic or subscription ARN: SNS words its absence as an invalid parameter, not a model error.

    Recorded AWS response: localstack's test_sns.snapshot.json, test_unsubscribe_wrong_arn_format
    (invalid-unsubscribe-arn-4: Unsubscribe without SubscriptionArn).
    """
    value = p.opt_string(name)
    if value is None:
        raise InvalidParameter(f"Invalid parameter: {name} Reason: no value for required parameter")
    return value


def _tags(p: Params, name: str = "Tags") -> list[tuple[str, str]]:
    return [(t.string("Key"), t.opt_string("Value") or "") for t in p.structs(name)]


def _attribute_values(p: Params, path: str = "") -> dict[str, AttributeValue]:
    """Message attributes as the core sees them; ``path`` locates them in AWS's validation messages."""
    values = {}
    for name, entry in p.struct_map("MessageAttributes").items():
        if entry.raw.get("DataType") is None:
            raise MissingParameter(
                f"1 validation error detected: Value null at '{path}messageAttributes.{name}.member.dataType' "
                "failed to satisfy constraint: Member must not be null"
            )
        binary = entry.raw.get("BinaryValue")
        values[name] = AttributeValue(
            data_type=entry.opt_string("DataType") or "",
            string_value=entry.opt_string("StringValue"),
            binary_value=binary if isinstance(binary, bytes) else None,
        )
    return values


def _trace_header(ctx: OperationContext) -> str | None:
    """The request's X-Ray trace header, which SNS passes on to SQS subscribers (as AWSTraceHeader)."""
    value = ctx.request.headers.get("x-amzn-trace-id")
    return value if value and value.isprintable() else None


def _publish_request(
    p: Params, topic_arn: str | None = None, path: str = "", trace_header: str | None = None
) -> PublishRequest:
    return PublishRequest(
        message=p.opt_string("Message") or "",
        topic_arn=topic_arn or p.opt_string("TopicArn"),
        target_arn=p.opt_string("TargetArn"),
        phone_number=p.opt_string("PhoneNumber"),
        subject=p.opt_string("Subject"),
        message_structure=p.opt_string("MessageStructure"),
        attributes=_attribute_values(p, path),
        group_id=p.opt_string("MessageGroupId"),
        dedup_id=p.opt_string("MessageDeduplicationId"),
        trace_header=trace_header,
    )


def _published(result: Published) -> Out:
    return {"MessageId": result.message_id, "SequenceNumber": result.sequence_number}


def _resources(items: Any, arn_member: str) -> list[Out]:
    resources: list[PlatformResource] = list(items)
    return [{arn_member: r.arn, "Attributes": dict(r.attributes)} for r in resources]


def _authenticated(ctx: OperationContext) -> bool:
    return ctx.caller.access_key_id is not None


# ---- topics ----


@operation("CreateTopic")
async def create_topic(ctx: OperationContext, p: Params) -> Out:
    arn = await _svc(ctx).create_topic(
        _scope(ctx), p.string("Name"), p.string_map("Attributes"), _tags(p), p.opt_string("DataProtectionPolicy")
    )
    return {"TopicArn": arn}


@operation("DeleteTopic")
async def delete_topic(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).delete_topic(_scope(ctx), _arn(p, "TopicArn"))


@operation("ListTopics")
async def list_topics(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_topics(_scope(ctx), p.opt_string("NextToken"))
    return {"Topics": [{"TopicArn": arn} for arn in page.items], "NextToken": page.next_token}


@operation("GetTopicAttributes")
async def get_topic_attributes(ctx: OperationContext, p: Params) -> Out:
    return {"Attributes": await _svc(ctx).get_topic_attributes(_scope(ctx), _arn(p, "TopicArn"))}


@operation("SetTopicAttributes")
async def set_topic_attributes(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).set_topic_attributes(
        _scope(ctx), _arn(p, "TopicArn"), p.string("AttributeName"), p.opt_string("AttributeValue")
    )


@operation("AddPermission")
async def add_permission(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).add_permission(
        _scope(ctx), _arn(p, "TopicArn"), p.string("Label"), p.strings("AWSAccountId"), p.strings("ActionName")
    )


@operation("RemovePermission")
async def remove_permission(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).remove_permission(_scope(ctx), _arn(p, "TopicArn"), p.string("Label"))


@operation("TagResource")
async def tag_resource(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).tag_resource(_scope(ctx), p.string("ResourceArn"), _tags(p))
    return {}


@operation("UntagResource")
async def untag_resource(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).untag_resource(_scope(ctx), p.string("ResourceArn"), p.strings("TagKeys"))
    return {}


@operation("ListTagsForResource")
async def list_tags_for_resource(ctx: OperationContext, p: Params) -> Out:
    tags = await _svc(ctx).list_tags_for_resource(_scope(ctx), p.string("ResourceArn"))
    return {"Tags": [{"Key": k, "Value": v} for k, v in tags]}


@operation("GetDataProtectionPolicy")
async def get_data_protection_policy(ctx: OperationContext, p: Params) -> Out:
    policy = await _svc(ctx).get_data_protection_policy(_scope(ctx), p.string("ResourceArn"))
    return {"DataProtectionPolicy": policy}


@operation("PutDataProtectionPolicy")
async def put_data_protection_policy(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).put_data_protection_policy(_scope(ctx), p.string("ResourceArn"), p.string("DataProtectionPolicy"))


# ---- subscriptions ----


@operation(
    "Subscribe",
    support="partial",
    notes="Lambda and Firehose endpoints are refused.",
)
async def subscribe(ctx: OperationContext, p: Params) -> Out:
    arn = await _svc(ctx).subscribe(
        _scope(ctx),
        _arn(p, "TopicArn"),
        p.string("Protocol"),
        p.opt_string("Endpoint"),
        p.string_map("Attributes"),
        bool(p.raw.get("ReturnSubscriptionArn")),
    )
    return {"SubscriptionArn": arn}


@operation("ConfirmSubscription")
async def confirm_subscription(ctx: OperationContext, p: Params) -> Out:
    authenticate = (p.opt_string("AuthenticateOnUnsubscribe") or "").lower() == "true"
    arn = await _svc(ctx).confirm_subscription(
        _scope(ctx), _arn(p, "TopicArn"), p.string("Token"), authenticate, _authenticated(ctx)
    )
    return {"SubscriptionArn": arn}


@operation("Unsubscribe")
async def unsubscribe(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).unsubscribe(_scope(ctx), _arn(p, "SubscriptionArn"), _authenticated(ctx))


@operation("GetSubscriptionAttributes")
async def get_subscription_attributes(ctx: OperationContext, p: Params) -> Out:
    return {"Attributes": await _svc(ctx).get_subscription_attributes(_scope(ctx), _arn(p, "SubscriptionArn"))}


@operation("SetSubscriptionAttributes")
async def set_subscription_attributes(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).set_subscription_attributes(
        _scope(ctx), _arn(p, "SubscriptionArn"), p.string("AttributeName"), p.opt_string("AttributeValue")
    )


def _subscriptions_out(page: Any) -> Out:
    subs = [
        {
            "SubscriptionArn": s.subscription_arn,
            "Owner": s.owner,
            "Protocol": s.protocol,
            "Endpoint": s.endpoint,
            "TopicArn": s.topic_arn,
        }
        for s in page.items
    ]
    return {"Subscriptions": subs, "NextToken": page.next_token}


@operation("ListSubscriptions")
async def list_subscriptions(ctx: OperationContext, p: Params) -> Out:
    return _subscriptions_out(await _svc(ctx).list_subscriptions(_scope(ctx), p.opt_string("NextToken")))


@operation("ListSubscriptionsByTopic")
async def list_subscriptions_by_topic(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_subscriptions_by_topic(_scope(ctx), _arn(p, "TopicArn"), p.opt_string("NextToken"))
    return _subscriptions_out(page)


# ---- publishing ----


@operation("Publish")
async def publish(ctx: OperationContext, p: Params) -> Out:
    request = _publish_request(p, trace_header=_trace_header(ctx))
    return _published(await _svc(ctx).publish(_scope(ctx), request))


@operation("PublishBatch")
async def publish_batch(ctx: OperationContext, p: Params) -> Out:
    topic_arn = _arn(p, "TopicArn")
    trace = _trace_header(ctx)
    entries = [
        (e.string("Id"), _publish_request(e, topic_arn, f"publishBatchRequestEntries.{i}.member.", trace))
        for i, e in enumerate(p.structs("PublishBatchRequestEntries"), 1)
    ]
    outcome = await _svc(ctx).publish_batch(_scope(ctx), topic_arn, entries)
    failed = []
    for failure in outcome.failed:
        error = SNS_ERROR_TABLE.lookup(failure.error)
        message = getattr(failure.error, "message", "") or str(failure.error)
        failed.append({"Id": failure.id, "Code": error.query_code, "Message": message, "SenderFault": True})
    successful = [{"Id": entry_id, **_published(result)} for entry_id, result in outcome.successful]
    return {"Successful": successful, "Failed": failed}


# ---- platform applications and endpoints ----


@operation("CreatePlatformApplication")
async def create_platform_application(ctx: OperationContext, p: Params) -> Out:
    arn = await _svc(ctx).create_platform_application(
        _scope(ctx), p.string("Name"), p.string("Platform"), p.string_map("Attributes")
    )
    return {"PlatformApplicationArn": arn}


@operation("DeletePlatformApplication")
async def delete_platform_application(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).delete_platform_application(_scope(ctx), p.string("PlatformApplicationArn"))


@operation("GetPlatformApplicationAttributes")
async def get_platform_application_attributes(ctx: OperationContext, p: Params) -> Out:
    arn = p.string("PlatformApplicationArn")
    return {"Attributes": await _svc(ctx).get_platform_application_attributes(_scope(ctx), arn)}


@operation("SetPlatformApplicationAttributes")
async def set_platform_application_attributes(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).set_platform_application_attributes(
        _scope(ctx), p.string("PlatformApplicationArn"), p.string_map("Attributes")
    )


@operation("ListPlatformApplications")
async def list_platform_applications(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_platform_applications(_scope(ctx), p.opt_string("NextToken"))
    return {"PlatformApplications": _resources(page.items, "PlatformApplicationArn"), "NextToken": page.next_token}


@operation("CreatePlatformEndpoint")
async def create_platform_endpoint(ctx: OperationContext, p: Params) -> Out:
    arn = await _svc(ctx).create_platform_endpoint(
        _scope(ctx),
        p.string("PlatformApplicationArn"),
        p.string("Token"),
        p.opt_string("CustomUserData"),
        p.string_map("Attributes"),
    )
    return {"EndpointArn": arn}


@operation("DeleteEndpoint")
async def delete_endpoint(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).delete_endpoint(_scope(ctx), p.string("EndpointArn"))


@operation("GetEndpointAttributes")
async def get_endpoint_attributes(ctx: OperationContext, p: Params) -> Out:
    return {"Attributes": await _svc(ctx).get_endpoint_attributes(_scope(ctx), p.string("EndpointArn"))}


@operation("SetEndpointAttributes")
async def set_endpoint_attributes(ctx: OperationContext, p: Params) -> None:
    await _svc(ctx).set_endpoint_attributes(_scope(ctx), p.string("EndpointArn"), p.string_map("Attributes"))


@operation("ListEndpointsByPlatformApplication")
async def list_endpoints_by_platform_application(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_endpoints_by_platform_application(
        _scope(ctx), p.string("PlatformApplicationArn"), p.opt_string("NextToken")
    )
    return {"Endpoints": _resources(page.items, "EndpointArn"), "NextToken": page.next_token}


# ---- SMS ----


@operation("SetSMSAttributes")
async def set_sms_attributes(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).set_sms_attributes(_scope(ctx), p.string_map("attributes"))
    return {}


@operation("GetSMSAttributes")
async def get_sms_attributes(ctx: OperationContext, p: Params) -> Out:
    return {"attributes": await _svc(ctx).get_sms_attributes(_scope(ctx), p.strings("attributes"))}


@operation("CheckIfPhoneNumberIsOptedOut")
async def check_if_phone_number_is_opted_out(ctx: OperationContext, p: Params) -> Out:
    return {"isOptedOut": await _svc(ctx).check_if_phone_number_is_opted_out(_scope(ctx), p.string("phoneNumber"))}


@operation("ListPhoneNumbersOptedOut")
async def list_phone_numbers_opted_out(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_phone_numbers_opted_out(_scope(ctx), p.opt_string("nextToken"))
    return {"phoneNumbers": list(page.items), "nextToken": page.next_token}


@operation("OptInPhoneNumber")
async def opt_in_phone_number(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).opt_in_phone_number(_scope(ctx), p.string("phoneNumber"))
    return {}


@operation("CreateSMSSandboxPhoneNumber")
async def create_sms_sandbox_phone_number(ctx: OperationContext, p: Params) -> Out:
    language = p.opt_string("LanguageCode") or "en-US"
    await _svc(ctx).create_sms_sandbox_phone_number(_scope(ctx), p.string("PhoneNumber"), language)
    return {}


@operation("VerifySMSSandboxPhoneNumber")
async def verify_sms_sandbox_phone_number(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).verify_sms_sandbox_phone_number(_scope(ctx), p.string("PhoneNumber"), p.string("OneTimePassword"))
    return {}


@operation("DeleteSMSSandboxPhoneNumber")
async def delete_sms_sandbox_phone_number(ctx: OperationContext, p: Params) -> Out:
    await _svc(ctx).delete_sms_sandbox_phone_number(_scope(ctx), p.string("PhoneNumber"))
    return {}


@operation("ListSMSSandboxPhoneNumbers")
async def list_sms_sandbox_phone_numbers(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_sms_sandbox_phone_numbers(
        _scope(ctx), p.opt_string("NextToken"), p.opt_integer("MaxResults")
    )
    numbers = [{"PhoneNumber": n.phone_number, "Status": n.status} for n in page.items]
    return {"PhoneNumbers": numbers, "NextToken": page.next_token}


@operation("GetSMSSandboxAccountStatus")
async def get_sms_sandbox_account_status(ctx: OperationContext, p: Params) -> Out:
    return {"IsInSandbox": await _svc(ctx).get_sms_sandbox_account_status(_scope(ctx))}


@operation("ListOriginationNumbers", support="partial", notes="this server owns no origination numbers")
async def list_origination_numbers(ctx: OperationContext, p: Params) -> Out:
    page = await _svc(ctx).list_origination_numbers(_scope(ctx), p.opt_string("NextToken"), p.opt_integer("MaxResults"))
    return {"PhoneNumbers": list(page.items), "NextToken": page.next_token}
