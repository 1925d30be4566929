"""SQS answers checked against responses recorded from real AWS by other projects' suites.

Each test names where its facts come from. Recordings are used as facts about AWS only:

- ``pail``: yavosh/pail ``test/diff/testdata/golden/<scenario>.json``, raw AWS JSON-protocol
  exchanges (status, ``__type`` and ``x-amzn-query-error``; those files drop error messages);
- issue threads that quote what AWS returned to a real client (named per test).

Raw JSON calls check the wire (``__type`` namespace, header); boto3 over both protocols checks
what SDK users read (code, message, status).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat

JSON_TYPE = "application/x-amz-json-1.0"
CORAL = "com.amazon.coral.service#"


@pytest.fixture(params=["json", "query"])
def raw_sqs(request: pytest.FixtureRequest, loosely: Any) -> Iterator[Any]:
    """A client that sends what botocore's own validation would refuse (missing members, list values)."""
    client = loosely.boto3_client("sqs", protocol=request.param, parameter_validation=False)
    yield client
    client.close()


def new_queue(sqs: Any, suffix: str = "", **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=f"r-{uuid.uuid4().hex[:12]}{suffix}", Attributes=attributes)["QueueUrl"])


def json_call(loosely: Any, operation: str, body: dict[str, Any] | str) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    headers = {"X-Amz-Target": f"AmazonSQS.{operation}", "Content-Type": JSON_TYPE}
    return httpx.post(loosely.endpoint, headers=headers, content=content, timeout=10)


def wire_error(response: httpx.Response) -> tuple[int, str, str]:
    """Status, ``x-amzn-query-error`` and ``__type``: what pail's recordings keep of an AWS error."""
    return response.status_code, response.headers["x-amzn-query-error"], response.json()["__type"]


def is_query(sqs: Any) -> bool:
    return bool(sqs.meta.service_model.protocol == "query")


# ---- the wire form of generic errors ----


@pytest.mark.parametrize(
    ("operation", "body", "query_error", "error_type"),
    [
        # pail sqs-errors.json, receive-max-11 and receive-wait-21
        ("ReceiveMessage", {"MaxNumberOfMessages": 11}, "InvalidParameterValue", "InvalidParameterValueException"),
        ("ReceiveMessage", {"WaitTimeSeconds": 21}, "InvalidParameterValue", "InvalidParameterValueException"),
        # pail sqs-errors.json, send-too-long (after MaximumMessageSize=1024)
        ("SendMessage", {"MessageBody": "x" * 1_048_577}, "InvalidParameterValue", "InvalidParameterValueException"),
        # pail sqs-errors.json, send-empty-body
        ("SendMessage", {"MessageBody": ""}, "MissingParameter", "MissingRequiredParameterException"),
        # pail sqs-edge-cases.json, delete-missing-receipt-handle and change-visibility-missing-timeout
        ("DeleteMessage", {}, "MissingParameter", "MissingRequiredParameterException"),
        (
            "ChangeMessageVisibility",
            {"ReceiptHandle": "garbage"},
            "MissingParameter",
            "MissingRequiredParameterException",
        ),
    ],
)
def test_generic_errors_are_in_the_service_framework_namespace(
    loosely: Any, operation: str, body: dict[str, Any], query_error: str, error_type: str
) -> None:
    client = loosely.boto3_client("sqs")
    url = new_queue(client)
    client.close()
    response = json_call(loosely, operation, {"QueueUrl": url, **body})
    assert wire_error(response) == (400, f"{query_error};Sender", CORAL + error_type)


@pytest.mark.parametrize("body", ["{", "[]", '"x"'])
def test_unreadable_body_is_malformed_input(loosely: Any, body: str) -> None:
    """pail sqs-errors.json malformed-json; sqs-edge-cases.json body-array and body-string."""
    response = json_call(loosely, "GetQueueUrl", body)
    assert wire_error(response) == (400, "MalformedInput;Sender", CORAL + "SerializationException")


# ---- missing queue names and URLs ----


def test_missing_queue_url_names_no_queue(loosely: Any, raw_sqs: Any) -> None:
    """pail sqs-edge-cases.json, send-missing-queue-url: QueueDoesNotExist, not MissingParameter."""
    response = json_call(loosely, "SendMessage", {"MessageBody": "x"})
    assert wire_error(response) == (
        400,
        "AWS.SimpleQueueService.NonExistentQueue;Sender",
        "com.amazonaws.sqs#QueueDoesNotExist",
    )
    message = (
        "The specified queue does not exist for this wsdl version."
        if is_query(raw_sqs)
        else "The specified queue does not exist."
    )
    expected = ("AWS.SimpleQueueService.NonExistentQueue", message, 400)
    assert raised(raw_sqs.send_message, MessageBody="x") == expected
    assert raised(raw_sqs.get_queue_attributes, AttributeNames=["All"]) == expected


def test_missing_queue_name_is_an_invalid_value(loosely: Any, raw_sqs: Any) -> None:
    """pail sqs-errors.json, get-queue-url-missing-name: 400 InvalidParameterValue (coral namespace).

    The recording drops the message; the wording is the one AWS-validated emulator suites reproduce.
    """
    response = json_call(loosely, "GetQueueUrl", {})
    assert wire_error(response) == (400, "InvalidParameterValue;Sender", CORAL + "InvalidParameterValueException")
    expected = (
        "InvalidParameterValue",
        "Value for parameter QueueName is invalid. Reason: Must specify a queue name.",
        400,
    )
    assert raised(raw_sqs.get_queue_url) == expected
    assert raised(raw_sqs.create_queue) == expected


# ---- message attributes ----


@pytest.mark.parametrize(
    "value",
    [
        {"DataType": "String", "StringListValues": ["v"]},
        {"DataType": "Binary", "BinaryListValues": [b"\x01\x02\x03"]},
        # SDKs echo received attributes with empty lists; AWS refuses those too (ruby-shoryuken/shoryuken#769).
        {"DataType": "String", "StringValue": "v", "StringListValues": []},
    ],
)
def test_attribute_list_values_are_unsupported(raw_sqs: Any, value: dict[str, Any]) -> None:
    """pail sqs-edge-cases.json send-string-list-values / send-binary-list-values (code, status); the
    wording is AWS's as quoted in lumigo-io/lumigo-CLI#94 and ruby-shoryuken/shoryuken#769."""
    url = new_queue(raw_sqs)
    code = "AWS.SimpleQueueService.UnsupportedOperation"
    assert raised(raw_sqs.send_message, QueueUrl=url, MessageBody="x", MessageAttributes={"a": value}) == (
        code,
        "Message attribute list values in SendMessage operation are not supported.",
        400,
    )
    entries = [{"Id": "ok", "MessageBody": "x"}, {"Id": "list", "MessageBody": "x", "MessageAttributes": {"a": value}}]
    assert raised(raw_sqs.send_message_batch, QueueUrl=url, Entries=entries) == (
        code,
        "Message attribute list values in SendMessageBatch operation are not supported.",
        400,
    )
    assert "Messages" not in raw_sqs.receive_message(QueueUrl=url)


# ---- send parameters ----


OUT_OF_RANGE_DELAY = "for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."


def test_delay_seconds_out_of_range_wording(sqs: Any) -> None:
    """AWS's message, full stop included, as quoted in aws-samples/amazon-sqs-dlq-replay-backoff#8
    (SendMessage) and aws/aws-sdk-ruby#265 and getmoto/moto#5372 (a failed batch entry)."""
    url = new_queue(sqs)
    assert raised(sqs.send_message, QueueUrl=url, MessageBody="x", DelaySeconds=901) == (
        "InvalidParameterValue",
        f"Value 901 {OUT_OF_RANGE_DELAY}",
        400,
    )
    result = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "fine", "MessageBody": "x"}, {"Id": "late", "MessageBody": "x", "DelaySeconds": 1800}],
    )
    assert [entry["Id"] for entry in result["Successful"]] == ["fine"]
    assert result["Failed"] == [
        {
            "Id": "late",
            "SenderFault": True,
            "Code": "InvalidParameterValue",
            "Message": f"Value 1800 {OUT_OF_RANGE_DELAY}",
        }
    ]


def test_deduplication_id_on_a_standard_queue(sqs: Any) -> None:
    """pail sqs-edge-cases.json send-dedup-id-standard (400 InvalidParameterValue); AWS's wording, its
    grammar included, as quoted in cdklabs/construct-hub#905. A MessageGroupId is accepted (fair queues:
    pail sqs-errors.json send-fifo-field-standard-queue)."""
    url = new_queue(sqs)
    assert raised(sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="d") == (
        "InvalidParameterValue",
        "Value d for parameter MessageDeduplicationId is invalid. Reason: The request include parameter that is "
        "not valid for this queue type.",
        400,
    )
    assert sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")["MessageId"]


# ---- receipt handles and visibility ----


def test_garbage_receipt_handle_is_404(loosely: Any, sqs: Any) -> None:
    """pail sqs-visibility.json delete-garbage-handle: 404, ReceiptHandleIsInvalid."""
    url = new_queue(sqs)
    response = json_call(loosely, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"})
    assert wire_error(response) == (404, "ReceiptHandleIsInvalid;Sender", "com.amazonaws.sqs#ReceiptHandleIsInvalid")
    assert raised(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle="garbage", VisibilityTimeout=5) == (
        "ReceiptHandleIsInvalid",
        'The input receipt handle "garbage" is not a valid receipt handle.',
        404,
    )


def test_receipt_handle_of_another_queue(sqs: Any) -> None:
    """A real handle used on another queue: 404 and AWS's wording for it, as captured in
    spulec/PyQS#24 (raw response) and aws/aws-sdk-java-v2#3101 (batch entry)."""
    first, second = new_queue(sqs), new_queue(sqs)
    sqs.send_message(QueueUrl=first, MessageBody="x")
    [message] = sqs.receive_message(QueueUrl=first, WaitTimeSeconds=2)["Messages"]
    handle = message["ReceiptHandle"]
    expected_message = f'The receipt handle "{handle}" is not valid for this queue.'
    assert raised(sqs.delete_message, QueueUrl=second, ReceiptHandle=handle) == (
        "ReceiptHandleIsInvalid",
        expected_message,
        404,
    )
    failed = sqs.delete_message_batch(QueueUrl=second, Entries=[{"Id": "a", "ReceiptHandle": handle}])["Failed"]
    assert failed == [{"Id": "a", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": expected_message}]


def test_total_visibility_beyond_twelve_hours_wording(sqs: Any) -> None:
    """AWS's message, full stop included, as quoted in aws/aws-sdk-net#794 and in a Go client that
    matches on the "Actual error" text it got from AWS."""
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    time.sleep(0.01)  # the ceiling counts from the receive: any later instant plus 43200 s is past it
    assert raised(
        sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=43_200
    ) == (
        "InvalidParameterValue",
        "Value 43200 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message "
        "is beyond the limit [43200 seconds].",
        400,
    )


def test_change_visibility_of_a_visible_message_hides_it_again(sqs: Any) -> None:
    """pail sqs-visibility.json: change-visibility-zero, then change-visibility-not-inflight (200 with the
    latest handle), then receive-second is empty and get-attributes counts it not visible."""
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, VisibilityTimeout=30)["Messages"]
    handle = message["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=10)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}
