"""A write wakes only as many of its node's parked receivers as can take its messages, and strands none.

Waits are long (8 s: as long as a registration covers) and the timed fallback longer (60 s), so a
message left behind by a partial wake-up fails the test's short deadlines instead of being rescued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, claim, make_queue, send
from loosely.core.documents import FanOutResult, NewPublication
from loosely.core.queues.models import ClaimResult, NewMessage, QueueRecord
from loosely.storage.postgres import PostgresStore
from loosely.storage.postgres._notify import Waiters
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres

_WAIT_S = 8.0
_PROMPT_S = 3.0  # far below the waits and the fallback: only a wake-up delivers in time


async def long_poll(node: PostgresStore, queue: QueueRecord, n: int) -> ClaimResult:
    while True:
        result = await claim(node, queue, n)
        if result.messages:
            return result
        await node.wait_for_messages(queue.id, _WAIT_S)


async def until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def park(node: PostgresStore, queue: QueueRecord, count: int, n: int = 10) -> list[asyncio.Task[ClaimResult]]:
    """``count`` receivers parked on ``queue``, oldest first (each waits before the next starts)."""
    tasks: list[asyncio.Task[ClaimResult]] = []
    before = node._waiters.waiting(queue.id)
    for i in range(count):
        tasks.append(asyncio.create_task(long_poll(node, queue, n)))
        await until(lambda parked=before + i + 1: node._waiters.waiting(queue.id) == parked)
    return tasks


def count_claims(node: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the receives' claims of standard queues (each one statement or a share of one)."""
    claims = [0]
    original = node._rounds.claim

    async def counted(queue_id: int, request: Any) -> Any:
        claims[0] += 1
        return await original(queue_id, request)

    monkeypatch.setattr(node._rounds, "claim", counted)
    return claims


async def cancel_all(tasks: list[asyncio.Task[ClaimResult]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_message_wakes_one_of_eight_parked_receivers(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    receivers = await park(node, queue, 8)
    claims = count_claims(node, monkeypatch)
    try:
        await send(node, queue, "one")

        done, _ = await asyncio.wait(receivers, timeout=_PROMPT_S, return_when=asyncio.FIRST_COMPLETED)
        assert [len(task.result().messages) for task in done] == [1]
        assert done == {receivers[0]}  # the oldest waiter
        assert claims[0] == 1
        assert node._waiters.waiting(queue.id) == 7
    finally:
        await cancel_all(receivers)


async def test_twenty_five_messages_wake_three_receivers_of_ten_and_all_are_delivered(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    receivers = await park(node, queue, 8)
    claims = count_claims(node, monkeypatch)
    try:
        await send(node, queue, *(f"m{i}" for i in range(25)))

        delivered = lambda: sum(len(task.result().messages) for task in receivers if task.done())  # noqa: E731
        await until(lambda: delivered() == 25, _PROMPT_S)
        # Three woken; the two full claims each passed the wake-up on, to one more receiver each.
        await until(lambda: node._waiters.waiting(queue.id) + sum(task.done() for task in receivers) == 8)
        # 5 claims (6 should a woken receiver's claim lose its messages to a later one's and claim again).
        assert claims[0] <= 6
        assert node._waiters.waiting(queue.id) >= 3
    finally:
        await cancel_all(receivers)


async def test_a_chosen_receiver_that_leaves_before_its_claim_passes_the_message_on(open_node: NodeFactory) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    chosen = asyncio.Event()

    async def leaves_before_claiming() -> None:
        await long_poll_once_registered(node, queue)
        chosen.set()
        await asyncio.Event().wait()  # the client goes away here: cancelled before it claims

    leaving = asyncio.create_task(leaves_before_claiming())
    await until(lambda: node._waiters.waiting(queue.id) == 1)
    receivers = await park(node, queue, 2)
    try:
        await send(node, queue, "one")
        await asyncio.wait_for(chosen.wait(), _PROMPT_S)  # the oldest was chosen, the others sleep on
        assert node._waiters.waiting(queue.id) == 2
        leaving.cancel()

        done, _ = await asyncio.wait(receivers, timeout=_PROMPT_S, return_when=asyncio.FIRST_COMPLETED)
        assert [[m.body for m in task.result().messages] for task in done] == [["one"]]
    finally:
        await cancel_all([leaving, *receivers])


async def test_a_chosen_receiver_that_waits_again_unclaimed_passes_the_message_on(open_node: NodeFactory) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    chosen = asyncio.Event()

    async def waits_again() -> None:
        await long_poll_once_registered(node, queue)
        chosen.set()
        await node.wait_for_messages(queue.id, _WAIT_S)  # e.g. at its in-flight limit: it will not claim

    waiting = asyncio.create_task(waits_again())
    await until(lambda: node._waiters.waiting(queue.id) == 1)
    receivers = await park(node, queue, 2)
    try:
        await send(node, queue, "one")
        await asyncio.wait_for(chosen.wait(), _PROMPT_S)

        done, _ = await asyncio.wait(receivers, timeout=_PROMPT_S, return_when=asyncio.FIRST_COMPLETED)
        assert [[m.body for m in task.result().messages] for task in done] == [["one"]]
    finally:
        await cancel_all([waiting, *receivers])


async def long_poll_once_registered(node: PostgresStore, queue: QueueRecord) -> None:
    """Claim and wait, as a receive does, until a wait ends with a wake-up (the first, after registering, does not)."""
    assert (await claim(node, queue)).messages == []
    await node.wait_for_messages(queue.id, _WAIT_S)  # registers, then returns for a fresh claim
    assert (await claim(node, queue)).messages == []
    await node.wait_for_messages(queue.id, _WAIT_S)


async def test_a_full_claim_passes_the_wake_up_on_when_more_was_left(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    receivers = await park(node, queue, 3, n=1)
    wake_some = node._waiters.wake_some
    calls: list[int] = []

    def announcing_one(queue_id: int, messages: int, reserved: int = 0) -> int:
        # The send's wake-up counts one message of three: as when more was visible than announced.
        calls.append(messages)
        return wake_some(queue_id, 1 if len(calls) == 1 else messages, reserved)

    monkeypatch.setattr(node._waiters, "wake_some", announcing_one)
    try:
        await send(node, queue, "a", "b", "c")

        got = await asyncio.wait_for(asyncio.gather(*receivers), _PROMPT_S)
        assert sorted(m.body for result in got for m in result.messages) == ["a", "b", "c"]
        assert calls == [3, 1, 1, 1]  # the send, then each full claim's pass-on
    finally:
        await cancel_all(receivers)


async def test_a_fan_out_wakes_only_as_many_parked_receivers_as_it_has_messages(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    receivers = await park(node, queue, 8)
    claims = count_claims(node, monkeypatch)
    try:
        [outcome] = await node.add_publications([NewPublication("arn:aws:sns:us-east-1:0:t", "p", "{}")], T0, 0)
        message = NewMessage(message_id="m", body="fanned out", meta="{}", sent_ms=T0, visible_at_ms=T0)
        await node.complete_publications([FanOutResult(outcome.sequence, [(queue.id, message)])], T0, DEDUP_WINDOW_MS)

        done, _ = await asyncio.wait(receivers, timeout=_PROMPT_S, return_when=asyncio.FIRST_COMPLETED)
        assert [[m.body for m in task.result().messages] for task in done] == [["fanned out"]]
        assert claims[0] == 1
        assert node._waiters.waiting(queue.id) == 7
    finally:
        await cancel_all(receivers)


async def test_delayed_messages_still_wake_every_parked_receiver(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await open_node(wake_fallback_s=60.0)
    queue = await make_queue(node)
    receivers = await park(node, queue, 3)
    claims = count_claims(node, monkeypatch)
    try:
        await send(node, queue, "later", visible_at_ms=T0 + 60_000)
        # Each learns from its empty claim when the message is due (no wake-up will announce it).
        await until(lambda: claims[0] == 3, _PROMPT_S)
    finally:
        await cancel_all(receivers)


async def test_partial_wake_ups_release_their_reservations_and_advance_the_epoch() -> None:
    waiters = Waiters()
    parked = [asyncio.create_task(waiters.wait(7, 30.0, want=10)) for _ in range(3)]
    idle = asyncio.create_task(waiters.wait(7, 30.0))  # wants nothing (not a receiver): always woken
    await asyncio.sleep(0)
    assert waiters.reserve(7, 10) and waiters.reserve(7, 10)
    epoch = waiters.epoch(7)

    assert waiters.wake_some(7, 10, reserved=10) == 10
    assert waiters.epoch(7) == epoch + 1  # a receiver between its claim and its wait claims again
    assert await asyncio.wait_for(parked[0], 1.0) is True  # chosen: it owes a claim
    assert await asyncio.wait_for(idle, 1.0) is False
    assert waiters.waiting(7) == 2
    assert waiters.reserve(7, 10)  # the other send's 10 stay reserved; 10 of the room is left
    assert not waiters.reserve(7, 1)
    assert waiters.wake(7) == 20
    assert await asyncio.wait_for(asyncio.gather(*parked[1:]), 1.0) == [False, False]
