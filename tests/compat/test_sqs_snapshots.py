"""SQS answers checked against responses recorded from real AWS (boto3 against a live server).

The expected values are facts recorded from AWS by LocalStack's AWS-validated suite: the snapshot
file ``tests/aws/services/sqs/test_sqs.snapshot.json`` (recorded 2023-11, over AWS JSON) read with
the test code that produced it (``tests/aws/services/sqs/test_sqs.py``, its inputs). The comment
above each check names the snapshot test and key. docs/compatibility-audit.md lists what was
compared, including the recorded answers loosely already gave and those left as they are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from compat_helpers import raised, unique

pytestmark = pytest.mark.compat

_GREETINGS = {
    "Help.Me": {"DataType": "String", "StringValue": "Me"},
    "Hello": {"DataType": "String", "StringValue": "There"},
    "General": {"DataType": "String", "StringValue": "Kenobi"},
}


@pytest.fixture
def json_sqs(loosely: Any) -> Iterator[Any]:
    """AWS JSON only: an empty map is visible there, while the Query wire cannot tell it from none."""
    client = loosely.boto3_client("sqs")
    yield client
    client.close()


def _receive_with_names(sqs: Any, url: str, names: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageAttributeNames=names)[
        "Messages"
    ][0]
    return message


def test_message_attribute_names_that_match_none_give_an_empty_map(json_sqs: Any) -> None:
    sqs = json_sqs
    url = sqs.create_queue(QueueName=unique("snap"), Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="msg", MessageAttributes=_GREETINGS)
    # test_receive_message_message_attribute_names_filters: send_message_response
    assert sent["MD5OfMessageAttributes"] == "4c360f3fdafd970e05fae2f149d997f5"

    # ...: only_non_existing_names (valid names, none of them the message's: an empty map, no digest)
    message = _receive_with_names(sqs, url, ["Foo", "Help"])
    assert message["MessageAttributes"] == {}
    assert "MD5OfMessageAttributes" not in message
    # ...: empty_filter, illegal_name_1, illegal_name_2 (no names, or only names no attribute may have)
    for names in ([], ["AWS."], ["..foo"]):
        message = _receive_with_names(sqs, url, names)
        assert "MessageAttributes" not in message and "MD5OfMessageAttributes" not in message, names
    # ...: existing_and_non_existing, prefix_filter, all_wildcard
    assert _receive_with_names(sqs, url, ["Foo", "Hello"])["MD5OfMessageAttributes"] == (
        "a311262e065454b75da111d535b8dacd"
    )
    assert _receive_with_names(sqs, url, ["Hel.*"])["MD5OfMessageAttributes"] == "83fee93c1bcd8b9a5a923ffacdc636c7"
    assert _receive_with_names(sqs, url, [".*"])["MessageAttributes"] == _GREETINGS


def test_message_attribute_names_on_a_message_without_attributes_leave_the_member_out(sqs: Any) -> None:
    """No recording covers it; the member stays out, as before, where there is nothing to filter."""
    url = sqs.create_queue(QueueName=unique("snap"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="plain")

    assert "MessageAttributes" not in _receive_with_names(sqs, url, ["Foo"])


def test_queue_attributes_asked_for_but_not_set_give_an_empty_map(json_sqs: Any) -> None:
    sqs = json_sqs
    url = sqs.create_queue(QueueName=unique("snap"))["QueueUrl"]
    account = url.rstrip("/").split("/")[-2]
    label = "crossaccountpermission"
    sqs.add_permission(QueueUrl=url, AWSAccountIds=[account], Actions=["ReceiveMessage"], Label=label)
    sqs.remove_permission(QueueUrl=url, Label=label)

    # test_sqs_permission_lifecycle: get-queue-policy-attribute-after-removal
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"] == {}
    # Without names there is still no member (aws/aws-cli#17; tests/compat/test_sqs_audit.py).
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url)


def test_permission_lifecycle_policy_documents(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=unique("snap"))["QueueUrl"]
    account, name = url.rstrip("/").split("/")[-2:]
    arn = f"arn:aws:sqs:us-east-1:{account}:{name}"

    def policy() -> Any:
        return json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])

    def statement(sid: str) -> dict[str, Any]:
        principal = f"arn:aws:iam::{account}:root"
        return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "SQS:ReceiveMessage",
                "Resource": arn}  # fmt: skip

    grant = {"QueueUrl": url, "AWSAccountIds": [account], "Actions": ["ReceiveMessage"]}
    sqs.add_permission(**grant, Label="crossaccountpermission")
    # test_sqs_permission_lifecycle: get-queue-policy-attribute-first-account-same-label
    assert policy() == {
        "Version": "2008-10-17",
        "Id": f"{arn}/SQSDefaultPolicy",
        "Statement": [statement("crossaccountpermission")],
    }
    # ...: get-queue-policy-attribute-second-account-same-label
    other_account = {**grant, "AWSAccountIds": ["668614515564"]}
    assert raised(sqs.add_permission, **other_account, Label="crossaccountpermission") == (
        "InvalidParameterValue",
        "Value crossaccountpermission for parameter Label is invalid. Reason: Already exists.",
        400,
    )
    sqs.add_permission(**grant, Label="crossaccountpermission2")
    # ...: get-queue-policy-attribute-second-account-different-label, ...-delete-first-permission
    assert policy()["Statement"] == [statement("crossaccountpermission"), statement("crossaccountpermission2")]
    sqs.remove_permission(QueueUrl=url, Label="crossaccountpermission")
    assert policy()["Statement"] == [statement("crossaccountpermission2")]
    sqs.remove_permission(QueueUrl=url, Label="crossaccountpermission2")
    # ...: get-queue-policy-attribute-delete-non-existent-label
    assert raised(sqs.remove_permission, QueueUrl=url, Label="crossaccountpermission2") == (
        "InvalidParameterValue",
        "Value crossaccountpermission2 for parameter Label is invalid. Reason: can't find label.",
        400,
    )


def test_fifo_delete_with_an_expired_receipt_handle_fails(sqs: Any) -> None:
    attributes = {"FifoQueue": "true", "VisibilityTimeout": "1", "ContentBasedDeduplication": "true"}
    url = sqs.create_queue(QueueName=unique("snap") + ".fifo", Attributes=attributes)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="g1-m1", MessageGroupId="1")
    message = sqs.receive_message(QueueUrl=url)["Messages"][0]
    # test_fifo_delete_message_with_expired_receipt_handle: response
    assert message["MD5OfBody"] == "fc4286b824b39ddf3606c9f27ff664bd"
    handle = message["ReceiptHandle"]

    time.sleep(1.2)  # the recording lets the 1 s visibility timeout run out; nothing else can
    # ...: error
    assert raised(sqs.delete_message, QueueUrl=url, ReceiptHandle=handle) == (
        "InvalidParameterValue",
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
        400,
    )
    # the message was not deleted: it is received again
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "g1-m1"
