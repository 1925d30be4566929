"""SNS Query requests as pre-built bytes, topic and subscription set-up, and the node's delivery counters.

SNS speaks only the Query protocol: ``POST /`` with a form body (``Action=...&Version=2010-03-31``) and
an XML answer. As for SQS, the ``Authorization`` header is static and SigV4-shaped, here with ``sns``
in its credential scope, so the server routes by it as it would a real SDK's request.

Set-up (topics, queues, subscriptions) goes through the same raw client: it is not measured, but it
keeps the benchmark free of a second HTTP stack and of blocking calls on the event loop that also
runs the HTTP receiver of the delivery scenario.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

import orjson

from benchmarks._http import Client, build_get, build_request
from benchmarks._sqs import ACCESS_KEY, AMZ_DATE, Endpoint, SqsError, queue_attribute

VERSION = "2010-03-31"
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/sns/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=9c1f4b8a2e7d3f60b5a4c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5"
)
_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "X-Amz-Date": AMZ_DATE,
    "Authorization": AUTHORIZATION,
}
_MESSAGE_ID = re.compile(rb"<MessageId>([^<]+)</MessageId>")


def sns_request(endpoint: Endpoint, action: str, params: dict[str, str]) -> bytes:
    body = urlencode({"Action": action, "Version": VERSION, **params}).encode()
    return build_request(endpoint.host, endpoint.port, _HEADERS, body)


def publish(endpoint: Endpoint, topic_arn: str, message: str) -> bytes:
    return sns_request(endpoint, "Publish", {"TopicArn": topic_arn, "Message": message})


def message_id(xml: bytes) -> str:
    """The ``MessageId`` of a Publish answer (a regex: the generator must stay cheap)."""
    match = _MESSAGE_ID.search(xml)
    if match is None:
        raise SqsError(f"no MessageId in {xml[:300]!r}")
    return match[1].decode()


async def sns_call(client: Client, raw: bytes) -> bytes:
    """Send one SNS request; the XML answer, raising on any error status."""
    response = await client.request(raw)
    if response.status != 200:
        raise SqsError(f"SNS HTTP {response.status}: {response.body[:300]!r}")
    return response.body


def xml_text(xml: bytes, tag: str) -> str:
    """The text of the first ``<tag>`` element of an answer (answers here are small and flat)."""
    match = re.search(rb"<" + tag.encode() + rb">([^<]*)</" + tag.encode() + rb">", xml)
    if match is None:
        raise SqsError(f"no {tag} in {xml[:300]!r}")
    return match[1].decode().replace("&amp;", "&")


async def create_topic(endpoint: Endpoint, name: str) -> str:
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        return xml_text(await sns_call(client, sns_request(endpoint, "CreateTopic", {"Name": name})), "TopicArn")
    finally:
        client.close()


async def delete_topic(endpoint: Endpoint, topic_arn: str) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        await sns_call(client, sns_request(endpoint, "DeleteTopic", {"TopicArn": topic_arn}))
    finally:
        client.close()


async def subscribe(endpoint: Endpoint, topic_arn: str, protocol: str, target: str) -> str:
    """Subscribe ``target``; the subscription ARN, or ``pending confirmation`` (HTTP endpoints)."""
    client = await Client.connect(endpoint.host, endpoint.port)
    params = {"TopicArn": topic_arn, "Protocol": protocol, "Endpoint": target}
    try:
        return xml_text(await sns_call(client, sns_request(endpoint, "Subscribe", params)), "SubscriptionArn")
    finally:
        client.close()


async def queue_arn(endpoint: Endpoint, queue_url: str) -> str:
    return await queue_attribute(endpoint, queue_url, "QueueArn")


async def visit(url: str) -> int:
    """GET a ``SubscribeURL`` as an endpoint's code would; the HTTP status."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    client = await Client.connect(host, port)
    try:
        path = parts.path or "/"
        response = await client.request(build_get(host, port, f"{path}?{parts.query}" if parts.query else path))
        return response.status
    finally:
        client.close()


async def delivery_stats(endpoint: Endpoint) -> dict[str, int]:
    """The node's SNS worker counters (``GET /_loosely/delivery``): publications fanned out, deliveries made."""
    client = await Client.connect(endpoint.host, endpoint.port)
    try:
        response = await client.request(build_get(endpoint.host, endpoint.port, "/_loosely/delivery"))
        if response.status != 200:
            raise SqsError(f"delivery counters: HTTP {response.status}")
        stats: dict[str, int] = orjson.loads(response.body)
        return stats
    finally:
        client.close()


async def total_stats(endpoints: list[Endpoint], key: str) -> int:
    """One counter summed over the nodes (each node counts what its own workers did)."""
    return sum([(await delivery_stats(ep))[key] for ep in endpoints])
