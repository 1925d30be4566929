"""SNS answers checked against responses recorded from real AWS (boto3 against a live server).

Each expected code, message and status is a fact recorded from AWS by a public test suite; the
comment above each check names the recording it comes from (localstack's
``tests/aws/services/sns/test_sns.snapshot.json``, by test name and snapshot key).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat

_AT = "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: {}]"


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue_arn(sqs: Any) -> str:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


@pytest.fixture
def sqs(loosely: Any) -> Any:
    return loosely.boto3_client("sqs")


def test_attribute_that_is_not_json_quotes_jacksons_error(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs))["SubscriptionArn"]

    def set_attribute(name: str, value: str) -> tuple[str, str, int]:
        return raised(sns.set_subscription_attributes, SubscriptionArn=arn, AttributeName=name, AttributeValue=value)

    unquoted = "Unexpected character ('i' (code 105)): was expecting double-quote to start field name" + _AT.format(2)
    # test_validate_set_sub_attributes: invalid-json-redrive-policy, invalid-json-filter-policy
    assert set_attribute("RedrivePolicy", "{invalid json}") == (
        "InvalidParameter",
        f"Invalid parameter: RedrivePolicy: failed to parse JSON. {unquoted}",
        400,
    )
    assert set_attribute("FilterPolicy", "{invalid json}") == (
        "InvalidParameter",
        f"Invalid parameter: FilterPolicy: failed to parse JSON. {unquoted}",
        400,
    )
    # TestSNSSubscriptionCrudV2::test_subscribe_invalid_filter_policy: subscribe-invalid-filter-policy
    assert raised(
        sns.subscribe,
        TopicArn=topic,
        Protocol="email",
        Endpoint="test@example.com",
        Attributes={"FilterPolicy": "invalid-json"},
    ) == (
        "InvalidParameter",
        "Invalid parameter: Attributes Reason: FilterPolicy: failed to parse JSON. Unrecognized token 'invalid': "
        "was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')" + _AT.format(8),
        400,
    )
    assert "RedrivePolicy" not in sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]


def test_confirm_subscription_tells_a_malformed_token_from_an_unknown_one(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    unknown = "51b2ff3edb475b7d91550e0ab6edf0c1de2a34e6ebaf6c2262a001bcb7e051c43aa00022ceecce70bd2a67b2042da8d8eb47"

    # test_sns_confirm_subscription_wrong_token: topic-not-exists, invalid-token, token-not-exists
    assert raised(sns.confirm_subscription, TopicArn=topic[:-1] + "i", Token=unknown) == (
        "InvalidParameter",
        "Invalid parameter: Token",
        400,
    )
    assert raised(sns.confirm_subscription, TopicArn=topic, Token="randomtoken") == (
        "InvalidParameter",
        "Invalid token",
        400,
    )
    assert raised(sns.confirm_subscription, TopicArn=topic, Token=unknown) == (
        "InvalidParameter",
        "Invalid parameter: Token",
        400,
    )


def test_a_missing_topic_or_subscription_arn_is_an_invalid_parameter(raw_sns: Any) -> None:
    # test_unsubscribe_wrong_arn_format: invalid-unsubscribe-arn-4 (Unsubscribe without SubscriptionArn)
    assert raised(raw_sns.unsubscribe) == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter",
        400,
    )
    # SNS words every missing topic or subscription ARN alike (an SDK's recorded SNS error names TopicArn).
    assert raised(raw_sns.get_topic_attributes) == (
        "InvalidParameter",
        "Invalid parameter: TopicArn Reason: no value for required parameter",
        400,
    )
    assert raised(raw_sns.get_subscription_attributes)[1] == (
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter"
    )
    # test_publish_wrong_arn_format: empty-topic (an empty ARN is present, and malformed)
    assert raised(raw_sns.delete_topic, TopicArn="")[1] == (
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1"
    )


def test_sms_subscription_endpoints(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    # TestSNSSubscriptionCrudV2::test_subscribe_sms_obscure_phone_number: subscribe-sms-2
    arn = sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+12/34-567.890")["SubscriptionArn"]
    assert arn.startswith(topic + ":")
    # TestSNSSubscriptionCrudV2::test_subscribe_bad_sms: subscribe-bad-sms; test_publish_wrong_phone_format
    for number in ("invalid-number", "NAA+15551234567", "+15--551234567", "+15551234567."):
        assert raised(sns.subscribe, TopicArn=topic, Protocol="sms", Endpoint=number) == (
            "InvalidParameter",
            f"Invalid SMS endpoint: {number}",
            400,
        )
