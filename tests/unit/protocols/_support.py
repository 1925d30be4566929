"""Protocol test helpers: drive `loosely.protocols.dispatch.handle` with requests botocore prepared.

A ``before-send`` handler receives botocore's prepared request, turns it into a `WireRequest`,
runs `handle` against a `FakeQueues` stub and hands the `WireResponse` back to botocore, whose
real parsers then read it. JSON uses the installed (current) SQS model; Query loads botocore
1.31.0's SQS model from ``data/`` (the last Query-era model, kept here for that purpose).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from loosely.core.queues.models import (
    BatchFailure,
    BatchResult,
    MessageAttributeValue,
    MoveTaskView,
    QueueKey,
    QueueRecord,
    ReceivedMessage,
    SentMessage,
)
from loosely.protocols._wire import ServerContext, WireRequest, WireResponse
from loosely.protocols.dispatch import handle

DATA = Path(__file__).parent / "data"
ENDPOINT = "http://localhost:9324"


def record(key: QueueKey) -> QueueRecord:
    return QueueRecord(id=1, key=key, attributes={}, tags={}, created_ms=0, modified_ms=0, retention_ms=0)


@dataclass
class FakeQueues:
    """A QueueService stand-in: records each call and answers from ``results`` (or raises from ``raises``)."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    raises: dict[str, BaseException] = field(default_factory=dict)

    def _call(self, name: str, *args: Any, default: Any = None) -> Any:
        self.calls.append((name, args))
        if name in self.raises:
            raise self.raises[name]
        return self.results.get(name, default)

    def last(self, name: str) -> tuple[Any, ...]:
        return next(args for called, args in reversed(self.calls) if called == name)

    async def create_queue(self, key, attributes, tags):
        return self._call("create_queue", key, dict(attributes), dict(tags), default=record(key))

    async def get_queue(self, key):
        return self._call("get_queue", key, default=record(key))

    async def delete_queue(self, key):
        return self._call("delete_queue", key)

    async def list_queues(self, account_id, region, prefix, max_results, next_token):
        return self._call("list_queues", account_id, region, prefix, max_results, next_token, default=([], None))

    async def get_queue_attributes(self, key, names):
        return self._call("get_queue_attributes", key, list(names), default={})

    async def set_queue_attributes(self, key, attributes):
        return self._call("set_queue_attributes", key, dict(attributes))

    async def purge_queue(self, key):
        return self._call("purge_queue", key)

    async def tag_queue(self, key, tags):
        return self._call("tag_queue", key, dict(tags))

    async def untag_queue(self, key, tag_keys):
        return self._call("untag_queue", key, list(tag_keys))

    async def list_queue_tags(self, key):
        return self._call("list_queue_tags", key, default={})

    async def add_permission(self, key, label, account_ids, actions):
        return self._call("add_permission", key, label, list(account_ids), list(actions))

    async def remove_permission(self, key, label):
        return self._call("remove_permission", key, label)

    async def list_dead_letter_source_queues(self, key, max_results, next_token):
        return self._call("list_dead_letter_source_queues", key, max_results, next_token, default=([], None))

    async def send_message(self, key, request, sender_id):
        sent = SentMessage(message_id="m-1", md5_of_body="0" * 32)
        return self._call("send_message", key, request, sender_id, default=sent)

    async def send_message_batch(self, key, entries, sender_id):
        result = BatchResult(successful=[(i, SentMessage(f"m-{i}", "0" * 32)) for i, _ in entries], failed=[])
        return self._call("send_message_batch", key, list(entries), sender_id, default=result)

    async def receive_message(self, key, request):
        return self._call("receive_message", key, request, default=[])

    async def delete_message(self, key, receipt_handle):
        return self._call("delete_message", key, receipt_handle)

    async def delete_message_batch(self, key, entries):
        result: BatchResult[None] = BatchResult(successful=[(i, None) for i, _ in entries], failed=[])
        return self._call("delete_message_batch", key, list(entries), default=result)

    async def change_message_visibility(self, key, receipt_handle, visibility_timeout_s):
        return self._call("change_message_visibility", key, receipt_handle, visibility_timeout_s)

    async def change_message_visibility_batch(self, key, entries):
        result: BatchResult[None] = BatchResult(successful=[(e[0], None) for e in entries], failed=[])
        return self._call("change_message_visibility_batch", key, list(entries), default=result)

    async def start_message_move_task(self, account_id, source_arn, destination_arn, max_per_second):
        args = (account_id, source_arn, destination_arn, max_per_second)
        return self._call("start_message_move_task", *args, default="h")

    async def cancel_message_move_task(self, account_id, task_handle):
        return self._call("cancel_message_move_task", account_id, task_handle, default=0)

    async def list_message_move_tasks(self, account_id, source_arn, max_results):
        return self._call("list_message_move_tasks", account_id, source_arn, max_results, default=[])


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def wire_request(prepared: AWSPreparedRequest) -> WireRequest:
    """What the server would hand to dispatch for this botocore request."""
    url = urlsplit(prepared.url)
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()}
    headers.setdefault("host", url.netloc)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = body.read()
    return WireRequest(
        method=prepared.method, path=url.path or "/", query_string=url.query.encode(), headers=headers, body=body
    )


@dataclass
class Bridge:
    """A botocore client wired to `handle`; ``responses`` keeps every raw response for inspection."""

    client: Any
    queues: FakeQueues
    responses: list[WireResponse] = field(default_factory=list)
    requests: list[WireRequest] = field(default_factory=list)


def make_bridge(protocol: str, queues: FakeQueues | None = None, access_key: str = "AKIDEXAMPLE") -> Bridge:
    """A client speaking ``protocol`` ("json" or "query") whose requests are served in process."""
    session = botocore.session.get_session()
    if protocol == "query":
        session.set_config_variable("data_path", str(DATA))
    queues = queues or FakeQueues()
    ctx = ServerContext(queues=queues)  # type: ignore[arg-type]
    client = session.create_client(
        "sqs",
        region_name="eu-west-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    assert client.meta.service_model.protocol == protocol
    bridge = Bridge(client=client, queues=queues)

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        wire = wire_request(request)
        response = asyncio.run(handle(wire, ctx))
        bridge.requests.append(wire)
        bridge.responses.append(response)
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))

    client.meta.events.register("before-send.sqs", send)
    return bridge


def attr(data_type: str, string: str | None = None, binary: bytes | None = None) -> MessageAttributeValue:
    return MessageAttributeValue(data_type=data_type, string_value=string, binary_value=binary)


__all__ = [
    "ENDPOINT",
    "BatchFailure",
    "Bridge",
    "FakeQueues",
    "MoveTaskView",
    "ReceivedMessage",
    "attr",
    "make_bridge",
    "record",
    "wire_request",
]
