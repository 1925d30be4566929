"""The PostgreSQL store's local waiters (`loosely.storage.postgres._notify.Waiters`), without a database."""

from __future__ import annotations

import asyncio

import pytest

from loosely.storage.postgres._notify import Waiters


@pytest.mark.parametrize("wake", ["wake", "wake_some"])
async def test_a_cancel_that_meets_a_wake_up_still_cancels(wake: str) -> None:
    """A long poll cancelled just as it is woken must end, not take the wake-up and wait again.

    On Python 3.11 ``asyncio.wait_for`` returned the result in this case and dropped the
    cancellation, so a cancelled receive went on claiming and waiting.
    """
    waiters = Waiters()
    waiting = asyncio.create_task(waiters.wait(7, 30.0, want=1))
    await asyncio.sleep(0)  # parked
    assert waiters.waiting(7) == 1

    getattr(waiters, wake)(7, 1) if wake == "wake_some" else waiters.wake(7)
    waiting.cancel()  # in the same turn of the loop, before the waiter runs again

    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert waiters.waiting(7) == 0


async def test_a_chosen_waiter_that_is_cancelled_passes_its_share_on() -> None:
    waiters = Waiters()
    first = asyncio.create_task(waiters.wait(7, 30.0, want=1))
    await asyncio.sleep(0)
    second = asyncio.create_task(waiters.wait(7, 30.0, want=1))
    await asyncio.sleep(0)

    assert waiters.wake_some(7, 1) == 1  # the oldest is chosen for the one message
    first.cancel()

    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 5) is True  # it owes the claim now


async def test_a_wait_runs_out_unchosen_and_end_returns_the_others_at_once() -> None:
    waiters = Waiters()
    assert await waiters.wait(7, 0.05, want=1) is False
    outbox = asyncio.create_task(waiters.wait(0, 0.2, want=0))
    queue = asyncio.create_task(waiters.wait(7, 30.0, want=1))
    await asyncio.sleep(0)

    waiters.end(keep=0)

    assert await asyncio.wait_for(queue, 5) is False
    assert await waiters.wait(7, 30.0, want=1) is False  # at once from now on
    assert await asyncio.wait_for(outbox, 5) is False  # woken once, as every wake-up may
    started = asyncio.get_running_loop().time()
    assert await waiters.wait(0, 0.2, want=0) is False  # the kept key still waits
    assert asyncio.get_running_loop().time() - started >= 0.15
