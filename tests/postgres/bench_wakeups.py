"""Claim statements per send with receivers long-polling on one or two nodes (stores on one schema).

    PYTHONPATH=src:tests python -m tests.postgres.bench_wakeups [nodes] [sends] [receivers]   (from the repository root)

Each node has ``receivers`` receivers (default two) that claim up to 10 and, when they get nothing,
wait as ReceiveMessage does; sends of one message go to the nodes in turn, one at a time. Every
send wakes receivers, which claim; the counts say how many of those claims were wasted (claimed
nothing), by statement (a statement may carry several receivers' claims) and by claim. With a
NOTIFY on every send, each other node's receivers wake and claim in vain. Not collected by pytest.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from contract.helpers import T0, make_queue, send
from loosely.core.queues.models import ClaimRequest, ClaimResult, QueueRecord
from loosely.storage.postgres import PostgresStore, _messages

URL = os.environ.get("LOOSELY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
counts = {"statements": 0, "empty": 0, "claims": 0, "empty_claims": 0}
_claim_standard_many = _messages.claim_standard_many


async def _counted(conn: Any, sql: Any, queue_id: int, requests: Sequence[ClaimRequest]) -> Any:
    results = await _claim_standard_many(conn, sql, queue_id, requests)
    counts["statements"] += 1
    counts["empty"] += not any(isinstance(r, ClaimResult) and r.messages for r in results)
    counts["claims"] += len(requests)  # receives served (one statement may carry several)
    counts["empty_claims"] += sum(not (isinstance(r, ClaimResult) and r.messages) for r in results)
    return results


async def receiver(
    node: PostgresStore, queue: QueueRecord, received: list[int], sends: int, done: asyncio.Event
) -> None:
    while not done.is_set():
        request = ClaimRequest(max_messages=10, now_ms=T0 + 1_000, visible_until_ms=T0 + 10**7)
        result = await node.claim_messages(queue.id, request)
        received[0] += len(result.messages)
        if received[0] >= sends:
            done.set()
        elif not result.messages:
            await node.wait_for_messages(queue.id, 8.0)


async def main(nodes_n: int, sends: int, receivers_n: int = 2) -> None:
    _messages.claim_standard_many = _counted  # type: ignore[assignment]
    schema = f"bench_wake_{uuid.uuid4().hex[:12]}"
    nodes = [PostgresStore(URL, schema=schema, wake_fallback_s=30.0, pool_min=1, pool_max=4) for _ in range(nodes_n)]
    for node in nodes:
        await node.open()
    try:
        queue = await make_queue(nodes[0])
        done, received = asyncio.Event(), [0]
        tasks = [
            asyncio.create_task(receiver(node, queue, received, sends, done))
            for node in nodes
            for _ in range(receivers_n)
        ]
        await asyncio.sleep(0.5)  # every receiver registered and parked
        counts.update(statements=0, empty=0, claims=0, empty_claims=0)
        for i in range(sends):
            await send(nodes[i % nodes_n], queue, f"m{i}")
            await asyncio.sleep(0.005)
        await done.wait()
        for node in nodes:
            node._waiters.wake_all()
        await asyncio.gather(*tasks)
        per_send = counts["statements"] / sends
        print(
            f"{nodes_n} node(s): {per_send:.2f} claim statements per send, {counts['empty'] / sends:.2f} empty;"
            f" {counts['claims'] / sends:.2f} claims per send, {counts['empty_claims'] / sends:.2f} empty"
        )
    finally:
        await nodes[0].drop_schema()
        for node in nodes:
            await node.close()


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:4]]
    asyncio.run(main(*args) if args else main(2, 300))
