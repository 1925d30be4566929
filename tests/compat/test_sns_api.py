"""SNS control plane against a live server with boto3 (Query/XML), checked against what AWS answers.

Expected values come from AWS: botocore's SNS model, the SNS API reference, and responses recorded
from real AWS by public test suites (error codes, messages, statuses, attribute sets). Every test
uses its own uniquely named resources on the session's shared server.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from compat_helpers import raised

pytestmark = pytest.mark.compat

DEFAULT_ACTIONS = [
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
    "SNS:Subscribe",
    "SNS:ListSubscriptionsByTopic",
    "SNS:Publish",
]
DEFAULT_EFFECTIVE_DELIVERY_POLICY = {
    "http": {
        "defaultHealthyRetryPolicy": {
            "minDelayTarget": 20,
            "maxDelayTarget": 20,
            "numRetries": 3,
            "numMaxDelayRetries": 0,
            "numNoDelayRetries": 0,
            "numMinDelayRetries": 0,
            "backoffFunction": "linear",
        },
        "disableSubscriptionOverrides": False,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
    }
}


@pytest.fixture
def sqs(loosely: Any) -> Any:
    return loosely.boto3_client("sqs")


def _client(loosely: Any, service: str, region: str = "us-east-1", **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=loosely.endpoint,
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue_arn(sqs: Any, fifo: bool = False) -> str:
    name = _name("q") + (".fifo" if fifo else "")
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"} if fifo else {})["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


# ---- topics ----


def test_new_topic_has_exactly_the_attributes_aws_returns(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]

    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]

    assert set(attributes) == {
        "DisplayName",
        "EffectiveDeliveryPolicy",
        "Owner",
        "Policy",
        "SubscriptionsConfirmed",
        "SubscriptionsDeleted",
        "SubscriptionsPending",
        "TopicArn",
    }
    assert json.loads(attributes["EffectiveDeliveryPolicy"]) == DEFAULT_EFFECTIVE_DELIVERY_POLICY
    assert json.loads(attributes["Policy"]) == {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": DEFAULT_ACTIONS,
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": "000000000000"}},
            }
        ],
    }
    assert (attributes["DisplayName"], attributes["Owner"], attributes["TopicArn"]) == ("", "000000000000", arn)
    assert [attributes[f"Subscriptions{s}"] for s in ("Confirmed", "Pending", "Deleted")] == ["0", "0", "0"]


def test_fifo_topic_attributes(sns: Any) -> None:
    arn = sns.create_topic(
        Name=_name() + ".fifo", Attributes={"DisplayName": "TestTopic", "SignatureVersion": "2", "FifoTopic": "true"}
    )["TopicArn"]

    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]

    assert attributes["FifoTopic"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert (attributes["SignatureVersion"], attributes["DisplayName"]) == ("2", "TestTopic")


def test_create_topic_is_idempotent_for_the_same_or_fewer_attributes_and_tags(sns: Any) -> None:
    name = _name()
    tags = [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    arn = sns.create_topic(Name=name, Tags=tags)["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="AlreadySet")

    for extra in ({"Tags": tags}, {"Tags": tags[:1]}, {"Tags": []}, {}):
        assert sns.create_topic(Name=name, **extra)["TopicArn"] == arn
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "AlreadySet"
    assert raised(sns.create_topic, Name=name, Tags=[{"Key": "a", "Value": "other"}]) == (
        "InvalidParameter",
        "Invalid parameter: Tags Reason: Topic already exists with different tags",
        400,
    )
    assert raised(sns.create_topic, Name=name, Attributes={"DisplayName": "different"})[:2] == (
        "InvalidParameter",
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
    )


def test_create_topic_after_delete_takes_new_tags(sns: Any) -> None:
    name = _name()
    arn = sns.create_topic(Name=name, Tags=[{"Key": "Name", "Value": "pqr"}])["TopicArn"]
    sns.delete_topic(TopicArn=arn)

    assert sns.create_topic(Name=name, Tags=[{"Key": "Name", "Value": "abc"}])["TopicArn"] == arn
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "Name", "Value": "abc"}]


@pytest.mark.parametrize("name", ["", "a" * 257, "bad:name", "bad;name", "bad!name", "bad@name", "bad|name", "a b"])
def test_topic_name_rules(sns: Any, name: str) -> None:
    assert raised(sns.create_topic, Name=name) == ("InvalidParameter", "Invalid parameter: Topic Name", 400)


def test_topic_names_up_to_256_characters_and_fifo_suffix(sns: Any) -> None:
    long_name = _name("x") + "a" * (256 - 12)
    assert sns.create_topic(Name=long_name)["TopicArn"].endswith(":" + long_name)
    assert raised(sns.create_topic, Name=_name() + ".fifo")[0] == "InvalidParameter"
    assert raised(sns.create_topic, Name=_name(), Attributes={"FifoTopic": "true"})[0] == "InvalidParameter"


def test_fifo_topic_false_is_a_standard_topic_and_fifo_topic_is_create_only(sns: Any) -> None:
    arn = sns.create_topic(Name=_name(), Attributes={"FifoTopic": "false"})["TopicArn"]

    assert "FifoTopic" not in sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert raised(sns.set_topic_attributes, TopicArn=arn, AttributeName="FifoTopic", AttributeValue="false") == (
        "InvalidParameter",
        "Invalid parameter: AttributeName",
        400,
    )


def test_fifo_only_attributes_on_a_standard_topic(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]

    code, message, _ = raised(
        sns.set_topic_attributes, TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="true"
    )

    assert code == "InvalidParameter" and "ContentBasedDeduplication" in message


def test_topic_arn_errors(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]

    assert raised(sns.get_topic_attributes, TopicArn="test-topic") == (
        "InvalidParameter",
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1",
        400,
    )
    assert raised(sns.get_topic_attributes, TopicArn=arn + "-missing") == ("NotFound", "Topic does not exist", 404)
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting twice, or a topic that never was, is no error
    assert raised(sns.get_topic_attributes, TopicArn=arn)[0] == "NotFound"


def test_topic_of_another_region_is_an_invalid_topic_arn(loosely: Any, sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]
    west = _client(loosely, "sns", region="us-west-1")
    expected = ("InvalidParameter", "Invalid parameter: TopicArn", 400)

    assert raised(west.get_topic_attributes, TopicArn=arn) == expected
    assert raised(west.set_topic_attributes, TopicArn=arn, AttributeName="DisplayName", AttributeValue="x") == expected
    assert raised(west.publish, TopicArn=arn, Message="m") == expected
    assert raised(west.publish_batch, TopicArn=arn, PublishBatchRequestEntries=[{"Id": "1", "Message": "m"}]) == (
        expected
    )
    assert raised(west.subscribe, TopicArn=arn, Protocol="email", Endpoint="a@example.com") == expected
    assert raised(west.list_subscriptions_by_topic, TopicArn=arn) == expected
    assert raised(west.delete_topic, TopicArn=arn) == expected


def test_same_name_in_two_regions_are_two_topics(loosely: Any, sns: Any) -> None:
    name = _name()
    west = _client(loosely, "sns", region="us-west-1")

    east_arn = sns.create_topic(Name=name)["TopicArn"]
    west_arn = west.create_topic(Name=name)["TopicArn"]

    assert west_arn == east_arn.replace("us-east-1", "us-west-1")
    assert {"TopicArn": west_arn} in west.get_paginator("list_topics").paginate().build_full_result()["Topics"]
    assert {"TopicArn": west_arn} not in sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]


def test_list_topics_pages_by_100(sns: Any) -> None:
    prefix = _name("page")
    arns = {sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)}

    first = sns.list_topics()
    rest = sns.get_paginator("list_topics").paginate(PaginationConfig={"StartingToken": first["NextToken"]})
    listed = [t["TopicArn"] for t in first["Topics"]] + [t["TopicArn"] for page in rest for t in page["Topics"]]

    assert len(first["Topics"]) == 100 and first["NextToken"]
    assert arns <= set(listed) and len(listed) == len(set(listed))
    assert raised(sns.list_topics, NextToken="not a token!")[0] == "InvalidParameter"


def test_topic_delivery_policy_is_stored_as_aws_normalizes_it(sns: Any) -> None:
    arn = sns.create_topic(
        Name=_name() + ".fifo",
        Attributes={
            "FifoTopic": "true",
            "DeliveryPolicy": json.dumps({"http": {"defaultRequestPolicy": {"headerContentType": "application/json"}}}),
        },
    )["TopicArn"]

    def policies() -> tuple[Any, Any]:
        attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        stored = attributes.get("DeliveryPolicy")
        return (json.loads(stored) if stored else None), json.loads(attributes["EffectiveDeliveryPolicy"])

    stored, effective = policies()
    assert stored == {
        "http": {
            "disableSubscriptionOverrides": False,
            "defaultRequestPolicy": {"headerContentType": "application/json"},
        }
    }
    assert effective["http"]["defaultRequestPolicy"] == {"headerContentType": "application/json"}

    healthy = {"minDelayTarget": 5, "maxDelayTarget": 6, "numRetries": 1}
    sns.set_topic_attributes(
        TopicArn=arn,
        AttributeName="DeliveryPolicy",
        AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": healthy}}),
    )
    stored, effective = policies()
    assert stored == {"http": {"defaultHealthyRetryPolicy": healthy, "disableSubscriptionOverrides": False}}
    assert effective["http"]["defaultHealthyRetryPolicy"] == {
        **healthy,
        "numMaxDelayRetries": 0,
        "numNoDelayRetries": 0,
        "numMinDelayRetries": 0,
        "backoffFunction": "linear",
    }
    assert effective["http"]["defaultRequestPolicy"] == {"headerContentType": "text/plain; charset=UTF-8"}

    sns.set_topic_attributes(
        TopicArn=arn,
        AttributeName="DeliveryPolicy",
        AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": None}}),
    )
    assert policies() == ({"http": {"disableSubscriptionOverrides": False}}, DEFAULT_EFFECTIVE_DELIVERY_POLICY)

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue="")
    assert policies() == (None, DEFAULT_EFFECTIVE_DELIVERY_POLICY)


def test_settable_topic_attributes_round_trip(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]
    role = "arn:aws:iam::000000000000:role/feedback"
    values = {
        "DisplayName": "Shop",
        "SignatureVersion": "2",
        "TracingConfig": "Active",
        "KmsMasterKeyId": "alias/aws/sns",
        "LambdaSuccessFeedbackRoleArn": role,
        "LambdaSuccessFeedbackSampleRate": "100",
        "SQSFailureFeedbackRoleArn": role,
    }

    for name, value in values.items():
        sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue=value)
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]

    assert {k: attributes[k] for k in values} == values
    for name, value in (("SignatureVersion", "3"), ("TracingConfig", "On"), ("Owner", "1"), ("Bogus", "x")):
        assert raised(sns.set_topic_attributes, TopicArn=arn, AttributeName=name, AttributeValue=value)[0] == (
            "InvalidParameter"
        )


def test_policy_attribute_replaces_the_default_document(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "SNS:Publish", "Resource": arn}],
    }

    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))

    assert json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"]) == policy
    assert raised(sns.set_topic_attributes, TopicArn=arn, AttributeName="Policy", AttributeValue="{no json")[0] == (
        "InvalidParameter"
    )


# ---- permissions ----


def test_add_and_remove_permission_edit_the_policy(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]

    sns.add_permission(TopicArn=arn, Label="one", AWSAccountId=["999999999999"], ActionName=["Publish"])
    sns.add_permission(
        TopicArn=arn, Label="two", AWSAccountId=["888888888888", "999999999999"], ActionName=["Publish", "Subscribe"]
    )
    statements = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]

    assert statements[1] == {
        "Sid": "one",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "SNS:Publish",
        "Resource": arn,
    }
    assert statements[2]["Principal"] == {"AWS": ["arn:aws:iam::888888888888:root", "arn:aws:iam::999999999999:root"]}
    assert statements[2]["Action"] == ["SNS:Publish", "SNS:Subscribe"]
    assert raised(
        sns.add_permission, TopicArn=arn, Label="one", AWSAccountId=["999999999999"], ActionName=["Publish"]
    ) == ("InvalidParameter", "Invalid parameter: Statement already exists", 400)
    assert raised(
        sns.add_permission, TopicArn=arn, Label="three", AWSAccountId=["999999999999"], ActionName=["Fly"]
    ) == ("InvalidParameter", "Invalid parameter: Policy statement action out of service scope!", 400)

    sns.remove_permission(TopicArn=arn, Label="one")
    sns.remove_permission(TopicArn=arn, Label="never-added")
    sids = [s["Sid"] for s in json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]]
    assert sids == ["__default_statement_ID", "two"]
    assert raised(sns.add_permission, TopicArn=arn + "x", Label="l", AWSAccountId=["1"], ActionName=["Publish"])[0] == (
        "NotFound"
    )


# ---- tags ----


def test_tags(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]

    assert raised(
        sns.tag_resource,
        ResourceArn=arn,
        Tags=[{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}, {"Key": "k2", "Value": "v2"}],
    ) == ("InvalidParameter", "Invalid parameter: Duplicated keys are not allowed.", 400)
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}])
    assert sorted(sns.list_tags_for_resource(ResourceArn=arn)["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "k1", "Value": "v1"},
        {"Key": "k2", "Value": "v2"},
    ]
    sns.untag_resource(ResourceArn=arn, TagKeys=["k1"])
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k2", "Value": "v2b"}])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k2", "Value": "v2b"}]
    assert raised(sns.list_tags_for_resource, ResourceArn=arn + "-missing") == (
        "ResourceNotFound",
        "Resource does not exist",
        404,
    )
    too_many = [{"Key": f"x{i}", "Value": "v"} for i in range(50)]  # 51 with k2
    assert raised(sns.tag_resource, ResourceArn=arn, Tags=too_many)[:2] == (
        "TagLimitExceeded",
        "Could not complete request: tag quota of per resource exceeded",
    )


# ---- data protection ----


def test_data_protection_policy(sns: Any) -> None:
    arn = sns.create_topic(Name=_name())["TopicArn"]
    policy = {
        "Name": "policy",
        "Version": "2021-06-01",
        "Statement": [
            {
                "Sid": "deny",
                "DataDirection": "Inbound",
                "Principal": ["*"],
                "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress"],
                "Operation": {"Deny": {}},
            }
        ],
    }

    assert not sns.get_data_protection_policy(ResourceArn=arn).get("DataProtectionPolicy")
    sns.put_data_protection_policy(ResourceArn=arn, DataProtectionPolicy=json.dumps(policy))

    assert json.loads(sns.get_data_protection_policy(ResourceArn=arn)["DataProtectionPolicy"]) == policy
    assert "DataProtectionPolicy" not in sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert raised(sns.get_data_protection_policy, ResourceArn=arn + "-missing")[0] == "NotFound"
    assert raised(sns.put_data_protection_policy, ResourceArn=arn, DataProtectionPolicy="{no")[0] == (
        "InvalidParameter"
    )


# ---- subscriptions ----


def test_sqs_subscription_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    queue = _queue_arn(sqs)

    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]

    assert arn.startswith(topic + ":") and str(uuid.UUID(arn.rsplit(":", 1)[1])) == arn.rsplit(":", 1)[1]
    assert attributes == {
        "ConfirmationWasAuthenticated": "true",
        "Endpoint": queue,
        "Owner": "000000000000",
        "PendingConfirmation": "false",
        "Protocol": "sqs",
        "RawMessageDelivery": "false",
        "SubscriptionArn": arn,
        "SubscriptionPrincipal": attributes["SubscriptionPrincipal"],
        "TopicArn": topic,
    }
    assert attributes["SubscriptionPrincipal"].startswith("arn:aws:iam::000000000000:")
    assert json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"]) == 1


def test_subscribe_attributes_are_validated_and_canonical(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    queue = _queue_arn(sqs)
    attributes = {"RawMessageDelivery": "wrongvalue", "FilterPolicyScope": "MessageBody", "FilterPolicy": ""}

    assert raised(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=queue, Attributes=attributes) == (
        "InvalidParameter",
        "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [wrongvalue]. Must be true or false.",
        400,
    )
    arn = sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue,
        Attributes={**attributes, "RawMessageDelivery": "TrUe"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    stored = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]

    assert stored["RawMessageDelivery"] == "true"
    assert "FilterPolicy" not in stored and "FilterPolicyScope" not in stored
    assert raised(sns.get_subscription_attributes, SubscriptionArn=arn[:-8] + "abcdefgh") == (
        "NotFound",
        "Subscription does not exist",
        404,
    )


def test_subscribe_is_idempotent_per_endpoint_and_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    queue = _queue_arn(sqs)

    def subscribe(attributes: dict[str, str] | None) -> str:
        extra = {} if attributes is None else {"Attributes": attributes}
        return str(
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue, ReturnSubscriptionArn=True, **extra)[
                "SubscriptionArn"
            ]
        )

    arn = subscribe({"RawMessageDelivery": "True"})

    for same in (
        {"RawMessageDelivery": "true"},
        {"RawMessageDelivery": "true", "FilterPolicyScope": "MessageAttributes"},
        None,
        {},
        {"FilterPolicyScope": "MessageAttributes"},
    ):
        assert subscribe(same) == arn
    with pytest.raises(ClientError) as caught:
        subscribe({"RawMessageDelivery": "false", "FilterPolicyScope": "MessageBody"})
    assert caught.value.response["Error"]["Message"] == (
        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
    )
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1


def test_subscribe_endpoint_validation_per_protocol(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    queue_url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]

    def fails(protocol: str, endpoint: str) -> tuple[str, str, int]:
        return raised(sns.subscribe, TopicArn=topic, Protocol=protocol, Endpoint=endpoint)

    assert fails("test-protocol", "a@example.com") == (
        "InvalidParameter",
        "Invalid parameter: Amazon SNS does not support this protocol string: test-protocol",
        400,
    )
    assert fails("sqs", queue_url)[1] == "Invalid parameter: SQS endpoint ARN"
    assert fails("sqs", "unknown")[1] == "Invalid parameter: SQS endpoint ARN"
    assert fails("sms", "invalid-number")[1] == "Invalid SMS endpoint: invalid-number"
    assert fails("sms", "NAA+15551234567")[1] == "Invalid SMS endpoint: NAA+15551234567"
    assert fails("http", "https://example.com")[0] == "InvalidParameter"
    assert fails("https", "http://example.com")[0] == "InvalidParameter"
    assert fails("email", "not-an-address")[0] == "InvalidParameter"
    missing_endpoint = "arn:aws:sns:us-east-1:000000000000:endpoint/GCM/app/missing"
    assert fails("application", missing_endpoint)[1].endswith(
        f"Endpoint does not exist for endpoint arn{missing_endpoint}"
    )
    # A queue that does not exist yet may be subscribed: SNS checks ARNs, not queues.
    unknown_queue = f"arn:aws:sqs:us-east-1:000000000000:{_name('unknown')}"
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=unknown_queue)["SubscriptionArn"].startswith(topic)


def test_subscribe_topic_arn_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    def fails(arn: str) -> tuple[str, str, int]:
        return raised(sns.subscribe, TopicArn=arn, Protocol="email", Endpoint="a@example.com")

    assert fails("randomstring")[1] == "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1"
    assert fails("arn:aws:sns:us-east-1:random")[1] == (
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 5"
    )
    assert fails(topic + "aaa") == ("NotFound", "Topic does not exist", 404)


def test_pending_subscriptions(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://example.com/")["SubscriptionArn"] == (
        "pending confirmation"
    )
    arn = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="test@example.com", ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    topic_attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]

    assert (attributes["PendingConfirmation"], attributes["ConfirmationWasAuthenticated"]) == ("true", "false")
    assert {(s["Protocol"], s["SubscriptionArn"]) for s in listed} == {
        ("http", "PendingConfirmation"),
        ("email", "PendingConfirmation"),
    }
    assert (topic_attributes["SubscriptionsPending"], topic_attributes["SubscriptionsConfirmed"]) == ("2", "0")
    sns.delete_topic(TopicArn=topic)
    assert raised(sns.unsubscribe, SubscriptionArn="PendingConfirmation") == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1",
        400,
    )


def test_sms_subscription(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    arn = sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+123123123")["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]

    assert (attributes["Protocol"], attributes["Endpoint"], attributes["PendingConfirmation"]) == (
        "sms",
        "+123123123",
        "false",
    )
    assert attributes["RawMessageDelivery"] == "false"


def test_http_subscription_delivery_policy_and_effective_policy(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(
        TopicArn=topic, Protocol="http", Endpoint="http://example.com/hook", ReturnSubscriptionArn=True
    )["SubscriptionArn"]

    sns.set_subscription_attributes(
        SubscriptionArn=arn,
        AttributeName="DeliveryPolicy",
        AttributeValue=json.dumps({"requestPolicy": {"headerContentType": "text/csv"}}),
    )
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]

    assert json.loads(attributes["DeliveryPolicy"]) == {
        "healthyRetryPolicy": None,
        "sicklyRetryPolicy": None,
        "throttlePolicy": None,
        "requestPolicy": {"headerContentType": "text/csv"},
        "guaranteed": False,
    }
    assert json.loads(attributes["EffectiveDeliveryPolicy"]) == {
        "healthyRetryPolicy": DEFAULT_EFFECTIVE_DELIVERY_POLICY["http"]["defaultHealthyRetryPolicy"],
        "sicklyRetryPolicy": None,
        "throttlePolicy": None,
        "requestPolicy": {"headerContentType": "text/csv"},
        "guaranteed": False,
    }

    healthy = {
        "minDelayTarget": 1,
        "maxDelayTarget": 1,
        "numRetries": 0,
        "numNoDelayRetries": 0,
        "numMinDelayRetries": 0,
        "numMaxDelayRetries": 0,
        "backoffFunction": "linear",
    }
    policy = {
        "healthyRetryPolicy": healthy,
        "sicklyRetryPolicy": None,
        "throttlePolicy": {"maxReceivesPerSecond": 1000},
        "guaranteed": False,
    }
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(policy)
    )
    sns.set_topic_attributes(
        TopicArn=topic,
        AttributeName="DeliveryPolicy",
        AttributeValue=json.dumps({"http": {"defaultRequestPolicy": {"headerContentType": "application/json"}}}),
    )
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    stored = attributes["DeliveryPolicy"]

    assert json.loads(stored) == {**policy, "requestPolicy": None}
    assert list(json.loads(stored)["healthyRetryPolicy"]) == [
        "minDelayTarget",
        "maxDelayTarget",
        "numRetries",
        "numMaxDelayRetries",
        "numNoDelayRetries",
        "numMinDelayRetries",
        "backoffFunction",
    ]
    assert json.loads(attributes["EffectiveDeliveryPolicy"])["requestPolicy"] == {
        "headerContentType": "application/json"
    }


def test_set_subscription_attribute_errors(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs))["SubscriptionArn"]

    def fails(name: str, value: str) -> str:
        return raised(sns.set_subscription_attributes, SubscriptionArn=arn, AttributeName=name, AttributeValue=value)[1]

    assert fails("FakeAttribute", "test-value") == "Invalid parameter: AttributeName"
    assert fails("RawMessageDelivery", "test-ValUe") == (
        "Invalid parameter: RawMessageDelivery: Invalid value [test-ValUe]. Must be true or false."
    )
    assert (
        fails("RawMessageDelivery", "")
        == "Invalid parameter: RawMessageDelivery: Invalid value []. Must be true or false."
    )
    assert fails("RedrivePolicy", json.dumps({"deadLetterTargetArn": "fake-arn"})) == (
        "Invalid parameter: RedrivePolicy: deadLetterTargetArn is an invalid arn"
    )
    assert fails("FilterPolicyScope", "Everything").startswith("Invalid parameter: ")
    sns.unsubscribe(SubscriptionArn=arn)
    assert raised(
        sns.set_subscription_attributes, SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true"
    ) == ("NotFound", "Subscription does not exist", 404)


def test_raw_delivery_is_refused_for_protocols_without_it(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    code, message, _ = raised(
        sns.subscribe,
        TopicArn=topic,
        Protocol="email",
        Endpoint="a@example.com",
        Attributes={"RawMessageDelivery": "true"},
    )

    assert code == "InvalidParameter" and "does not support raw message delivery" in message


def test_fifo_topic_subscription_rules(sns: Any, sqs: Any) -> None:
    standard = sns.create_topic(Name=_name())["TopicArn"]
    fifo = sns.create_topic(Name=_name() + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    fifo_queue = _queue_arn(sqs, fifo=True)
    standard_queue = _queue_arn(sqs)
    standard_dlq = _queue_arn(sqs)

    assert raised(sns.subscribe, TopicArn=standard, Protocol="sqs", Endpoint=fifo_queue) == (
        "InvalidParameter",
        "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard "
        "SNS topics",
        400,
    )
    assert raised(sns.subscribe, TopicArn=fifo, Protocol="email", Endpoint="a@example.com")[0] == "InvalidParameter"
    to_standard = sns.subscribe(TopicArn=fifo, Protocol="sqs", Endpoint=standard_queue)["SubscriptionArn"]
    to_fifo = sns.subscribe(TopicArn=fifo, Protocol="sqs", Endpoint=fifo_queue)["SubscriptionArn"]
    redrive = json.dumps({"deadLetterTargetArn": standard_dlq})
    sns.set_subscription_attributes(SubscriptionArn=to_standard, AttributeName="RedrivePolicy", AttributeValue=redrive)
    assert raised(
        sns.set_subscription_attributes, SubscriptionArn=to_fifo, AttributeName="RedrivePolicy", AttributeValue=redrive
    ) == (
        "InvalidParameter",
        "Invalid parameter: RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a FIFO Topic.",
        400,
    )


def test_fifo_topic_subscription_quota(sns: Any) -> None:
    """AWS quota: 100 subscriptions per FIFO topic; code and status from botocore's model (403)."""
    topic = sns.create_topic(Name=_name() + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    queue = "arn:aws:sqs:us-east-1:000000000000:quota-{}.fifo"
    for i in range(100):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.format(i))

    code, _, status = raised(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=queue.format(100))
    assert (code, status) == ("SubscriptionLimitExceeded", 403)
    with pytest.raises(sns.exceptions.SubscriptionLimitExceededException):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.format(101))


def test_unsubscribe(sns: Any, sqs: Any, raw_sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs))["SubscriptionArn"]

    sns.unsubscribe(SubscriptionArn=arn)
    sns.unsubscribe(SubscriptionArn=arn)  # twice is no error

    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert raised(raw_sns.unsubscribe, SubscriptionArn="randomstring")[1] == (
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1"
    )
    assert raised(raw_sns.unsubscribe, SubscriptionArn="arn:aws:sns:us-east-1:random")[1] == (
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 5"
    )
    assert raised(raw_sns.unsubscribe, SubscriptionArn="arn:aws:sns:us-east-1:111111111111:random") == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionId",
        400,
    )
    assert raised(
        sns.get_subscription_attributes, SubscriptionArn=f"arn:aws:sns:us-east-1:000000000000:{_name('nonexistent')}"
    ) == ("InvalidParameter", "Invalid parameter: SubscriptionId", 400)


def test_confirm_subscription_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    token = "51b2ff3edb475b7d91550e0ab6edf0c1de2a34e6ebaf6c2262a001bcb7e051c43aa00022ceecce70bd2a67b2042da8d8eb47"

    assert raised(sns.confirm_subscription, TopicArn=topic[:-1] + "i", Token=token) == (
        "InvalidParameter",
        "Invalid parameter: Token",
        400,
    )
    assert raised(sns.confirm_subscription, TopicArn=topic, Token=token)[:2] == (
        "InvalidParameter",
        "Invalid parameter: Token",
    )
    assert raised(sns.confirm_subscription, TopicArn="not-an-arn", Token=token)[1] == "Invalid parameter: Topic"
    other_region = topic.replace("us-east-1", "eu-central-1")
    assert raised(sns.confirm_subscription, TopicArn=other_region, Token=token)[1] == "Invalid parameter: Topic"


def test_list_subscriptions_by_topic_pages_by_100(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    for suffix in range(101):
        sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint=f"+1231231{suffix:03d}")

    first = sns.list_subscriptions_by_topic(TopicArn=topic)
    second = sns.list_subscriptions_by_topic(TopicArn=topic, NextToken=first["NextToken"])
    everything = sns.list_subscriptions()

    assert len(first["Subscriptions"]) == 100 and base64.b64decode(first["NextToken"])
    assert len(second["Subscriptions"]) == 1 and "NextToken" not in second
    assert second["Subscriptions"][0]["SubscriptionArn"] not in {s["SubscriptionArn"] for s in first["Subscriptions"]}
    assert set(second["Subscriptions"][0]) == {"SubscriptionArn", "Owner", "Protocol", "Endpoint", "TopicArn"}
    assert len(everything["Subscriptions"]) == 100 and everything["NextToken"]
    listed = sns.get_paginator("list_subscriptions").paginate().build_full_result()["Subscriptions"]
    assert sum(1 for s in listed if s["TopicArn"] == topic) == 101


# ---- platform applications and endpoints ----


def test_platform_application_and_endpoints(sns: Any) -> None:
    app = sns.create_platform_application(
        Name=_name("app"), Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )["PlatformApplicationArn"]
    first = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token-1", CustomUserData="user")[
        "EndpointArn"
    ]

    again = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token-1", CustomUserData="user")
    second = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token-2")["EndpointArn"]

    assert app.startswith("arn:aws:sns:us-east-1:000000000000:app/GCM/")
    assert first.startswith(app.replace(":app/", ":endpoint/") + "/") and again["EndpointArn"] == first
    assert "PlatformCredential" not in sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"]
    assert sns.get_endpoint_attributes(EndpointArn=first)["Attributes"] == {
        "CustomUserData": "user",
        "Enabled": "true",
        "Token": "token-1",
    }
    code, message, _ = raised(
        sns.create_platform_endpoint, PlatformApplicationArn=app, Token="token-1", CustomUserData="other"
    )
    assert code == "InvalidParameter" and f"Endpoint {first} already exists with the same Token" in message
    listed = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert {e["EndpointArn"] for e in listed} == {first, second}

    sns.set_endpoint_attributes(EndpointArn=second, Attributes={"Enabled": "false"})
    assert sns.get_endpoint_attributes(EndpointArn=second)["Attributes"]["Enabled"] == "false"
    assert raised(sns.publish, TargetArn=second, Message="m") == ("EndpointDisabled", "Endpoint is disabled", 400)
    assert sns.publish(TargetArn=first, Message=json.dumps({"GCM": "{}"}), MessageStructure="json")["MessageId"]

    sns.delete_endpoint(EndpointArn=second)
    sns.delete_endpoint(EndpointArn=second)  # twice is no error
    sns.delete_platform_application(PlatformApplicationArn=app)
    assert raised(sns.get_endpoint_attributes, EndpointArn=first)[0] == "NotFound"
    assert raised(sns.get_platform_application_attributes, PlatformApplicationArn=app)[0] == "NotFound"


def test_publish_to_unknown_platform_endpoint(sns: Any) -> None:
    target = "arn:aws:sns:us-east-1:000000000000:endpoint/APNS/abcdef/0f7d5971-aa8b-4bd5-b585-0826e9f93a66"

    assert raised(sns.publish, TargetArn=target, Message="push") == (
        "InvalidParameter",
        "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified",
        400,
    )


# ---- SMS ----


def test_sms_attributes_opt_out_and_sandbox(sns: Any) -> None:
    sns.set_sms_attributes(attributes={"DefaultSMSType": "Transactional", "DefaultSenderID": "Shop"})
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"

    attributes = sns.get_sms_attributes(attributes=["DefaultSMSType"])["attributes"]

    assert attributes == {"DefaultSMSType": "Transactional"}
    assert sns.get_sms_attributes()["attributes"]["DefaultSenderID"] == "Shop"
    assert sns.check_if_phone_number_is_opted_out(phoneNumber=number)["isOptedOut"] is False
    assert isinstance(sns.list_phone_numbers_opted_out()["phoneNumbers"], list)
    assert raised(sns.check_if_phone_number_is_opted_out, phoneNumber="invalid-number")[0] == "InvalidParameter"
    assert isinstance(sns.get_sms_sandbox_account_status()["IsInSandbox"], bool)

    sns.create_sms_sandbox_phone_number(PhoneNumber=number, LanguageCode="en-US")
    listed = sns.list_sms_sandbox_phone_numbers()["PhoneNumbers"]
    assert {"PhoneNumber": number, "Status": "Pending"} in listed
    assert raised(sns.verify_sms_sandbox_phone_number, PhoneNumber=number, OneTimePassword="000000")[0] in (
        "VerificationException",
        "ResourceNotFound",
    )
    sns.delete_sms_sandbox_phone_number(PhoneNumber=number)
    assert {"PhoneNumber": number, "Status": "Pending"} not in sns.list_sms_sandbox_phone_numbers()["PhoneNumbers"]
    assert sns.list_origination_numbers()["PhoneNumbers"] == []


def test_publish_to_a_phone_number(sns: Any) -> None:
    assert sns.publish(PhoneNumber="+15555550123", Message="code 1234")["MessageId"]
    assert raised(sns.publish, PhoneNumber="+1a234", Message="m") == (
        "InvalidParameter",
        "Invalid parameter: PhoneNumber Reason: +1a234 is not valid to publish to",
        400,
    )
    assert raised(sns.publish, PhoneNumber="NAA+15551234567", Message="m")[1] == (
        "Invalid parameter: PhoneNumber Reason: NAA+15551234567 is not valid to publish to"
    )
