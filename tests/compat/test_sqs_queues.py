"""SQS queue administration as AWS answers it, over boto3 in both wire protocols (JSON and Query).

Expected values are AWS's (API reference, botocore's model, and responses recorded against AWS by
other projects' test suites), not loosely's: each test says what an SDK user sees on AWS.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from compat_helpers import arn_of, error_of, unique

pytestmark = pytest.mark.compat

ACCOUNT = "000000000000"
OTHER_ACCOUNT = "111122223333"


def new_queue(sqs: Any, name: str | None = None, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=name or unique(), Attributes=attributes)["QueueUrl"])


# ---- CreateQueue ----


@pytest.mark.parametrize(
    ("name", "attributes", "message"),
    [
        ("a" * 81, {}, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"),
        ("bad name", {}, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"),
        (
            "queue/with/slashes",
            {},
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ),
        ("std.fifo", {}, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"),
        (
            "no-suffix",
            {"FifoQueue": "true"},
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end "
            "with .fifo suffix and be 1 to 80 in length",
        ),
    ],
)
def test_create_queue_invalid_name_is_invalid_parameter_value(
    sqs: Any, name: str, attributes: dict[str, str], message: str
) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=name, Attributes=attributes)
    assert error_of(info) == ("InvalidParameterValue", message, 400)


def test_create_queue_name_of_80_characters_is_accepted(sqs: Any) -> None:
    name = unique("n").ljust(80, "x")
    assert sqs.create_queue(QueueName=name)["QueueUrl"].endswith("/" + name)
    fifo = unique("f").ljust(75, "x") + ".fifo"
    assert sqs.create_queue(QueueName=fifo, Attributes={"FifoQueue": "true"})["QueueUrl"].endswith("/" + fifo)


@pytest.mark.parametrize(
    ("attributes", "code", "message"),
    [
        ({"Foo": "1"}, "InvalidAttributeName", "Unknown Attribute Foo."),
        ({"FifoQueue": "false"}, "InvalidAttributeName", "Unknown Attribute FifoQueue."),
        ({"ContentBasedDeduplication": "true"}, "InvalidAttributeName", "Unknown Attribute ContentBasedDeduplication."),
        ({"VisibilityTimeout": "43201"}, "InvalidAttributeValue", "Invalid value for the parameter VisibilityTimeout."),
        ({"VisibilityTimeout": "abc"}, "InvalidAttributeValue", "Invalid value for the parameter VisibilityTimeout."),
        ({"DelaySeconds": "901"}, "InvalidAttributeValue", "Invalid value for the parameter DelaySeconds."),
        (
            {"MaximumMessageSize": "1023"},
            "InvalidAttributeValue",
            "Invalid value for the parameter MaximumMessageSize.",
        ),
        (
            {"MaximumMessageSize": "1048577"},
            "InvalidAttributeValue",
            "Invalid value for the parameter MaximumMessageSize.",
        ),
        (
            {"MessageRetentionPeriod": "59"},
            "InvalidAttributeValue",
            "Invalid value for the parameter MessageRetentionPeriod.",
        ),
        (
            {"ReceiveMessageWaitTimeSeconds": "21"},
            "InvalidAttributeValue",
            "Invalid value for the parameter ReceiveMessageWaitTimeSeconds.",
        ),
    ],
)
def test_create_queue_invalid_attribute_has_aws_code_and_message(
    sqs: Any, attributes: dict[str, str], code: str, message: str
) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=unique(), Attributes=attributes)
    assert error_of(info) == (code, message, 400)


def test_create_queue_idempotence_compares_only_given_attributes(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name, ReceiveMessageWaitTimeSeconds="1", DelaySeconds="1")
    assert new_queue(sqs, name) == url
    assert new_queue(sqs, name, DelaySeconds="1") == url
    with pytest.raises(sqs.exceptions.QueueNameExists) as info:
        new_queue(sqs, name, ReceiveMessageWaitTimeSeconds="1", DelaySeconds="2")
    assert error_of(info) == (
        "QueueAlreadyExists",
        "A queue already exists with the same name and a different value for attribute DelaySeconds",
        400,
    )
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    assert new_queue(sqs, name, ReceiveMessageWaitTimeSeconds="1", DelaySeconds="2") == url


def test_create_queue_after_sends_is_still_idempotent(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    sqs.send_message(QueueUrl=url, MessageBody="counts must not matter")
    assert new_queue(sqs, name) == url


def test_create_queue_with_tags(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=unique(), tags={"team": "core", "empty": ""})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "core", "empty": ""}


def test_new_queue_attributes_all(sqs: Any) -> None:
    url = new_queue(sqs)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert set(attributes) == {
        "QueueArn",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "VisibilityTimeout",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "SqsManagedSseEnabled",
    }
    assert attributes["MaximumMessageSize"] == "1048576"
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert len(attributes["CreatedTimestamp"]) == 10  # epoch seconds


def test_fifo_queue_attributes_all(sqs: Any) -> None:
    url = new_queue(sqs, unique() + ".fifo", FifoQueue="true", ContentBasedDeduplication="true")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert {k: attributes[k] for k in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope")} == {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "true",
        "DeduplicationScope": "queue",
    }
    assert attributes["FifoThroughputLimit"] == "perQueue"


def test_get_queue_attributes_unknown_name_and_subset(sqs: Any) -> None:
    url = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Foobar"])
    assert error_of(info) == ("InvalidAttributeName", "Unknown Attribute Foobar.", 400)
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"])["Attributes"]
    assert set(got) == {"QueueArn", "VisibilityTimeout"}
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})


def test_set_queue_attributes_round_trip_and_fifo_rules(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"MaximumMessageSize": "2048", "VisibilityTimeout": "69", "DelaySeconds": "420"}
    )
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (got["MaximumMessageSize"], got["VisibilityTimeout"], got["DelaySeconds"]) == ("2048", "69", "420")
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert error_of(info)[0] == "InvalidAttributeName"

    fifo = new_queue(sqs, unique() + ".fifo", FifoQueue="true")
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "true"})
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "false"})
    assert error_of(info) == (
        "InvalidAttributeValue",
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
        400,
    )


def test_policy_set_and_cleared_with_empty_string(sqs: Any) -> None:
    url = new_queue(sqs)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(stored)["Statement"][0]["Action"] == "sqs:*"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_sse_kms_and_sqs_are_mutually_exclusive(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "KmsMasterKeyId": "testKeyId",
            "KmsDataKeyReusePeriodSeconds": "6000",
            "SqsManagedSseEnabled": "false",
        },
    )
    got = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"]
    )["Attributes"]
    assert got == {
        "KmsMasterKeyId": "testKeyId",
        "KmsDataKeyReusePeriodSeconds": "6000",
        "SqsManagedSseEnabled": "false",
    }
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "k", "SqsManagedSseEnabled": "true"})
    assert error_of(info) == (
        "InvalidAttributeName",
        "You can use one type of server-side encryption (SSE) at one time. You can either enable KMS SSE or SQS SSE.",
        400,
    )


def test_redrive_policy_is_validated_before_lookup(sqs: Any) -> None:
    policy = '{"deadLetterTargetArn": "dummy", "maxReceiveCount": 42}'
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=unique(), Attributes={"RedrivePolicy": policy})
    assert error_of(info) == (
        "InvalidParameterValue",
        f"Value {policy} for parameter RedrivePolicy is invalid. Reason: Invalid value for deadLetterTargetArn.",
        400,
    )


# ---- GetQueueUrl, ListQueues, DeleteQueue ----


def test_get_queue_url_with_owner_account(sqs: Any, loosely: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT)["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=OTHER_ACCOUNT)


def test_list_queues_prefix_and_pagination(sqs: Any) -> None:
    prefix = unique("list")
    urls = sorted(new_queue(sqs, f"{prefix}-{i}") for i in range(3))
    assert sorted(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == urls
    assert "NextToken" not in sqs.list_queues(QueueNamePrefix=prefix)
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=unique("none"))

    first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    assert len(first["QueueUrls"]) == 2
    second = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert sorted(first["QueueUrls"] + second["QueueUrls"]) == urls
    paged = [
        u
        for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, MaxResults=1)
        for u in page["QueueUrls"]
    ]
    assert sorted(paged) == urls


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_queues_max_results_out_of_range(sqs: Any, max_results: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.list_queues(MaxResults=max_results)
    assert error_of(info)[0] == "InvalidParameterValue"


def test_list_queues_is_per_region(loosely: Any) -> None:
    east = loosely.boto3_client("sqs")
    west = boto3.client(
        "sqs",
        region_name="eu-central-1",
        endpoint_url=loosely.endpoint,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
    )
    name = unique("region")
    east_url = east.create_queue(QueueName=name)["QueueUrl"]
    west.create_queue(QueueName=name)
    assert east.list_queues(QueueNamePrefix=name)["QueueUrls"] == [east_url]
    assert arn_of(west, west.get_queue_url(QueueName=name)["QueueUrl"]).startswith("arn:aws:sqs:eu-central-1:")


def test_deleted_queue_is_gone_for_every_action(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    sqs.delete_queue(QueueUrl=url)
    calls = [
        lambda: sqs.get_queue_url(QueueName=name),
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=url),
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "1"}),
        lambda: sqs.purge_queue(QueueUrl=url),
        lambda: sqs.delete_queue(QueueUrl=url),
        lambda: sqs.list_queue_tags(QueueUrl=url),
        lambda: sqs.tag_queue(QueueUrl=url, Tags={"a": "b"}),
        lambda: sqs.list_dead_letter_source_queues(QueueUrl=url),
        lambda: sqs.add_permission(QueueUrl=url, Label="l", AWSAccountIds=[ACCOUNT], Actions=["SendMessage"]),
    ]
    for call in calls:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
            call()
        code, _, status = error_of(info)
        assert (code, status) == ("AWS.SimpleQueueService.NonExistentQueue", 400)


def test_purge_twice_within_a_minute_is_403(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as info:
        sqs.purge_queue(QueueUrl=url)
    assert error_of(info) == (
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.",
        403,
    )


# ---- queue URL forms ----


def test_queue_url_forms_name_the_same_queue(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    for form in (
        url,
        url + "/",
        f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}",
        f"https://queue.amazonaws.com/{ACCOUNT}/{name}",
        f"http://localhost:1/{ACCOUNT}/{name}",
        name,  # AWS accepts the bare name of the caller's queue
    ):
        sqs.send_message(QueueUrl=form, MessageBody=form)
    count = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert count["Attributes"]["ApproximateNumberOfMessages"] == "6"


def test_queue_url_of_another_region_names_another_queue(sqs: Any) -> None:
    name = unique()
    new_queue(sqs, name)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/{name}", MessageBody="x")


def test_malformed_queue_url_is_non_existent_queue(sqs: Any) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl="http://localhost/", MessageBody="x")


# ---- tags ----


def test_tag_untag_overwrite_and_case(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.tag_queue(QueueUrl=url, Tags={"tag1": "value1", "tag2": "value2", "MyTag": "a", "mytag": "b"})
    sqs.tag_queue(QueueUrl=url, Tags={"tag1": "VALUE1", "tag3": ""})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {
        "tag1": "VALUE1",
        "tag2": "value2",
        "tag3": "",
        "MyTag": "a",
        "mytag": "b",
    }
    sqs.untag_queue(QueueUrl=url, TagKeys=["tag1", "tag3", "MyTag", "mytag", "no-such-tag"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"tag2": "value2"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["tag2"])
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


def test_tag_limits(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(50)})
    with pytest.raises(ClientError) as info:
        sqs.tag_queue(QueueUrl=url, Tags={"one-too-many": "v"})
    assert error_of(info)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as info:
        sqs.tag_queue(QueueUrl=new_queue(sqs), Tags={"k" * 129: "v"})
    assert error_of(info)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as info:
        sqs.tag_queue(QueueUrl=new_queue(sqs), Tags={"k": "v" * 257})
    assert error_of(info)[0] == "InvalidParameterValue"


# ---- permissions ----


def test_add_and_remove_permission_edit_the_policy_as_aws_writes_it(sqs: Any) -> None:
    name = unique()
    url = new_queue(sqs, name)
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"
    sqs.add_permission(QueueUrl=url, Label="cross", AWSAccountIds=[OTHER_ACCOUNT, ACCOUNT], Actions=["ReceiveMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy == {
        "Version": "2008-10-17",
        "Id": f"{arn}/SQSDefaultPolicy",
        "Statement": [
            {
                "Sid": "cross",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{OTHER_ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:root"]},
                "Action": "SQS:ReceiveMessage",
                "Resource": arn,
            }
        ],
    }
    with pytest.raises(ClientError) as info:
        sqs.add_permission(QueueUrl=url, Label="cross", AWSAccountIds=[ACCOUNT], Actions=["SendMessage"])
    assert error_of(info) == (
        "InvalidParameterValue",
        "Value cross for parameter Label is invalid. Reason: Already exists.",
        400,
    )
    sqs.add_permission(QueueUrl=url, Label="second", AWSAccountIds=[ACCOUNT], Actions=["SendMessage", "DeleteMessage"])
    sqs.remove_permission(QueueUrl=url, Label="cross")
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["second"]
    assert policy["Statement"][0]["Action"] == ["SQS:SendMessage", "SQS:DeleteMessage"]
    sqs.remove_permission(QueueUrl=url, Label="second")
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    with pytest.raises(ClientError) as info:
        sqs.remove_permission(QueueUrl=url, Label="second")
    assert error_of(info) == (
        "InvalidParameterValue",
        "Value second for parameter Label is invalid. Reason: can't find label.",
        400,
    )
