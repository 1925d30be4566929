"""Fan-out keeps the event loop free: envelopes are signed on a thread, completions are bounded in rows."""

from __future__ import annotations

import asyncio
import json
import threading

from delivery_support import PUBLIC_URL
from test_delivery_rendering import published, subscription, verify

from loosely.delivery.fanout import _RowBudget
from loosely.delivery.rendering import Renderer
from loosely.delivery.signing import Signer


async def test_presigned_envelopes_are_signed_off_the_event_loop_and_verify(signer: Signer) -> None:
    threads: list[str] = []

    class Recording:
        certificate_name = signer.certificate_name

        def sign(self, string_to_sign: bytes, signature_version: str) -> str:
            threads.append(threading.current_thread().name)
            return signer.sign(string_to_sign, signature_version)

    renderer = Renderer(Recording(), PUBLIC_URL)
    try:
        message = published()
        await renderer.presign(message, message.message, "2")
        bodies = [
            renderer.sqs_request(message, subscription("sqs", f"arn:aws:sqs:us-east-1:1:q{i}"), "2", None, False).body
            for i in range(5)
        ]
    finally:
        renderer.close()
    assert len(threads) == 1
    assert threads[0].startswith("loosely-sign")
    document = json.loads(bodies[0])
    assert document["SignatureVersion"] == "2"
    verify(document, signer)


async def test_row_budget_lets_completions_through_up_to_the_limit_and_one_big_one_alone() -> None:
    budget = _RowBudget(200)
    order: list[str] = []
    release_first = asyncio.Event()

    async def complete(name: str, rows: int, gate: asyncio.Event | None = None) -> None:
        async with budget.hold(rows):
            order.append(f"start {name}")
            if gate is not None:
                await gate.wait()
        order.append(f"end {name}")

    first = asyncio.create_task(complete("a", 150, release_first))
    await asyncio.sleep(0)
    second = asyncio.create_task(complete("b", 100))  # 250 > 200: waits for "a"
    third = asyncio.create_task(complete("c", 40))  # fits beside "a"
    await asyncio.sleep(0.01)
    assert order == ["start a", "start c", "end c"]
    release_first.set()
    await asyncio.gather(first, second, third)
    assert order.index("start b") > order.index("end a")
    huge = asyncio.create_task(complete("huge", 1_000))  # larger than the limit: goes alone
    await asyncio.wait_for(huge, 1.0)
    assert order[-1] == "end huge"
