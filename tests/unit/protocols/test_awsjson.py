"""The JSON codec: type checks against the input shape, and output that omits what AWS omits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from loosely.core.errors import MissingParameter
from loosely.protocols import awsjson
from loosely.protocols.errors import SERIALIZATION, AwsError, WireError
from loosely.protocols.model import load_service_model

MODEL = load_service_model("sqs-2012-11-05")


def decode(operation: str, document: Any) -> dict[str, Any]:
    return awsjson.decode(MODEL.operations[operation].input, orjson.dumps(document))


def test_decode_types_and_blobs() -> None:
    out = decode(
        "SendMessage",
        {
            "QueueUrl": "u",
            "MessageBody": "b",
            "DelaySeconds": 5,
            "MessageAttributes": {"n": {"DataType": "Binary", "BinaryValue": "AAE="}},
            "Unknown": [1, 2],
            "MessageGroupId": None,
        },
    )
    assert out == {
        "QueueUrl": "u",
        "MessageBody": "b",
        "DelaySeconds": 5,
        "MessageAttributes": {"n": {"DataType": "Binary", "BinaryValue": b"\0\1"}},
    }


@pytest.mark.parametrize(
    "document",
    [
        {"QueueUrl": "u", "MaxNumberOfMessages": "10"},
        {"QueueUrl": "u", "MaxNumberOfMessages": 1.5},
        {"QueueUrl": "u", "MaxNumberOfMessages": True},
        {"QueueUrl": "u", "MaxNumberOfMessages": 2**40},
        {"QueueUrl": 7},
        {"QueueUrl": "u", "AttributeNames": "All"},
        {"QueueUrl": "u", "AttributeNames": [1]},
        ["QueueUrl"],
        "text",
    ],
)
def test_decode_wrong_json_types_are_serialization_exceptions(document: Any) -> None:
    with pytest.raises(WireError) as caught:
        decode("ReceiveMessage", document)
    assert caught.value.error is SERIALIZATION


@pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b"\xff", b"[1,]", b"nul"])
def test_decode_malformed_json_is_serialization_exception(body: bytes) -> None:
    with pytest.raises(WireError) as caught:
        awsjson.decode(MODEL.operations["ListQueues"].input, body)
    assert caught.value.error is SERIALIZATION


def test_decode_empty_body_is_empty_input_and_required_members_are_checked() -> None:
    assert awsjson.decode(MODEL.operations["ListQueues"].input, b"") == {}
    with pytest.raises(MissingParameter, match="QueueUrl"):
        awsjson.decode(MODEL.operations["PurgeQueue"].input, b"{}")
    # Nested required members (a batch entry's Id) are left to the service.
    assert decode("DeleteMessageBatch", {"QueueUrl": "u", "Entries": [{}]}) == {"QueueUrl": "u", "Entries": [{}]}


def test_decode_bad_base64_blob_is_serialization_exception() -> None:
    with pytest.raises(WireError):
        decode(
            "SendMessage",
            {
                "QueueUrl": "u",
                "MessageBody": "b",
                "MessageAttributes": {"n": {"DataType": "Binary", "BinaryValue": "*"}},
            },
        )


def test_encode_omits_none_and_empty_lists_even_required_ones_but_keeps_given_maps() -> None:
    receive = MODEL.operations["ReceiveMessage"].output
    assert awsjson.encode_response(receive, {"Messages": []}) == b"{}"
    batch = MODEL.operations["DeleteMessageBatch"].output
    # AWS leaves out an empty Failed although the model requires it (Java's hasFailed() relies on that).
    assert orjson.loads(awsjson.encode_response(batch, {"Successful": [{"Id": "1"}], "Failed": []})) == {
        "Successful": [{"Id": "1"}],
    }
    message = {"MessageId": "m", "Body": "x", "MD5OfMessageAttributes": None, "Attributes": None}
    assert orjson.loads(awsjson.encode_response(receive, {"Messages": [message]})) == {
        "Messages": [{"MessageId": "m", "Body": "x"}]
    }
    tags = MODEL.operations["ListQueueTags"].output
    assert orjson.loads(awsjson.encode_response(tags, {"Tags": {}})) == {"Tags": {}}


def test_encode_blob_as_base64_and_no_output_as_empty_object() -> None:
    receive = MODEL.operations["ReceiveMessage"].output
    message = {"MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": b"\xff"}}}
    out = orjson.loads(awsjson.encode_response(receive, {"Messages": [message]}))
    assert out["Messages"][0]["MessageAttributes"]["b"]["BinaryValue"] == "/w=="
    assert awsjson.encode_response(None, None) == b"{}"


def test_encode_error_namespaces_type_and_sets_query_header() -> None:
    body, headers = awsjson.encode_error(AwsError("QueueDoesNotExist", "AWS.X", 400), "gone", "com.amazonaws.sqs")
    assert orjson.loads(body) == {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}
    assert headers == [("x-amzn-query-error", "AWS.X;Sender")]
    body, _ = awsjson.encode_error(SERIALIZATION, "bad", "com.amazonaws.sqs")
    assert orjson.loads(body)["__type"] == "com.amazon.coral.service#SerializationException"
