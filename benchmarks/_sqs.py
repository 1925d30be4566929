"""SQS JSON 1.0 requests as pre-built bytes, and the few response fields the scenarios read.

The Authorization header is static: it looks like SigV4 (credential scope
``AKIA.../20260101/us-east-1/sqs/aws4_request``) so the server exercises its header parsing, but it is
computed once. A server that verifies signatures would need a signer here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks._http import Client, build_request

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AMZ_DATE = "20260101T000000Z"
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)


class SqsError(Exception):
    """A non-2xx answer to a request the scenario expected to succeed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, action: str, payload: dict[str, Any]) -> bytes:
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{action}",
            "X-Amz-Date": AMZ_DATE,
            "Authorization": AUTHORIZATION,
        }
        return build_request(self.host, self.port, headers, orjson.dumps(payload))


def message_body(size: int, seed: str = "") -> str:
    """A printable body of exactly ``size`` bytes (valid SQS characters)."""
    base = (seed + "loosely-benchmark-") * (size // 16 + 2)
    return base[:size]


async def call(client: Client, raw: bytes) -> dict[str, Any]:
    """Send one request and decode the JSON answer, raising on any error status."""
    response = await client.request(raw)
    if response.status != 200:
        raise SqsError(f"HTTP {response.status}: {response.body[:300]!r}")
    decoded: dict[str, Any] = orjson.loads(response.body) if response.body else {}
    return decoded


async def create_queue(endpoint: Endpoint, name: str, attributes: dict[str, str] | None = None) -> str:
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        payload: dict[str, Any] = {"QueueName": name}
        if attributes:
            payload["Attributes"] = attributes
        answer = await call(client, endpoint.request("CreateQueue", payload))
        return str(answer["QueueUrl"])
    finally:
        client.close()


async def queue_attribute(endpoint: Endpoint, queue_url: str, name: str) -> str:
    """One attribute of the queue (set-up and checks, not measured), over a connection of its own."""
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        payload = {"QueueUrl": queue_url, "AttributeNames": [name]}
        answer = await call(client, endpoint.request("GetQueueAttributes", payload))
        return str(answer["Attributes"][name])
    finally:
        client.close()


async def queue_depth(endpoint: Endpoint, queue_url: str) -> int:
    return int(await queue_attribute(endpoint, queue_url, "ApproximateNumberOfMessages"))


def send_message(endpoint: Endpoint, queue_url: str, body: str) -> bytes:
    return endpoint.request("SendMessage", {"QueueUrl": queue_url, "MessageBody": body})


def send_batch(endpoint: Endpoint, queue_url: str, body: str, count: int = 10) -> bytes:
    entries = [{"Id": str(i), "MessageBody": body} for i in range(count)]
    return endpoint.request("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})


def receive(endpoint: Endpoint, queue_url: str, max_messages: int, wait_s: int, visibility_s: int = 60) -> bytes:
    payload = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_s,
        "VisibilityTimeout": visibility_s,
    }
    return endpoint.request("ReceiveMessage", payload)


def delete_batch(endpoint: Endpoint, queue_url: str, handles: list[str]) -> bytes:
    entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)]
    return endpoint.request("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": entries})


async def delete_queue(endpoint: Endpoint, queue_url: str) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        await call(client, endpoint.request("DeleteQueue", {"QueueUrl": queue_url}))
    finally:
        client.close()


async def is_healthy(endpoint: Endpoint) -> bool:
    """The server answers SQS: a ListQueues succeeds."""
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        response = await client.request(endpoint.request("ListQueues", {}))
        return response.status == 200
    finally:
        client.close()
