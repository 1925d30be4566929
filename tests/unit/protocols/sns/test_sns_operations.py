"""SNS over Query through botocore's real serializer and parser: shapes, pagination and modelled errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from loosely.core.topics.models import PublishedMessage, PushDelivery
from loosely.protocols._wire import WireRequest
from loosely.protocols.dispatch import SERVICES, handle
from loosely.protocols.model import load_service_model

from ._support import SnsBridge, sns_bridge

QUEUE = "arn:aws:sqs:us-east-1:123456789012:q"


@pytest.fixture
def sns(tmp_path: Path) -> Iterator[SnsBridge]:
    with sns_bridge(tmp_path) as bridge:
        yield bridge


def test_every_operation_of_the_model_is_registered() -> None:
    spec = next(s for s in SERVICES if s.signing_name == "sns")
    model = load_service_model("sns-2010-03-31")

    assert sorted(op.name for op in spec.operations) == sorted(model.operations)
    assert len(model.operations) == 42


def test_topic_round_trip(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="orders", Attributes={"DisplayName": "O"}, Tags=[{"Key": "k", "Value": "v"}])[
        "TopicArn"
    ]

    attrs = sns.client.get_topic_attributes(TopicArn=arn)["Attributes"]

    assert arn == "arn:aws:sns:us-east-1:123456789012:orders"
    assert attrs["DisplayName"] == "O" and attrs["Owner"] == "123456789012"
    assert sns.client.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    assert sns.client.list_topics()["Topics"] == [{"TopicArn": arn}]
    sns.client.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="P")
    assert sns.client.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "P"


def test_errors_are_modelled_exceptions_with_aws_codes(sns: SnsBridge) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:missing"

    with pytest.raises(sns.client.exceptions.NotFoundException) as not_found:
        sns.client.get_topic_attributes(TopicArn=missing)
    with pytest.raises(sns.client.exceptions.InvalidParameterException) as invalid:
        sns.client.create_topic(Name="bad name")
    with pytest.raises(sns.client.exceptions.ResourceNotFoundException):
        sns.client.list_tags_for_resource(ResourceArn=missing)

    error = not_found.value.response["Error"]
    assert (error["Type"], error["Code"], error["Message"]) == ("Sender", "NotFound", "Topic does not exist")
    assert not_found.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert invalid.value.response["Error"]["Message"] == "Invalid parameter: Topic Name"
    assert sns.responses[-1].status == 404


def test_message_attribute_errors_are_parameter_value_invalid(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="t")["TopicArn"]

    with pytest.raises(sns.client.exceptions.InvalidParameterValueException) as error:
        sns.client.publish(
            TopicArn=arn, Message="m", MessageAttributes={"n": {"DataType": "Number", "StringValue": "x"}}
        )

    assert error.value.response["Error"]["Code"] == "ParameterValueInvalid"


def test_subscribe_list_and_attributes(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="t")["TopicArn"]
    sub = sns.client.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=QUEUE, Attributes={"RawMessageDelivery": "true"})[
        "SubscriptionArn"
    ]
    pending = sns.client.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.com")["SubscriptionArn"]

    listed = sns.client.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    attrs = sns.client.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]

    assert pending == "pending confirmation"
    assert sorted(s["SubscriptionArn"] for s in listed) == sorted([sub, "PendingConfirmation"])
    assert attrs["RawMessageDelivery"] == "true" and attrs["Protocol"] == "sqs"
    sns.client.unsubscribe(SubscriptionArn=sub)
    assert len(sns.client.list_subscriptions()["Subscriptions"]) == 1


def test_list_topics_pagination_with_next_token(sns: SnsBridge) -> None:
    for i in range(101):
        sns.client.create_topic(Name=f"t{i:03d}")

    first = sns.client.list_topics()
    second = sns.client.list_topics(NextToken=first["NextToken"])

    assert len(first["Topics"]) == 100 and len(second["Topics"]) == 1 and "NextToken" not in second
    paginated = sns.client.get_paginator("list_topics").paginate().build_full_result()
    assert len(paginated["Topics"]) == 101


def test_publish_and_publish_batch(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="t")["TopicArn"]

    message_id = sns.client.publish(
        TopicArn=arn,
        Message="hello",
        Subject="S",
        MessageAttributes={"b": {"DataType": "Binary", "BinaryValue": b"\x01"}},
    )["MessageId"]
    batch = sns.client.publish_batch(
        TopicArn=arn,
        PublishBatchRequestEntries=[{"Id": "a", "Message": "one"}, {"Id": "b", "Message": "two", "Subject": "S"}],
    )

    record = sns.published()[0]
    assert isinstance(record, PublishedMessage)
    assert (record.message_id, record.message, record.attributes["b"]) == (
        message_id,
        "hello",
        {"Type": "Binary", "Value": "AQ=="},
    )
    assert [s["Id"] for s in batch["Successful"]] == ["a", "b"]
    assert batch["Failed"] == []
    with pytest.raises(sns.client.exceptions.InvalidParameterException, match="Invalid parameter: Subject"):
        sns.client.publish_batch(
            TopicArn=arn,
            PublishBatchRequestEntries=[{"Id": "a", "Message": "one"}, {"Id": "b", "Message": "two", "Subject": ""}],
        )
    with pytest.raises(sns.client.exceptions.BatchEntryIdsNotDistinctException):
        sns.client.publish_batch(
            TopicArn=arn, PublishBatchRequestEntries=[{"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}]
        )


def test_fifo_publish_returns_sequence_number(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="t.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})[
        "TopicArn"
    ]

    result = sns.client.publish(TopicArn=arn, Message="m", MessageGroupId="g")

    assert len(result["SequenceNumber"]) == 20


def test_platform_and_sms_actions(sns: SnsBridge) -> None:
    app = sns.client.create_platform_application(Name="a", Platform="GCM", Attributes={"PlatformCredential": "k"})[
        "PlatformApplicationArn"
    ]
    endpoint = sns.client.create_platform_endpoint(PlatformApplicationArn=app, Token="t", CustomUserData="u")[
        "EndpointArn"
    ]

    assert sns.client.list_platform_applications()["PlatformApplications"] == [
        {"PlatformApplicationArn": app, "Attributes": {"Enabled": "true"}}
    ]
    endpoints = sns.client.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert endpoints == [
        {"EndpointArn": endpoint, "Attributes": {"Enabled": "true", "CustomUserData": "u", "Token": "t"}}
    ]
    sns.client.set_sms_attributes(attributes={"DefaultSMSType": "Transactional"})
    assert sns.client.get_sms_attributes(attributes=["DefaultSMSType"])["attributes"] == {
        "DefaultSMSType": "Transactional"
    }
    assert sns.client.check_if_phone_number_is_opted_out(phoneNumber="+15555550100")["isOptedOut"] is False
    assert sns.client.list_phone_numbers_opted_out()["phoneNumbers"] == []
    assert sns.client.get_sms_sandbox_account_status()["IsInSandbox"] is False
    sns.client.create_sms_sandbox_phone_number(PhoneNumber="+15555550100", LanguageCode="en-US")
    assert sns.client.list_sms_sandbox_phone_numbers()["PhoneNumbers"] == [
        {"PhoneNumber": "+15555550100", "Status": "Pending"}
    ]
    with pytest.raises(sns.client.exceptions.VerificationException):
        sns.client.verify_sms_sandbox_phone_number(PhoneNumber="+15555550100", OneTimePassword="nope-nope")
    assert sns.client.list_origination_numbers()["PhoneNumbers"] == []


def test_subscribe_url_get_confirms_without_credentials(sns: SnsBridge) -> None:
    arn = sns.client.create_topic(Name="t")["TopicArn"]
    sns.client.subscribe(TopicArn=arn, Protocol="https", Endpoint="https://example.com/h")
    push = sns.published()[-1]
    assert isinstance(push, PushDelivery) and push.token
    query = urlencode({"Action": "ConfirmSubscription", "TopicArn": arn, "Token": push.token})

    response = sns.run(handle(WireRequest("GET", "/", query.encode(), {"host": "localhost"}, b""), sns.ctx))

    assert response.status == 200
    assert f"<SubscriptionArn>{push.subscription_arn}</SubscriptionArn>".encode() in response.body
    attrs = sns.client.get_subscription_attributes(SubscriptionArn=push.subscription_arn)["Attributes"]
    assert attrs["PendingConfirmation"] == "false" and attrs["ConfirmationWasAuthenticated"] == "false"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["healthyRetryPolicy"]["numRetries"] == 3


def test_missing_client_side_parameter_raises_before_sending(sns: SnsBridge) -> None:
    with pytest.raises(Exception, match="Missing required parameter"):
        sns.client.create_topic()
    assert sns.responses == []


def test_client_error_type_is_client_error(sns: SnsBridge) -> None:
    with pytest.raises(ClientError):
        sns.client.get_subscription_attributes(SubscriptionArn="arn:aws:sns:us-east-1:123456789012:t:abc")
