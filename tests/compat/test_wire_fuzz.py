"""Random requests shaped by botocore's own models: every answer is AWS-shaped, none is a 5xx.

Two generators, both seeded, so a failure names the request that caused it and runs again the same:

* **model-shaped**: for a random operation of the SQS or SNS model, a random subset of its input
  members with values of the right type or deliberately of the wrong one (lists of 11, 2**63,
  300 KB strings, NUL characters, NaN, JSON where text is expected), sent as AWS JSON (SQS) or as a
  Query form with the model's own flattening (SQS and SNS);
* **one value wrong**: a valid request of a frequently used operation with one of its values
  replaced, or removed, which gets past the first checks and into the deeper ones.

A client error must come back with the protocol's error shape (`__type` in JSON, `<Code>` in XML);
a 5xx is a bug, whatever the input. The server runs on its own data directory (or PostgreSQL schema:
both backends are stormed, since each can refuse different input), and a message stored before the
storm must still be there after it, unchanged.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import botocore.session
import httpx
import psycopg
import pytest
from test_compat_postgres import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.compat

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0000"
)
JSON_TYPE = "application/x-amz-json-1.0"
FORM_TYPE = "application/x-www-form-urlencoded"
WRONG_VALUES: list[Any] = [None, "", " ", 0, -1, 2**63, 1.5, True, [], {}, [None], "a" * 300_000, "\x00", "null"]
WRONG_TEXT = ["", " ", "\x00", "a" * 300_000, "null", "{}", "[]", '{"a":', "-1", "1e400", "NaN", "true", "\u2028"]


class Wire:
    """Raw requests to one server; each answer checked for its shape."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(timeout=30)
        self.failures: list[str] = []

    def sqs_json(self, operation: str, body: bytes) -> httpx.Response:
        headers = {
            "Content-Type": JSON_TYPE,
            "X-Amz-Target": f"AmazonSQS.{operation}",
            "Authorization": AUTH.format(service="sqs"),
        }
        response = self.http.post(self.endpoint, content=body, headers=headers)
        self._check(response, b'"__type"', f"JSON {operation} {body[:300]!r}")
        return response

    def query(self, service: str, pairs: list[tuple[str, str]]) -> httpx.Response:
        body = urlencode(pairs).encode()
        headers = {"Content-Type": FORM_TYPE, "Authorization": AUTH.format(service=service)}
        response = self.http.post(self.endpoint, content=body, headers=headers)
        self._check(response, b"<Code>", f"Query {service} {body[:300]!r}")
        return response

    def _check(self, response: httpx.Response, error_marker: bytes, request: str) -> None:
        status = response.status_code
        if status >= 500 or (status >= 400 and error_marker not in response.content):
            self.failures.append(f"{status} {response.content[:300]!r} <- {request}")


@pytest.fixture(params=["sqlite", "postgres"])
def wire(request: pytest.FixtureRequest, start_loosely: Callable[..., Any]) -> Iterator[Wire]:
    """A fresh server on each backend (PostgreSQL: a schema of its own, dropped afterwards)."""
    if request.param == "sqlite":
        server = start_loosely()
        schema = None
    else:
        require_postgres()
        schema = f"wire_fuzz_{uuid.uuid4().hex[:10]}"
        server = start_loosely(args=("--database", f"{POSTGRES_URL}?schema={schema}"))
    client = Wire(server.endpoint)
    try:
        yield client
    finally:
        client.http.close()
        if schema is not None:
            server.process.stop()
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _value(shape: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value for ``shape``: usually of its type, one time in ten of any other."""
    if rng.random() < 0.1:
        return rng.choice(WRONG_VALUES)
    kind = shape.type_name
    if kind == "structure":
        if depth > 3:
            return {}
        return {name: _value(member, rng, depth + 1) for name, member in shape.members.items() if rng.random() < 0.6}
    if kind == "list":
        return [] if depth > 3 else [_value(shape.member, rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 11]))]
    if kind == "map":
        if depth > 3:
            return {}
        return {rng.choice([*WRONG_TEXT[:4], "k", "name"]): _value(shape.value, rng, depth + 1) for _ in range(2)}
    if kind == "string":
        return rng.choice([*WRONG_TEXT, "fuzz", "fuzz.fifo", "arn:aws:sqs:us-east-1:000000000000:fuzz", "http://x/1/q"])
    if kind in ("integer", "long"):
        return rng.choice([0, -1, 1, 10, 2**31, 2**63, 43_200, 1_209_601])
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "blob":
        return rng.choice(["", "AAAA", "!!not base64"])
    return rng.choice(WRONG_VALUES)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]], rng: random.Random) -> None:
    """Query form pairs for ``value``: maps as ``entry.N.key/value``, ``entry.N.Name/Value`` or plain members."""
    if isinstance(value, dict):
        for index, (key, item) in enumerate(value.items(), 1):
            if rng.random() < 0.5:
                _flatten(f"{prefix}.{key}" if prefix else str(key), item, out, rng)
            else:
                key_name, value_name = rng.choice([("key", "value"), ("Name", "Value")])
                out.append((f"{prefix}.entry.{index}.{key_name}" if prefix else str(key), str(key)))
                _flatten(f"{prefix}.entry.{index}.{value_name}", item, out, rng)
    elif isinstance(value, list):
        for index, item in enumerate(value, 1):
            _flatten(f"{prefix}.member.{index}", item, out, rng)
    else:
        out.append((prefix, "" if value is None else str(value)))


def _stored_message(wire: Wire) -> tuple[str, str]:
    wire.sqs_json("CreateQueue", json.dumps({"QueueName": "kept"}).encode())
    url = f"{wire.endpoint}/000000000000/kept"
    sent = wire.sqs_json("SendMessage", json.dumps({"QueueUrl": url, "MessageBody": "still here"}).encode())
    return url, sent.json()["MessageId"]


def _assert_still_stored(wire: Wire, url: str, message_id: str) -> None:
    answer = wire.sqs_json("ReceiveMessage", json.dumps({"QueueUrl": url, "MaxNumberOfMessages": 10}).encode())
    messages = answer.json().get("Messages", [])
    assert [(m["MessageId"], m["Body"]) for m in messages] == [(message_id, "still here")]


def test_model_shaped_requests_get_aws_shaped_answers(wire: Wire) -> None:
    rng = random.Random(20261126)
    session = botocore.session.get_session()
    models = {"sqs": session.get_service_model("sqs"), "sns": session.get_service_model("sns")}
    url, message_id = _stored_message(wire)
    for _ in range(800):
        service = rng.choice(["sqs", "sqs", "sns"])
        model = models[service]
        operation = rng.choice(model.operation_names)
        shape = model.operation_model(operation).input_shape
        params = _value(shape, rng) if shape is not None else {}
        if not isinstance(params, dict):
            params = {}
        if service == "sqs" and rng.random() < 0.5:
            wire.sqs_json(operation, json.dumps(params, default=str).encode())
        else:
            pairs = [("Action", operation), ("Version", model.api_version)]
            _flatten("", params, pairs, rng)
            wire.query(service, pairs)
    assert wire.failures == []
    _assert_still_stored(wire, url, message_id)


def _one_value_replaced(request: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``request`` with one value, at any depth, replaced by a wrong one or (one time in six) removed."""
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        if path:
            paths.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            walk(child, [*path, key])

    walk(request, [])
    path = rng.choice(paths)
    parent: Any = request
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 1 / 6:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(WRONG_VALUES)
    return request


def test_valid_requests_with_one_wrong_value_get_aws_shaped_answers(wire: Wire) -> None:
    rng = random.Random(7)
    url, message_id = _stored_message(wire)
    wire.sqs_json("CreateQueue", json.dumps({"QueueName": "work"}).encode())
    wire.sqs_json("CreateQueue", json.dumps({"QueueName": "dead"}).encode())
    wire.sqs_json("CreateQueue", json.dumps({"QueueName": "work.fifo", "Attributes": {"FifoQueue": "true"}}).encode())
    work = f"{wire.endpoint}/000000000000/work"
    fifo = f"{work}.fifo"
    dlq = "arn:aws:sqs:us-east-1:000000000000:dead"

    def handle() -> str:
        wire.sqs_json("SendMessage", json.dumps({"QueueUrl": work, "MessageBody": "x"}).encode())
        got = wire.sqs_json("ReceiveMessage", json.dumps({"QueueUrl": work, "VisibilityTimeout": 0}).encode())
        messages = got.json().get("Messages") or [{"ReceiptHandle": "AQEB"}]
        return str(messages[0]["ReceiptHandle"])

    attributes = {
        "s": {"DataType": "String", "StringValue": "v"},
        "n": {"DataType": "Number", "StringValue": "1.5"},
        "b": {"DataType": "Binary", "BinaryValue": "AAE="},
    }
    requests: dict[str, Callable[[], dict[str, Any]]] = {
        "SendMessage": lambda: {
            "QueueUrl": work,
            "MessageBody": "m",
            "DelaySeconds": 0,
            "MessageAttributes": attributes,
        },
        "SendMessage.fifo": lambda: {
            "QueueUrl": fifo,
            "MessageBody": "m",
            "MessageGroupId": "g",
            "MessageDeduplicationId": "d",
        },
        "SendMessageBatch": lambda: {
            "QueueUrl": work,
            "Entries": [
                {"Id": "a", "MessageBody": "x", "MessageAttributes": attributes},
                {"Id": "b", "MessageBody": "y"},
            ],
        },
        "ReceiveMessage": lambda: {
            "QueueUrl": work,
            "MaxNumberOfMessages": 2,
            "VisibilityTimeout": 0,
            "WaitTimeSeconds": 0,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
            "ReceiveRequestAttemptId": "x",
        },
        "DeleteMessageBatch": lambda: {"QueueUrl": work, "Entries": [{"Id": "a", "ReceiptHandle": handle()}]},
        "ChangeMessageVisibilityBatch": lambda: {
            "QueueUrl": work,
            "Entries": [{"Id": "a", "ReceiptHandle": handle(), "VisibilityTimeout": 5}],
        },
        "SetQueueAttributes": lambda: {
            "QueueUrl": work,
            "Attributes": {
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": 1000}),
                "RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"}),
            },
        },
        "CreateQueue": lambda: {"QueueName": "made", "Attributes": {"DelaySeconds": "0"}, "tags": {"a": "b"}},
        "StartMessageMoveTask": lambda: {"SourceArn": dlq, "MaxNumberOfMessagesPerSecond": 5},
        "AddPermission": lambda: {
            "QueueUrl": work,
            "Label": "l",
            "AWSAccountIds": ["111111111111"],
            "Actions": ["SendMessage"],
        },
    }
    for _ in range(250):
        name = rng.choice(sorted(requests))
        body = _one_value_replaced(copy.deepcopy(requests[name]()), rng)
        wire.sqs_json(name.split(".")[0], json.dumps(body).encode())

    topic = "arn:aws:sns:us-east-1:000000000000:fuzz"
    wire.query("sns", [("Action", "CreateTopic"), ("Name", "fuzz")])
    sns_requests: list[list[tuple[str, str]]] = [
        [
            ("Action", "Publish"),
            ("TopicArn", topic),
            ("Message", "m"),
            ("Subject", "s"),
            ("MessageAttributes.entry.1.Name", "a"),
            ("MessageAttributes.entry.1.Value.DataType", "String.Array"),
            ("MessageAttributes.entry.1.Value.StringValue", '["a",1]'),
        ],
        [
            ("Action", "Publish"),
            ("TopicArn", topic),
            ("Message", '{"default":"d","sqs":"s"}'),
            ("MessageStructure", "json"),
        ],
        [
            ("Action", "PublishBatch"),
            ("TopicArn", topic),
            ("PublishBatchRequestEntries.member.1.Id", "a"),
            ("PublishBatchRequestEntries.member.1.Message", "m"),
        ],
        [
            ("Action", "Subscribe"),
            ("TopicArn", topic),
            ("Protocol", "sqs"),
            ("Endpoint", dlq),
            ("Attributes.entry.1.key", "FilterPolicy"),
            ("Attributes.entry.1.value", '{"a":[{"numeric":[">",1]}]}'),
        ],
        [
            ("Action", "SetTopicAttributes"),
            ("TopicArn", topic),
            ("AttributeName", "DeliveryPolicy"),
            ("AttributeValue", '{"http":{"defaultHealthyRetryPolicy":{"numRetries":3}}}'),
        ],
    ]
    for _ in range(400):
        pairs = list(rng.choice(sns_requests))
        index = rng.randrange(1, len(pairs))
        if rng.random() < 1 / 6:
            pairs.pop(index)
        else:
            pairs[index] = (pairs[index][0], rng.choice(WRONG_TEXT))
        wire.query("sns", pairs)

    assert wire.failures == []
    _assert_still_stored(wire, url, message_id)
