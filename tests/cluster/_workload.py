"""Producers and consumers spread over cluster nodes, and a ledger of what happened.

Producers send batches of ten, each to the next node in turn; a batch that fails for a reason a
client would retry (connection error, 5xx) is sent again to the next node, as an SDK behind a
load balancer would (so a standard queue may store it twice: at-least-once). Consumers receive
with a short long poll, record every delivery, and delete what they got. Nothing here asserts:
the tests read the `Ledger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster._client import RawSqs, SqsError

Entry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    body: str
    receive_count: int
    group_id: str | None
    at: float  # time.monotonic() when the answer arrived


@dataclass
class Ledger:
    acked: dict[str, str] = field(default_factory=dict)  # body -> message id of an acknowledged send
    deliveries: list[Delivery] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # message ids whose delete was acknowledged
    failed_calls: int = 0
    producers_done: asyncio.Event = field(default_factory=asyncio.Event)

    def deliveries_by_id(self) -> dict[str, list[Delivery]]:
        by_id: dict[str, list[Delivery]] = {}
        for d in self.deliveries:
            by_id.setdefault(d.message_id, []).append(d)
        return by_id

    def all_acked_deleted(self) -> bool:
        return self.producers_done.is_set() and set(self.acked.values()) <= self.deleted


def retryable(error: BaseException) -> bool:
    """What an SDK retries: connection trouble and 5xx answers."""
    if isinstance(error, SqsError):
        return error.answer.status >= 500
    return isinstance(error, (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError))


class Nodes:
    """Round-robin over the endpoints still believed alive, one connection per endpoint and caller."""

    def __init__(self, endpoints: Callable[[], Sequence[str]], start: int) -> None:
        self._endpoints = endpoints
        self._turn = start
        self._clients: dict[str, RawSqs] = {}

    def next(self) -> RawSqs:
        live = self._endpoints()
        endpoint = live[self._turn % len(live)]
        self._turn += 1
        if endpoint not in self._clients:
            self._clients[endpoint] = RawSqs(endpoint)
        return self._clients[endpoint]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


async def call_with_retry(nodes: Nodes, ledger: Ledger, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Call on the next node; on a retryable failure, back off a little and try the next one."""
    delay_s = 0.05
    while True:
        try:
            return await nodes.next().call(action, payload)
        except Exception as error:
            if not retryable(error):
                raise
            ledger.failed_calls += 1
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 1.0)


async def produce(
    endpoints: Callable[[], Sequence[str]], start: int, queue_url: str, batches: Sequence[list[Entry]], ledger: Ledger
) -> None:
    nodes = Nodes(endpoints, start)
    try:
        for batch in batches:
            result = await call_with_retry(nodes, ledger, "SendMessageBatch", {"QueueUrl": queue_url, "Entries": batch})
            if result.get("Failed"):
                raise AssertionError(f"send failed: {result['Failed']}")
            bodies = {e["Id"]: e["MessageBody"] for e in batch}
            for ok in result["Successful"]:
                ledger.acked[bodies[ok["Id"]]] = ok["MessageId"]
    finally:
        await nodes.close()


async def consume(
    endpoints: Callable[[], Sequence[str]],
    start: int,
    queue_url: str,
    ledger: Ledger,
    visibility_s: int,
    stop: Callable[[], bool],
) -> None:
    nodes = Nodes(endpoints, start)
    receive = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 1,
        "VisibilityTimeout": visibility_s,
        "AttributeNames": ["All"],
    }
    try:
        while not stop():
            result = await call_with_retry(nodes, ledger, "ReceiveMessage", receive)
            now = time.monotonic()
            messages = result.get("Messages", [])
            for m in messages:
                attributes = m.get("Attributes", {})
                ledger.deliveries.append(
                    Delivery(
                        m["MessageId"],
                        m["Body"],
                        int(attributes.get("ApproximateReceiveCount", "1")),
                        attributes.get("MessageGroupId"),
                        now,
                    )
                )
            if messages:
                await _delete(nodes, ledger, queue_url, messages)
    finally:
        await nodes.close()


async def _delete(nodes: Nodes, ledger: Ledger, queue_url: str, messages: list[dict[str, Any]]) -> None:
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    result = await call_with_retry(nodes, ledger, "DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
    for ok in result.get("Successful", []):
        ledger.deleted.add(messages[int(ok["Id"])]["MessageId"])


def standard_batches(total: int, producers: int, tag: str = "m") -> list[list[list[Entry]]]:
    """``total`` messages in batches of ten, dealt out to ``producers``."""
    batches = [
        [{"Id": str(i - start), "MessageBody": f"{tag}{i}"} for i in range(start, min(start + 10, total))]
        for start in range(0, total, 10)
    ]
    return [batches[p::producers] for p in range(producers)]


def fifo_batches(groups: int, per_group: int, producers: int) -> list[list[list[Entry]]]:
    """Each producer owns whole groups and sends each group's messages in order (body ``g<group>:<seq>``)."""
    plans: list[list[list[Entry]]] = []
    for p in range(producers):
        mine = range(p, groups, producers)
        entries = [(g, k) for k in range(per_group) for g in mine]
        plans.append(
            [
                [
                    {
                        "Id": str(i),
                        "MessageBody": f"g{g}:{k}",
                        "MessageGroupId": f"g{g}",
                        "MessageDeduplicationId": f"g{g}:{k}",
                    }
                    for i, (g, k) in enumerate(entries[start : start + 10])
                ]
                for start in range(0, len(entries), 10)
            ]
        )
    return plans


async def run_workload(
    endpoints: Callable[[], Sequence[str]],
    queue_url: str,
    plans: Sequence[Sequence[list[Entry]]],
    consumers: int,
    visibility_s: int,
    ledger: Ledger,
    deadline_s: float,
) -> None:
    """Run producers and consumers until every acknowledged message is deleted (or the deadline)."""

    async def producers() -> None:
        await asyncio.gather(*(produce(endpoints, p, queue_url, plan, ledger) for p, plan in enumerate(plans)))
        ledger.producers_done.set()

    started = time.monotonic()

    def stop() -> bool:
        return ledger.all_acked_deleted() or time.monotonic() - started > deadline_s

    tasks = [asyncio.create_task(producers())]
    tasks += [
        asyncio.create_task(consume(endpoints, c, queue_url, ledger, visibility_s, stop)) for c in range(consumers)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
