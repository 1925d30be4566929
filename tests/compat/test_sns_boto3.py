"""SNS against a live server: boto3 (Query/XML) and the AWS CLI, with modelled errors and SQS fan-in.

These need the store to keep documents and an outbox (``DocumentStore``/``OutboxStore`` on the
SQLite backend); until it does they are skipped with that reason.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from loosely.core.ports import DocumentStore, OutboxStore
from loosely.storage.sqlite import SqliteStore

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        not (issubclass(SqliteStore, DocumentStore) and issubclass(SqliteStore, OutboxStore)),
        reason="the SQLite store does not keep documents and an outbox yet",
    ),
]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_topic_life_cycle(sns: Any) -> None:
    name = _name("topic")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Shop"}, Tags=[{"Key": "team", "Value": "a"}])[
        "TopicArn"
    ]

    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Shop"})["TopicArn"] == arn
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Shop" and json.loads(attrs["Policy"])["Id"] == "__default_policy_ID"
    assert {"TopicArn": arn} in sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(sns.exceptions.NotFoundException, match="Topic does not exist"):
        sns.get_topic_attributes(TopicArn=arn)


def test_modelled_errors(sns: Any) -> None:
    with pytest.raises(sns.exceptions.InvalidParameterException, match="Invalid parameter: Topic Name"):
        sns.create_topic(Name="no spaces allowed")
    arn = sns.create_topic(Name=_name("t"))["TopicArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException, match="Topic already exists with different"):
        sns.create_topic(Name=arn.rsplit(":", 1)[1], Attributes={"DisplayName": "other"})
    with pytest.raises(sns.exceptions.InvalidParameterValueException) as error:
        sns.publish(TopicArn=arn, Message="m", MessageAttributes={"a": {"DataType": "Number", "StringValue": "x"}})
    assert error.value.response["Error"]["Code"] == "ParameterValueInvalid"
    with pytest.raises(sns.exceptions.ResourceNotFoundException):
        sns.list_tags_for_resource(ResourceArn=arn + "-missing")


def test_subscribe_sqs_and_publish(loosely: Any, sns: Any) -> None:
    sqs = loosely.boto3_client("sqs")
    queue_url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arn = sns.create_topic(Name=_name("t"))["TopicArn"]

    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    published = sns.publish(TopicArn=arn, Message="hello", Subject="Hi")
    batch = sns.publish_batch(
        TopicArn=arn, PublishBatchRequestEntries=[{"Id": "1", "Message": "a"}, {"Id": "2", "Message": "b"}]
    )

    assert sub.startswith(arn + ":")
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"
    assert published["MessageId"]
    assert [s["Id"] for s in batch["Successful"]] == ["1", "2"] and batch["Failed"] == []
    with pytest.raises(sns.exceptions.InvalidParameterException, match="Empty message"):  # the whole batch fails
        sns.publish_batch(
            TopicArn=arn, PublishBatchRequestEntries=[{"Id": "1", "Message": "a"}, {"Id": "2", "Message": ""}]
        )


def test_fifo_topic(sns: Any) -> None:
    arn = sns.create_topic(
        Name=_name("f") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]

    first = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g")
    again = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g")

    assert len(first["SequenceNumber"]) == 20 and again["MessageId"] == first["MessageId"]
    with pytest.raises(sns.exceptions.InvalidParameterException, match="MessageGroupId parameter is required"):
        sns.publish(TopicArn=arn, Message="m")


def test_pending_http_subscription(sns: Any) -> None:
    arn = sns.create_topic(Name=_name("t"))["TopicArn"]

    result = sns.subscribe(TopicArn=arn, Protocol="https", Endpoint="https://example.com/hook")

    assert result["SubscriptionArn"] == "pending confirmation"
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
    with pytest.raises(sns.exceptions.InvalidParameterException, match="Invalid parameter: Token"):
        sns.confirm_subscription(TopicArn=arn, Token="0123456789abcdef" * 18)  # AWS-shaped, but unknown


def test_platform_and_sms(sns: Any) -> None:
    app = sns.create_platform_application(Name=_name("app"), Platform="GCM", Attributes={"PlatformCredential": "k"})[
        "PlatformApplicationArn"
    ]
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="device")["EndpointArn"]

    assert sns.get_endpoint_attributes(EndpointArn=endpoint)["Attributes"]["Token"] == "device"
    assert sns.publish(TargetArn=endpoint, Message="push")["MessageId"]
    assert sns.publish(PhoneNumber="+15555550123", Message="sms")["MessageId"]
    assert sns.check_if_phone_number_is_opted_out(phoneNumber="+15555550123")["isOptedOut"] is False
    sns.delete_platform_application(PlatformApplicationArn=app)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_endpoint_attributes(EndpointArn=endpoint)


def test_aws_cli(loosely: Any) -> None:
    created = loosely.aws("sns", "create-topic", "--name", _name("cli"))
    assert created.returncode == 0, created.stderr
    arn = created.json["TopicArn"]

    published = loosely.aws("sns", "publish", "--topic-arn", arn, "--message", "from the cli")
    missing = loosely.aws("sns", "get-topic-attributes", "--topic-arn", arn + "-missing")

    assert published.returncode == 0 and published.json["MessageId"]
    assert missing.returncode != 0 and "NotFound" in missing.stderr
