"""The AWS CLI's ``sns`` commands (``aws --endpoint-url ... sns ...``) against a live server.

SNS and SQS share the endpoint: queues are made and read with ``aws sqs``, topics with ``aws sns``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import awscli
import pytest

pytestmark = pytest.mark.compat

# The exit status of a call the service refused: AWS CLI v1 (the test extras) exits 255 on any error,
# v2 exits 254 when the service answered with an error.
SERVICE_ERROR_EXIT = 255 if awscli.__version__.startswith("1.") else 254


def _name(prefix: str) -> str:
    return f"cli-{prefix}-{uuid.uuid4().hex[:10]}"


def _ok(result: Any) -> Any:
    """The JSON a CLI call printed, after checking that it succeeded."""
    assert result.returncode == 0, result.stderr
    return result.json


def _queue(loosely: Any, name: str, *attributes: str) -> tuple[str, str]:
    """Create a queue with ``aws sqs``; its URL and ARN."""
    extra = ("--attributes", ",".join(attributes)) if attributes else ()
    url = _ok(loosely.aws("sqs", "create-queue", "--queue-name", name, *extra))["QueueUrl"]
    got = _ok(loosely.aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn"))
    return url, got["Attributes"]["QueueArn"]


def _receive_once(loosely: Any, url: str, wait_s: int) -> list[dict[str, Any]]:
    got = _ok(
        loosely.aws(
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--max-number-of-messages",
            "10",
            "--wait-time-seconds",
            str(wait_s),
            "--attribute-names",
            "All",
            "--message-attribute-names",
            "All",
        )
    )
    return list((got or {}).get("Messages", []))


def _receive(loosely: Any, url: str, count: int, *, delete: bool = False) -> list[dict[str, Any]]:
    """Receive ``count`` messages with ``aws sqs receive-message`` (all attributes), then check none is left.

    Received messages stay in flight for the queue's 30 s visibility timeout, unless ``delete`` (for FIFO
    queues, whose groups stay blocked while a message is in flight).
    """
    messages: list[dict[str, Any]] = []
    for _ in range(5):
        batch = _receive_once(loosely, url, 1)
        messages += batch
        if batch and delete:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            deleted = _ok(
                loosely.aws("sqs", "delete-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
            )
            assert len(deleted["Successful"]) == len(batch)
        if len(messages) >= count:
            break
    assert len(messages) == count, messages
    assert _receive_once(loosely, url, 0) == []
    return messages


def _fails(result: Any, code: str, operation: str) -> str:
    """Check that a CLI call failed with a service error ``code``; its message."""
    assert result.returncode == SERVICE_ERROR_EXIT, (result.returncode, result.stderr)
    assert result.stdout == ""
    prefix = f"An error occurred ({code}) when calling the {operation} operation: "
    assert prefix in result.stderr, result.stderr
    return str(result.stderr.split(prefix, 1)[1].strip())


def test_cli_topic_subscription_publish_and_delivery(loosely: Any) -> None:
    raw_url, raw_arn = _queue(loosely, _name("raw"))
    env_url, env_arn = _queue(loosely, _name("env"))
    topic_name = _name("t")
    created = _ok(
        loosely.aws(
            "sns",
            "create-topic",
            "--name",
            topic_name,
            "--attributes",
            "DisplayName=CLI topic",
            "--tags",
            "Key=team,Value=blue",
        )
    )
    topic = created["TopicArn"]
    assert topic == f"arn:aws:sns:us-east-1:000000000000:{topic_name}"

    policy = {"kind": ["keep"], "size": [{"numeric": [">", 10]}]}
    raw_sub = _ok(
        loosely.aws(
            "sns",
            "subscribe",
            "--topic-arn",
            topic,
            "--protocol",
            "sqs",
            "--notification-endpoint",
            raw_arn,
            "--attributes",
            json.dumps({"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)}),
            "--return-subscription-arn",
        )
    )["SubscriptionArn"]
    env_sub = _ok(
        loosely.aws("sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs", "--notification-endpoint", env_arn)
    )["SubscriptionArn"]
    assert raw_sub.startswith(topic + ":") and env_sub.startswith(topic + ":") and raw_sub != env_sub

    # JSON and shorthand syntax for --message-attributes; only the first matches the filter policy.
    kept = _ok(
        loosely.aws(
            "sns",
            "publish",
            "--topic-arn",
            topic,
            "--subject",
            "Greeting",
            "--message",
            "kept ✓",
            "--message-attributes",
            json.dumps(
                {
                    "kind": {"DataType": "String", "StringValue": "keep"},
                    "size": {"DataType": "Number", "StringValue": "11"},
                }
            ),
        )
    )
    dropped = _ok(
        loosely.aws(
            "sns",
            "publish",
            "--topic-arn",
            topic,
            "--message",
            "dropped",
            "--message-attributes",
            "kind={DataType=String,StringValue=keep},size={DataType=Number,StringValue=3}",
        )
    )

    [raw] = _receive(loosely, raw_url, 1)
    assert raw["Body"] == "kept ✓"
    assert raw["MessageAttributes"] == {
        "kind": {"DataType": "String", "StringValue": "keep"},
        "size": {"DataType": "Number", "StringValue": "11"},
    }
    envelopes = {}
    for message in _receive(loosely, env_url, 2):
        envelope = json.loads(message["Body"])
        envelopes[envelope["MessageId"]] = envelope
    assert set(envelopes) == {kept["MessageId"], dropped["MessageId"]}
    first = envelopes[kept["MessageId"]]
    assert first["Type"] == "Notification" and first["TopicArn"] == topic
    assert first["Subject"] == "Greeting" and first["Message"] == "kept ✓"
    assert first["MessageAttributes"] == {
        "kind": {"Type": "String", "Value": "keep"},
        "size": {"Type": "Number", "Value": "11"},
    }
    assert first["SignatureVersion"] == "1" and first["Signature"] and first["SigningCertURL"]
    assert env_sub in first["UnsubscribeURL"]
    assert "Subject" not in envelopes[dropped["MessageId"]]

    attributes = _ok(loosely.aws("sns", "get-subscription-attributes", "--subscription-arn", raw_sub))["Attributes"]
    assert attributes["RawMessageDelivery"] == "true" and json.loads(attributes["FilterPolicy"]) == policy
    assert attributes["TopicArn"] == topic and attributes["Endpoint"] == raw_arn and attributes["Protocol"] == "sqs"
    assert attributes["PendingConfirmation"] == "false" and attributes["FilterPolicyScope"] == "MessageAttributes"
    body_policy = json.dumps({"kind": ["batch"]})
    for name, value in (("FilterPolicyScope", "MessageBody"), ("FilterPolicy", body_policy)):
        _ok(
            loosely.aws(
                "sns",
                "set-subscription-attributes",
                "--subscription-arn",
                raw_sub,
                "--attribute-name",
                name,
                "--attribute-value",
                value,
            )
        )
    attributes = _ok(loosely.aws("sns", "get-subscription-attributes", "--subscription-arn", raw_sub))["Attributes"]
    assert attributes["FilterPolicyScope"] == "MessageBody" and attributes["FilterPolicy"] == body_policy

    # An entry SNS refuses (here an empty message) fails the whole request, as on AWS: nothing is published.
    bad = [{"Id": "c", "Message": json.dumps({"kind": "batch", "n": 0})}, {"Id": "d", "Message": ""}]
    refused = loosely.aws(
        "sns", "publish-batch", "--topic-arn", topic, "--publish-batch-request-entries", json.dumps(bad)
    )
    assert _fails(refused, "InvalidParameter", "PublishBatch") == "Invalid parameter: Empty message"
    entries = [
        {"Id": "a", "Message": json.dumps({"kind": "batch", "n": 1})},
        {"Id": "b", "Message": json.dumps({"kind": "other", "n": 2})},
    ]
    batch = _ok(
        loosely.aws(
            "sns", "publish-batch", "--topic-arn", topic, "--publish-batch-request-entries", json.dumps(entries)
        )
    )
    assert [entry["Id"] for entry in batch["Successful"]] == ["a", "b"] and batch["Failed"] == []
    [filtered] = _receive(loosely, raw_url, 1)  # the body now decides
    assert json.loads(filtered["Body"]) == {"kind": "batch", "n": 1}
    assert sorted(json.loads(m["Body"])["Message"] for m in _receive(loosely, env_url, 2)) == sorted(
        entry["Message"] for entry in entries
    )

    listed = _ok(loosely.aws("sns", "list-subscriptions-by-topic", "--topic-arn", topic))["Subscriptions"]
    assert sorted(s["SubscriptionArn"] for s in listed) == sorted([raw_sub, env_sub])
    assert {s["Endpoint"] for s in listed} == {raw_arn, env_arn}

    _ok(loosely.aws("sns", "tag-resource", "--resource-arn", topic, "--tags", "Key=stage,Value=test"))
    tags = _ok(loosely.aws("sns", "list-tags-for-resource", "--resource-arn", topic))["Tags"]
    assert sorted(tags, key=lambda tag: tag["Key"]) == [
        {"Key": "stage", "Value": "test"},
        {"Key": "team", "Value": "blue"},
    ]

    _ok(loosely.aws("sns", "unsubscribe", "--subscription-arn", env_sub))
    gone = loosely.aws("sns", "get-subscription-attributes", "--subscription-arn", env_sub)
    assert _fails(gone, "NotFound", "GetSubscriptionAttributes") == "Subscription does not exist"
    _ok(loosely.aws("sns", "delete-topic", "--topic-arn", topic))
    missing = loosely.aws("sns", "get-topic-attributes", "--topic-arn", topic)
    assert _fails(missing, "NotFound", "GetTopicAttributes") == "Topic does not exist"


def test_cli_reports_missing_topic(loosely: Any) -> None:
    arn = f"arn:aws:sns:us-east-1:000000000000:{_name('missing')}"
    result = loosely.aws("sns", "publish", "--topic-arn", arn, "--message", "m")
    assert _fails(result, "NotFound", "Publish") == "Topic does not exist"


def test_cli_list_topics_follows_next_token(loosely: Any) -> None:
    sns = loosely.boto3_client("sns", protocol="query")  # 101 topics: quicker made by boto3 than by 101 CLI runs
    prefix = _name("page")
    arns = {sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(101)}
    try:
        everything = _ok(loosely.aws("sns", "list-topics"))  # the CLI follows NextToken itself
        listed = [t["TopicArn"] for t in everything["Topics"]]
        assert arns <= set(listed) and len(listed) == len(set(listed))
        assert "NextToken" not in everything

        first = _ok(loosely.aws("sns", "list-topics", "--no-paginate"))
        assert len(first["Topics"]) == 100 and first["NextToken"]
        head = _ok(loosely.aws("sns", "list-topics", "--max-items", "60"))
        tail = _ok(loosely.aws("sns", "list-topics", "--starting-token", head["NextToken"]))
        assert len(head["Topics"]) == 60
        assert [t["TopicArn"] for t in head["Topics"] + tail["Topics"]] == listed
    finally:
        for arn in arns:
            sns.delete_topic(TopicArn=arn)


def test_cli_fifo_topic_to_fifo_queue_keeps_group_order(loosely: Any) -> None:
    name = _name("f")
    url, queue_arn = _queue(loosely, f"{name}.fifo", "FifoQueue=true")
    topic = _ok(
        loosely.aws(
            "sns",
            "create-topic",
            "--name",
            f"{name}.fifo",
            "--attributes",
            "FifoTopic=true,ContentBasedDeduplication=true",
        )
    )["TopicArn"]
    attributes = _ok(loosely.aws("sns", "get-topic-attributes", "--topic-arn", topic))["Attributes"]
    assert attributes["FifoTopic"] == "true" and attributes["ContentBasedDeduplication"] == "true"
    _ok(
        loosely.aws(
            "sns",
            "subscribe",
            "--topic-arn",
            topic,
            "--protocol",
            "sqs",
            "--notification-endpoint",
            queue_arn,
            "--attributes",
            "RawMessageDelivery=true",
        )
    )

    one = _ok(loosely.aws("sns", "publish", "--topic-arn", topic, "--message", "a1", "--message-group-id", "a"))
    again = _ok(loosely.aws("sns", "publish", "--topic-arn", topic, "--message", "a1", "--message-group-id", "a"))
    assert again["MessageId"] == one["MessageId"] and again["SequenceNumber"] == one["SequenceNumber"]
    entries = [
        {"Id": "1", "Message": "b1", "MessageGroupId": "b"},
        {"Id": "2", "Message": "a2", "MessageGroupId": "a"},
        {"Id": "3", "Message": "b2", "MessageGroupId": "b"},
        {"Id": "4", "Message": "a3", "MessageGroupId": "a", "MessageDeduplicationId": "a3-once"},
        {"Id": "5", "Message": "b3", "MessageGroupId": "b"},
    ]
    batch = _ok(
        loosely.aws(
            "sns", "publish-batch", "--topic-arn", topic, "--publish-batch-request-entries", json.dumps(entries)
        )
    )
    assert [e["Id"] for e in batch["Successful"]] == ["1", "2", "3", "4", "5"] and batch["Failed"] == []
    sequences = [int(one["SequenceNumber"])] + [int(e["SequenceNumber"]) for e in batch["Successful"]]
    assert sequences == sorted(sequences) and len(set(sequences)) == 6
    missing_group = loosely.aws("sns", "publish", "--topic-arn", topic, "--message", "x")
    assert "MessageGroupId" in _fails(missing_group, "InvalidParameter", "Publish")

    by_group: dict[str, list[str]] = {}
    for message in _receive(loosely, url, 6, delete=True):
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
    assert by_group == {"a": ["a1", "a2", "a3"], "b": ["b1", "b2", "b3"]}
    _ok(loosely.aws("sns", "delete-topic", "--topic-arn", topic))
