"""Fan-out keeps the event loop free: envelopes are signed on threads, planning gives way to other work,
and completions go in chunks, each written while the next is planned."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import threading
from typing import Any

import pytest
from delivery_support import PUBLIC_URL, Stack
from test_delivery_rendering import published, subscription, verify

from loosely.core.documents import FanOutResult, Publication
from loosely.delivery.loopshare import LoopShare
from loosely.delivery.rendering import Renderer
from loosely.delivery.signing import Signer


class RecordingSigner:
    """Signs with ``signer`` and notes the name of the thread each signature was made on."""

    def __init__(self, signer: Signer, threads: list[str]) -> None:
        self.certificate_name = signer.certificate_name
        self._signer = signer
        self._threads = threads

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        self._threads.append(threading.current_thread().name)
        return self._signer.sign(string_to_sign, signature_version)


async def test_presigned_envelopes_are_signed_off_the_event_loop_and_verify(signer: Signer) -> None:
    threads: list[str] = []

    renderer = Renderer(RecordingSigner(signer, threads), PUBLIC_URL)
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
async def test_signing_threads_run_at_a_lower_cpu_priority_than_requests(signer: Signer) -> None:
    """Requests (the loop, the writer's thread) get the CPU first when signatures want it at the same time."""
    priorities: list[int] = []

    class PriorityRecordingSigner(RecordingSigner):
        def sign(self, string_to_sign: bytes, signature_version: str) -> str:
            priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().sign(string_to_sign, signature_version)

    renderer = Renderer(PriorityRecordingSigner(signer, []), PUBLIC_URL)
    try:
        message = published()
        await renderer.presign(message, message.message, "2")
    finally:
        renderer.close()
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert priorities == [min(19, own + 10)]
    assert own < 19  # the loop's own thread keeps its priority


async def test_presigning_many_envelopes_hands_the_threads_one_job_each(signer: Signer) -> None:
    calls: list[str] = []

    renderer = Renderer(RecordingSigner(signer, calls), PUBLIC_URL)
    jobs: list[int] = []
    try:
        messages = [published(message_id=f"m{i}") for i in range(6)]
        original = renderer._signer._sign_all

        def counted(keys: list[tuple[bytes, str]]) -> list[str]:
            jobs.append(len(keys))
            return original(keys)

        renderer._signer._sign_all = counted  # type: ignore[method-assign]
        await renderer.presign_many([(m, m.message, "1") for m in messages] * 2)  # repeats are signed once
        bodies = [
            renderer.sqs_request(m, subscription("sqs", "arn:aws:sqs:us-east-1:1:q"), "1", None, False).body
            for m in messages
        ]
    finally:
        renderer.close()
    assert sorted(jobs) == [3, 3]
    assert len(calls) == 6 and all(name.startswith("loosely-sign") for name in calls)
    for body in bodies:
        verify(json.loads(body), signer)


async def test_planning_a_batch_gives_way_to_other_work_on_the_loop(stack: Stack) -> None:
    topic = await stack.topic("wide")
    for i in range(20):
        await stack.subscribe(topic, "sqs", (await stack.queue(f"wide-{i}")).key.arn)
    for i in range(32):
        await stack.publish(topic, f"message {i}")
    turns = 0
    turns_when_planning_began: int | None = None
    turns_at_first_write: int | None = None
    stop = False

    async def other_work() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    plan, complete = stack.fanout.plan, stack.store.complete_publications
    # One chunk for the whole batch, so the first write comes after all of the planning.
    stack.fanout.options = dataclasses.replace(stack.fanout.options, fanout_rows=10_000, fanout_rows_yielding=10_000)

    async def planning(*args: Any) -> Any:
        nonlocal turns_when_planning_began
        if turns_when_planning_began is None:
            turns_when_planning_began = turns
        return await plan(*args)

    async def writing(*args: Any) -> None:
        nonlocal turns_at_first_write
        if turns_at_first_write is None:
            turns_at_first_write = turns
        await complete(*args)

    stack.fanout.plan = planning  # type: ignore[method-assign]
    stack.store.complete_publications = writing
    ticker = asyncio.create_task(other_work())
    try:
        assert await stack.fanout.run_once() == 32
    finally:
        stop = True
        await ticker

    assert turns_when_planning_began is not None and turns_at_first_write is not None
    # 32 publications of 20 subscribers are several milliseconds of planning: the other task got the
    # loop at least once per slice of it, not only when fan-out waited for the store.
    assert turns_at_first_write - turns_when_planning_began >= 3
    assert stack.fanout.loop_share.yields >= 3
    assert stack.stats.sqs_messages == 32 * 20


async def test_fan_out_gives_way_until_it_falls_too_far_behind(stack: Stack) -> None:
    options = stack.fanout.options
    topic = await stack.topic("lagging")
    await stack.subscribe(topic, "sqs", (await stack.queue("lagging")).key.arn)

    await stack.publish(topic, "fresh")
    await stack.fan_out()
    assert stack.fanout.loop_share.share == options.fanout_share

    await stack.publish(topic, "old")
    stack.clock.advance(options.fanout_max_lag_ms + 1)
    await stack.fan_out()
    assert stack.fanout.loop_share.share == options.fanout_share_behind
    assert stack.stats.sqs_messages == 2


async def test_while_fan_out_is_behind_publish_waits_for_it_to_retire_publications(stack: Stack) -> None:
    """The backlog stays bounded: behind, new publications are admitted only as fan-out retires old ones."""
    stack.fanout.options = dataclasses.replace(stack.fanout.options, fanout_batch=1)
    options = stack.fanout.options
    topic = await stack.topic("overloaded")
    queue = await stack.queue("overloaded")
    await stack.subscribe(topic, "sqs", queue.key.arn)
    for i in range(3):
        await stack.publish(topic, f"old {i}")
    stack.clock.advance(2 * options.publish_hold_lag_ms)  # twice the limit: two retired admit one

    assert await stack.fanout.run_once() == 1
    assert stack.fanout.backlog.behind
    held = asyncio.create_task(stack.publish(topic, "held"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not held.done()
    assert stack.stats.publishes_held == 1

    assert await stack.fanout.run_once() == 1  # the second one retired admits it
    await asyncio.wait_for(held, 5)
    assert stack.stats.publishes_held_too_long == 0

    # Caught up (a batch that is not full): the gate opens, publishing no longer waits.
    stack.fanout.options = dataclasses.replace(options, fanout_batch=32)
    run = asyncio.create_task(stack.fanout.run())
    try:
        await _fanned_out(stack, 4)
        assert not stack.fanout.backlog.behind
        await asyncio.wait_for(stack.publish(topic, "fresh"), 5)
        await _fanned_out(stack, 5)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert stack.stats.publishes_held == 1
    bodies = [json.loads(m.body)["Message"] for m in await stack.receive_all(queue)]
    assert sorted(bodies) == ["fresh", "held", "old 0", "old 1", "old 2"]


async def _fanned_out(stack: Stack, publications: int) -> None:
    """Wait (bounded) for the running fan-out to have retired ``publications`` in all."""
    for _ in range(1000):
        if stack.stats.publications >= publications:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"fan-out retired {stack.stats.publications} of {publications}")


async def test_chunks_are_retired_in_claim_order_each_while_the_next_is_planned(stack: Stack) -> None:
    topic = await stack.topic("chunked")
    for i in range(30):
        await stack.subscribe(topic, "sqs", (await stack.queue(f"chunked-{i}")).key.arn)
    for i in range(20):
        await stack.publish(topic, f"message {i}")
    written: list[list[int]] = []
    planned: list[int] = []
    planned_while_writing: list[int] = []
    complete, plan = stack.store.complete_publications, stack.fanout.plan

    events = 0  # publications begun or finished planning

    async def planning(publication: Publication, *args: Any) -> Any:
        nonlocal events
        planned.append(publication.id)
        events += 1
        try:
            return await plan(publication, *args)
        finally:
            events += 1

    async def writing(results: list[FanOutResult], *args: Any) -> None:
        written.append([r.publication_id for r in results])
        events_then = events
        await asyncio.sleep(0.2)  # a slow store: planning must not wait for it
        await complete(results, *args)
        planned_while_writing.append(events - events_then)

    stack.fanout.plan = planning  # type: ignore[method-assign]
    stack.store.complete_publications = writing
    await stack.fan_out()

    rows = stack.fanout.options.fanout_rows
    assert len(written) > 1
    assert [pid for chunk in written for pid in chunk] == sorted(planned)
    assert all(len(chunk) * 31 < rows + 31 for chunk in written)  # about fanout_rows rows each, at most
    assert any(planned_while_writing)  # the next chunk was planned while one was being written
    assert stack.stats.sqs_messages == 20 * 30


async def test_after_a_chunk_fan_out_leaves_the_store_to_busy_requests_for_its_share(stack: Stack) -> None:
    fanout = stack.fanout
    now = [100.0]
    fanout.loop_share = LoopShare(0.2, clock=lambda: now[0])
    fanout.used_store(98.0, 100.0)  # a chunk took 2 s: the store is fan-out's again in 8 s

    await asyncio.wait_for(fanout.store_turn(), 5)  # nobody else is using the loop: no waiting

    fanout.loop_share._busy_at = now[0]  # requests are being served
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(fanout.store_turn(), 0.05)
