"""Faults in a cluster: a node killed mid-run, the database gone for a while, and cross-node wake-ups."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from psycopg.conninfo import conninfo_to_dict

from cluster._client import RawSqs
from cluster._workload import Ledger, run_workload, standard_batches
from cluster.conftest import Cluster, with_query
from postgres._proxy import FlakyProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]

VISIBILITY_S = 4  # short, so messages stranded on a dead node come back quickly


async def create_queue(endpoint: str, name: str) -> str:
    client = RawSqs(endpoint)
    try:
        return str((await client.call("CreateQueue", {"QueueName": name}))["QueueUrl"])
    finally:
        await client.close()


async def test_node_killed_mid_run_loses_nothing_and_its_in_flight_messages_return(cluster: Cluster) -> None:
    nodes = [await asyncio.to_thread(cluster.start) for _ in range(3)]
    live = [n.endpoint for n in nodes]
    queue_url = await create_queue(live[0], "kill")
    ledger = Ledger()
    total = 15_000
    workload = asyncio.create_task(
        run_workload(lambda: live, queue_url, standard_batches(total, 6), 9, VISIBILITY_S, ledger, deadline_s=120)
    )
    while len(ledger.acked) < total // 3:  # noqa: ASYNC110 - the ledger is plain data, polled
        await asyncio.sleep(0.05)
    victim = RawSqs(nodes[2].endpoint)  # takes messages on the node about to die, and never deletes them
    receive = {"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": VISIBILITY_S}
    held = (await victim.call("ReceiveMessage", receive)).get("Messages", [])
    held_at = time.monotonic()
    live.remove(nodes[2].endpoint)
    nodes[2].kill()
    await victim.close()
    acked_at_kill = len(ledger.acked)

    await workload

    assert held, "the doomed node handed out nothing to strand"
    assert len(ledger.acked) == total and acked_at_kill < total  # the other nodes kept serving
    assert set(ledger.acked.values()) <= ledger.deleted  # nothing acknowledged was lost
    by_id = ledger.deliveries_by_id()
    for m in held:  # stranded in flight: delivered again after the visibility timeout, and processed
        again = by_id[m["MessageId"]]
        assert again[0].receive_count >= 2
        assert again[0].at - held_at >= VISIBILITY_S - 0.5
        assert m["MessageId"] in ledger.deleted
    for deliveries in by_id.values():  # never twice within a visibility window
        times = sorted(d.at for d in deliveries)
        assert all(b - a >= VISIBILITY_S - 0.5 for a, b in itertools.pairwise(times))


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[FlakyProxy]:
    params = conninfo_to_dict(postgres_url)
    yield FlakyProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))


async def expect_unavailable(client: RawSqs, shape: str, queue_url: str) -> float:
    """One SendMessage while the database is away: a fast, retryable, AWS-shaped 503."""
    started = time.monotonic()
    if shape == "json":
        answer = await client.json("SendMessage", {"QueueUrl": queue_url, "MessageBody": "during"})
        assert answer.json()["__type"].endswith("ServiceUnavailable")
        assert answer.headers["x-amzn-query-error"] == "ServiceUnavailable;Receiver"
    else:
        answer = await client.query("SendMessage", {"QueueUrl": queue_url, "MessageBody": "during"})
        assert b"<Code>ServiceUnavailable</Code>" in answer.body
        assert b"<Type>Receiver</Type>" in answer.body
    assert answer.status == 503
    return time.monotonic() - started


def boto3_send_with_retries(endpoint: str, queue_url: str, result: dict[str, Any]) -> None:
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 12}, read_timeout=30),
    )
    try:
        result["response"] = client.send_message(QueueUrl=queue_url, MessageBody="boto3-retried")
    except Exception as error:
        result["error"] = error


async def test_database_outage_fails_fast_with_retryable_errors_then_recovers(
    cluster: Cluster, proxy: FlakyProxy, postgres_url: str, schema_name: str
) -> None:
    await proxy.start()
    try:
        params = conninfo_to_dict(postgres_url)
        url = with_query(
            proxy.url(str(params.get("user", "postgres")), str(params.get("dbname", "test"))),
            schema=schema_name,
            op_timeout_s=2,
            pool_timeout_s=1,
        )
        nodes = [await asyncio.to_thread(cluster.start, url) for _ in range(2)]
        clients = [RawSqs(n.endpoint) for n in nodes]
        queue_url = await create_queue(nodes[0].endpoint, "outage")
        acked = set()
        for i in range(20):
            await clients[i % 2].call("SendMessage", {"QueueUrl": queue_url, "MessageBody": f"before-{i}"})
            acked.add(f"before-{i}")

        proxy.down()  # a crashed database: connections refused and cut
        assert await expect_unavailable(clients[0], "json", queue_url) < 5.0
        assert await expect_unavailable(clients[1], "query", queue_url) < 5.0
        proxy.blackhole()  # a hung database: nothing answers at all
        assert await expect_unavailable(clients[1], "json", queue_url) < 8.0
        proxy.down()
        retried: dict[str, Any] = {}
        sdk = threading.Thread(target=boto3_send_with_retries, args=(nodes[1].endpoint, queue_url, retried))
        sdk.start()
        await asyncio.sleep(1.5)

        proxy.up()  # back: the nodes heal without a restart
        recovered_in = await eventually(
            lambda: clients[0].json("SendMessage", {"QueueUrl": queue_url, "MessageBody": "after"})
        )
        acked.add("after")
        await asyncio.to_thread(sdk.join, 60)
        assert "response" in retried, retried.get("error")
        acked.add("boto3-retried")
        assert recovered_in < 15.0

        received = set()
        while batch := (
            await clients[1].call("ReceiveMessage", {"QueueUrl": queue_url, "MaxNumberOfMessages": 10})
        ).get("Messages"):
            received |= {m["Body"] for m in batch}
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            await clients[0].call("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
        assert acked <= received  # no acknowledged message lost
        for client in clients:
            await client.close()
    finally:
        await proxy.stop()


async def eventually(attempt: Any, within_s: float = 20.0) -> float:
    """Retry ``attempt()`` (an Answer coroutine) until it answers 200; return how long that took."""
    started = time.monotonic()
    while True:
        try:
            answer = await attempt()
            if answer.status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > within_s:
            raise AssertionError("the node did not recover")
        await asyncio.sleep(0.1)


async def test_long_poll_on_one_node_wakes_when_another_node_accepts_a_send(cluster: Cluster) -> None:
    waiting_node, sending_node = [await asyncio.to_thread(cluster.start) for _ in range(2)]
    queue_url = await create_queue(waiting_node.endpoint, "wake")
    receiver, sender = RawSqs(waiting_node.endpoint), RawSqs(sending_node.endpoint)
    delays = []
    for i in range(15):
        receive = receiver.call("ReceiveMessage", {"QueueUrl": queue_url, "WaitTimeSeconds": 10})
        waiting = asyncio.create_task(receive)
        await asyncio.sleep(0.15)  # parked on the waiting node
        await sender.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": f"ping-{i}"})
        acked_at = time.monotonic()
        [message] = (await asyncio.wait_for(waiting, 12))["Messages"]
        delays.append(time.monotonic() - acked_at)
        assert message["Body"] == f"ping-{i}"
        await receiver.call("DeleteMessage", {"QueueUrl": queue_url, "ReceiptHandle": message["ReceiptHandle"]})
    await receiver.close()
    await sender.close()

    # A missed notification would show as the 1 s fallback; a prompt wake takes milliseconds.
    assert max(delays) < 0.5, delays
    assert statistics.median(delays) < 0.1, delays
