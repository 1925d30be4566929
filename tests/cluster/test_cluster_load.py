"""Three nodes on one PostgreSQL database acting as one SQS: volume, exactly-once hand-out, FIFO order.

Producers and consumers are spread over the nodes round-robin (every call goes to the next node),
so messages are routinely sent on one node, received on another and deleted on a third.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from cluster._client import RawSqs
from cluster._workload import Ledger, fifo_batches, run_workload, standard_batches
from cluster.conftest import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

MESSAGES = int(os.environ.get("LOOSELY_CLUSTER_MESSAGES", "100000"))
VISIBILITY_S = 120  # longer than the run: a second delivery of a message would be a bug


async def make_queue(endpoint: str, name: str, **attributes: str) -> str:
    client = RawSqs(endpoint)
    try:
        result: dict[str, Any] = await client.call("CreateQueue", {"QueueName": name, "Attributes": attributes})
        return str(result["QueueUrl"])
    finally:
        await client.close()


async def queue_counts(endpoint: str, queue_url: str) -> dict[str, int]:
    client = RawSqs(endpoint)
    try:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        result = await client.call("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names})
        return {k: int(v) for k, v in result["Attributes"].items()}
    finally:
        await client.close()


def start_nodes(cluster: Cluster, count: int) -> list[str]:
    return [cluster.start().endpoint for _ in range(count)]


async def test_three_nodes_move_every_message_exactly_once(cluster: Cluster) -> None:
    endpoints = await asyncio.to_thread(start_nodes, cluster, 3)
    queue_url = await make_queue(endpoints[0], "load")
    ledger = Ledger()
    started = time.monotonic()

    await run_workload(
        lambda: endpoints, queue_url, standard_batches(MESSAGES, 6), 12, VISIBILITY_S, ledger, deadline_s=240
    )

    elapsed = time.monotonic() - started
    by_id = ledger.deliveries_by_id()
    assert len(ledger.acked) == MESSAGES
    assert ledger.failed_calls == 0
    assert set(ledger.acked.values()) <= ledger.deleted  # nothing lost
    assert all(len(d) == 1 for d in by_id.values())  # no message handed out twice
    assert {d.body for d in ledger.deliveries} == set(ledger.acked)
    assert await queue_counts(endpoints[1], queue_url) == {
        "ApproximateNumberOfMessages": 0,
        "ApproximateNumberOfMessagesNotVisible": 0,
    }
    print(f"{MESSAGES:,} messages through 3 nodes in {elapsed:.1f} s ({MESSAGES / elapsed:,.0f} msg/s)")


async def test_fifo_across_nodes_keeps_every_group_in_order(cluster: Cluster) -> None:
    endpoints = await asyncio.to_thread(start_nodes, cluster, 3)
    queue_url = await make_queue(endpoints[0], "load.fifo", FifoQueue="true")
    groups, per_group = 500, max(1, MESSAGES // 5 // 500)
    ledger = Ledger()
    started = time.monotonic()

    await run_workload(
        lambda: endpoints, queue_url, fifo_batches(groups, per_group, 5), 12, VISIBILITY_S, ledger, deadline_s=240
    )

    elapsed = time.monotonic() - started
    assert len(ledger.acked) == groups * per_group
    assert set(ledger.acked.values()) <= ledger.deleted
    assert len(ledger.deliveries) == groups * per_group  # each message delivered once
    sequences: dict[str | None, list[int]] = {}
    for d in sorted(ledger.deliveries, key=lambda d: d.at):
        sequences.setdefault(d.group_id, []).append(int(d.body.split(":")[1]))
    assert len(sequences) == groups
    assert all(seq == list(range(per_group)) for seq in sequences.values())  # send order within each group
    print(f"{groups * per_group:,} FIFO messages in {groups} groups through 3 nodes in {elapsed:.1f} s")
