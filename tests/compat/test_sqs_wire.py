"""SQS on the wire as AWS answers it: raw JSON and Query requests (path-style, GET), and the AWS CLI.

These are the requests old SDKs, curl users and other projects' AWS-validated suites send without
botocore's help, so status codes, headers and XML are checked byte for byte where AWS fixes them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.compat

JSON_TYPE = "application/x-amz-json-1.0"


def create(loosely: Any, suffix: str = "") -> str:
    client = loosely.boto3_client("sqs")
    try:
        attributes = {"FifoQueue": "true"} if suffix else {}
        return str(
            client.create_queue(QueueName=f"w-{uuid.uuid4().hex[:12]}{suffix}", Attributes=attributes)["QueueUrl"]
        )
    finally:
        client.close()


def json_call(loosely: Any, operation: str, body: dict[str, Any], url: str | None = None) -> httpx.Response:
    headers = {"X-Amz-Target": f"AmazonSQS.{operation}", "Content-Type": JSON_TYPE}
    return httpx.post(url or loosely.endpoint, headers=headers, content=json.dumps(body), timeout=10)


# ---- JSON ----


def test_json_error_carries_query_code_header(loosely: Any) -> None:
    response = json_call(loosely, "GetQueueUrl", {"QueueName": "no-such-queue-anywhere"})
    assert response.status_code == 400
    assert response.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert response.json() == {
        "__type": "com.amazonaws.sqs#QueueDoesNotExist",
        "message": "The specified queue does not exist.",
    }
    assert response.headers["content-type"] == JSON_TYPE


@pytest.mark.parametrize(
    ("operation", "body", "status", "query_error"),
    [
        # A missing QueueUrl names no queue. Recorded AWS response: yavosh/pail
        # test/diff/testdata/golden/sqs-edge-cases.json, step send-missing-queue-url.
        ("SendMessage", {"MessageBody": "x"}, 400, "AWS.SimpleQueueService.NonExistentQueue;Sender"),
        ("ReceiveMessage", {"MaxNumberOfMessages": 11}, 400, "InvalidParameterValue;Sender"),
        ("PurgeQueue", {}, 400, None),
    ],
)
def test_json_validation_errors(
    loosely: Any, operation: str, body: dict[str, Any], status: int, query_error: str | None
) -> None:
    url = create(loosely)
    if operation != "SendMessage":
        body = {"QueueUrl": url, **body}
    response = json_call(loosely, operation, body)
    assert response.status_code == (200 if query_error is None else status)
    if query_error is not None:
        assert response.headers["x-amzn-query-error"] == query_error


def test_json_wrong_type_is_serialization_exception(loosely: Any) -> None:
    response = json_call(loosely, "ReceiveMessage", {"QueueUrl": create(loosely), "MaxNumberOfMessages": "ten"})
    assert response.status_code == 400
    assert response.json()["__type"].endswith("SerializationException")


def test_json_unknown_target_is_unknown_operation(loosely: Any) -> None:
    response = json_call(loosely, "FooBar", {})
    assert response.status_code == 400
    assert response.json()["__type"].endswith("UnknownOperationException")


def test_json_request_posted_to_the_queue_url(loosely: Any) -> None:
    url = create(loosely)
    assert json_call(loosely, "SendMessage", {"QueueUrl": url, "MessageBody": "via url"}, url=url).status_code == 200
    received = json_call(loosely, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 1}, url=url).json()
    assert [m["Body"] for m in received["Messages"]] == ["via url"]
    empty = json_call(loosely, "ReceiveMessage", {"QueueUrl": url}, url=url).json()
    assert empty == {}


# ---- Query, path-style and GET ----


def test_query_get_on_queue_url_without_version(loosely: Any) -> None:
    url = create(loosely)
    response = httpx.get(url, params={"Action": "GetQueueAttributes", "AttributeName.1": "All"})
    assert response.status_code == 200
    assert "<GetQueueAttributesResponse" in response.text
    assert "<Attribute><Name>QueueArn</Name><Value>arn:aws:sqs:" in response.text
    assert "<Attribute><Name>VisibilityTimeout</Name><Value>30</Value></Attribute>" in response.text
    fifo = create(loosely, ".fifo")
    response = httpx.get(fifo, params={"Action": "GetQueueAttributes", "AttributeName.1": "All"})
    assert "<Name>FifoQueue</Name><Value>true</Value>" in response.text


def test_query_send_and_receive_on_queue_urls(loosely: Any) -> None:
    full, empty = create(loosely), create(loosely)
    assert httpx.get(full, params={"Action": "SendMessage", "MessageBody": "foobar"}).status_code == 200
    response = httpx.get(empty, params={"Action": "ReceiveMessage"})
    assert response.status_code == 200
    assert "<ReceiveMessageResult/>" in response.text
    response = httpx.post(full, data={"Action": "ReceiveMessage"})
    assert "<Body>foobar</Body>" in response.text and "<MD5OfBody>" in response.text


def test_query_queue_url_parameter_wins_over_path(loosely: Any) -> None:
    first, second = create(loosely), create(loosely)
    response = httpx.get(
        first, params={"Action": "GetQueueAttributes", "QueueUrl": second, "AttributeName.1": "QueueArn"}
    )
    assert second.rsplit("/", 1)[1] in response.text
    assert first.rsplit("/", 1)[1] not in response.text


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        (
            {"Action": "FooBar", "Version": "2012-11-05"},
            400,
            "InvalidAction",
            "The action FooBar is not valid for this endpoint.",
        ),
        ({"Action": "SendMessage"}, 400, "MissingParameter", "The request must contain the parameter MessageBody."),
        (
            {"Action": "CreateQueue", "QueueName": "x"},
            400,
            "InvalidAction",
            "The action CreateQueue is not valid for this endpoint.",
        ),
        ({"Action": "ListQueues"}, 400, "InvalidAction", "The action ListQueues is not valid for this endpoint."),
        (
            {"Action": "GetQueueAttributes", "AttributeName.1": "Foobar"},
            400,
            "InvalidAttributeName",
            "Unknown Attribute Foobar.",
        ),
    ],
)
def test_query_errors_on_queue_url(loosely: Any, params: dict[str, str], status: int, code: str, message: str) -> None:
    response = httpx.get(create(loosely), params=params)
    assert response.status_code == status
    assert "<Type>Sender</Type>" in response.text
    assert f"<Code>{code}</Code>" in response.text
    assert f"<Message>{message}</Message>" in response.text


def test_query_get_queue_url_and_delete_on_queue_url(loosely: Any) -> None:
    url, other = create(loosely), create(loosely)
    response = httpx.get(url, params={"Action": "GetQueueUrl", "QueueName": other.rsplit("/", 1)[1]})
    assert response.status_code == 200
    assert f"<QueueUrl>{other}</QueueUrl>" in response.text
    assert "<DeleteQueueResponse" in httpx.get(url, params={"Action": "DeleteQueue"}).text
    gone = httpx.get(url, params={"Action": "GetQueueAttributes", "AttributeName.1": "QueueArn"})
    assert gone.status_code == 400
    assert "<Code>AWS.SimpleQueueService.NonExistentQueue</Code>" in gone.text
    assert "<Message>The specified queue does not exist for this wsdl version.</Message>" in gone.text


def test_query_get_without_action_on_queue_url_is_unknown_operation(loosely: Any) -> None:
    response = httpx.get(create(loosely), headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert "<UnknownOperationException" in response.text


def test_query_list_queues_on_endpoint(loosely: Any) -> None:
    response = httpx.get(loosely.endpoint, params={"Action": "ListQueues", "Version": "2012-11-05"})
    assert response.status_code == 200
    assert "<ListQueuesResponse" in response.text


def test_query_form_lists_in_member_form(loosely: Any) -> None:
    url = create(loosely)
    form = {
        "Action": "SendMessageBatch",
        "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "a",
        "SendMessageBatchRequestEntry.1.MessageBody": "one",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name": "k",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType": "String",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue": "v",
        "SendMessageBatchRequestEntry.2.Id": "b",
        "SendMessageBatchRequestEntry.2.MessageBody": "two",
    }
    response = httpx.post(loosely.endpoint, data=form)
    assert response.status_code == 200
    assert response.text.count("<SendMessageBatchResultEntry>") == 2
    assert "<MD5OfMessageAttributes>" in response.text


# ---- AWS CLI ----


def test_cli_empty_receive_prints_nothing_and_error_exit_code(loosely: Any) -> None:
    url = create(loosely)
    received = loosely.aws("sqs", "receive-message", "--queue-url", url)
    assert received.returncode == 0, received.stderr
    assert received.stdout.strip() == ""
    failed = loosely.aws("sqs", "send-message", "--queue-url", url, "--message-body", "x", "--delay-seconds", "901")
    assert failed.returncode in (254, 255)  # CLI v2 and v1 exit codes for service errors
    assert "InvalidParameterValue" in failed.stderr


def test_cli_batch_and_attributes_output(loosely: Any) -> None:
    url = create(loosely)
    entries = json.dumps([{"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two"}])
    sent = loosely.aws("sqs", "send-message-batch", "--queue-url", url, "--entries", entries)
    assert sent.returncode == 0, sent.stderr
    assert sorted(e["Id"] for e in sent.json["Successful"]) == ["a", "b"]
    attributes = loosely.aws(
        "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "ApproximateNumberOfMessages"
    )
    assert attributes.json == {"Attributes": {"ApproximateNumberOfMessages": "2"}}
