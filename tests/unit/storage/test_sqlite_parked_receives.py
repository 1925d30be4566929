"""Parked long polls are served by the send that wakes them: their claim commits in the send's group.

Each test drives the store the way the service does for a long poll (claim, wait, claim again)
and checks what the second claim returns and how many commits it took. The clock is the caller's:
instants are passed in, nothing sleeps. To keep a claim made for a receive from running yet, some
hold the writer's thread with a bulk item that blocks until released (`_Hold`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlite_writer_control import Hold, until

from loosely.core.queues.models import ClaimRequest, ClaimResult, NewMessage, QueueKey
from loosely.storage.sqlite.backend import SqliteStore

NOW = 1_700_000_000_000
VISIBILITY_MS = 30_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "q.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _queue(store: SqliteStore, name: str = "q") -> int:
    record, _ = await store.create_queue(
        QueueKey("000000000000", "us-east-1", name), {"DelaySeconds": "0"}, {}, 3_600_000, NOW
    )
    return record.id


def _claim(now_ms: int, max_messages: int = 10) -> ClaimRequest:
    return ClaimRequest(max_messages=max_messages, now_ms=now_ms, visible_until_ms=now_ms + VISIBILITY_MS)


def _message(body: str, sent_ms: int, delay_ms: int = 0) -> NewMessage:
    return NewMessage(message_id=f"id-{body}", body=body, meta="{}", sent_ms=sent_ms, visible_at_ms=sent_ms + delay_ms)


async def _long_poll(store: SqliteStore, queue_id: int, max_messages: int = 10) -> ClaimResult:
    """What the service does: claim, find nothing, wait, claim again."""
    first = await store.claim_messages(queue_id, _claim(NOW, max_messages))
    assert first.messages == []
    await store.wait_for_messages(queue_id, 20)
    return await store.claim_messages(queue_id, _claim(NOW + 2, max_messages))


async def _parked_polls(store: SqliteStore, queue_id: int, count: int) -> list[asyncio.Future[ClaimResult]]:
    """``count`` long polls started one after another, each parked before the next starts."""
    polls: list[asyncio.Future[ClaimResult]] = []
    for _ in range(count):
        polls.append(asyncio.ensure_future(_long_poll(store, queue_id)))
        await until(lambda: store.parked_receives(queue_id) == len(polls))
    return polls


async def test_a_parked_receive_gets_the_message_in_the_commit_of_the_send(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    receive = asyncio.ensure_future(_long_poll(store, queue_id))
    await until(lambda: store.parked_receives(queue_id) == 1)
    commits = store.groups_committed

    await store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000)
    result = await receive

    assert [(m.body, m.receive_count) for m in result.messages] == [("a", 1)]
    assert store.groups_committed == commits + 1  # the send and the claim made for the receive
    # In flight for the visibility timeout from the send's instant, as if claimed then.
    assert (await store.claim_messages(queue_id, _claim(NOW + VISIBILITY_MS))).messages == []
    again = await store.claim_messages(queue_id, _claim(NOW + 1 + VISIBILITY_MS))
    assert [(m.body, m.receive_count) for m in again.messages] == [("a", 2)]


async def test_only_as_many_receives_as_the_messages_fill_are_served(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first = asyncio.ensure_future(_long_poll(store, queue_id, max_messages=1))
    await until(lambda: store.parked_receives(queue_id) == 1)
    second = asyncio.ensure_future(_long_poll(store, queue_id, max_messages=1))
    await until(lambda: store.parked_receives(queue_id) == 2)

    await store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000)

    assert [m.body for m in (await first).messages] == ["a"]
    # Woken too (every wait is), it claimed for itself and found nothing.
    assert (await second).messages == []
    assert store.parked_receives(queue_id) == 0


async def test_a_delayed_message_serves_no_parked_receive(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    receive = asyncio.ensure_future(_long_poll(store, queue_id))
    await until(lambda: store.parked_receives(queue_id) == 1)

    await store.send_messages(queue_id, [_message("later", NOW + 1, delay_ms=5_000)], NOW + 1, 300_000)

    assert (await receive).messages == []  # woken, it claims at NOW + 2: still delayed
    assert store.parked_receives(queue_id) == 0
    due = await store.claim_messages(queue_id, _claim(NOW + 5_001))
    assert [(m.body, m.receive_count) for m in due.messages] == [("later", 1)]


async def test_a_receive_that_went_away_is_no_longer_parked_and_claims_nothing(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    receive = asyncio.ensure_future(_long_poll(store, queue_id))
    await until(lambda: store.parked_receives(queue_id) == 1)

    receive.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receive
    await store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000)

    assert store.parked_receives(queue_id) == 0
    result = await store.claim_messages(queue_id, _claim(NOW + 3))
    assert [(m.body, m.receive_count) for m in result.messages] == [("a", 1)]


async def test_a_send_to_another_queue_serves_nobody(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    other_id = await _queue(store, "other")
    receive = asyncio.ensure_future(_long_poll(store, queue_id))
    await until(lambda: store.parked_receives(queue_id) == 1)

    await store.send_messages(other_id, [_message("elsewhere", NOW + 1)], NOW + 1, 300_000)

    assert store.parked_receives(queue_id) == 1
    await store.send_messages(queue_id, [_message("here", NOW + 1)], NOW + 1, 300_000)
    assert [m.body for m in (await receive).messages] == ["here"]


async def test_a_claim_made_for_a_receive_waits_for_its_next_claim_across_another_wait(store: SqliteStore) -> None:
    queue_id = await _queue(store)

    async def long_poll_waiting_twice() -> ClaimResult:
        assert (await store.claim_messages(queue_id, _claim(NOW))).messages == []
        await store.wait_for_messages(queue_id, 20)
        # The service may wait again without claiming (at the in-flight limit); the claim made stays.
        await store.wait_for_messages(queue_id, 0.001)
        return await store.claim_messages(queue_id, _claim(NOW + 2))

    receive = asyncio.ensure_future(long_poll_waiting_twice())
    await until(lambda: store.parked_receives(queue_id) == 1)
    await store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000)

    assert [(m.body, m.receive_count) for m in (await receive).messages] == [("a", 1)]


async def test_a_wait_without_a_claim_before_it_does_not_park(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first_wait_over = asyncio.Event()

    async def waits_twice() -> ClaimResult:
        assert (await store.claim_messages(queue_id, _claim(NOW))).messages == []
        await store.wait_for_messages(queue_id, 0.001)  # runs out: nothing is sent
        first_wait_over.set()
        # The service may wait again without claiming (at the in-flight limit): no claim may be made for it.
        await store.wait_for_messages(queue_id, 20)
        return await store.claim_messages(queue_id, _claim(NOW + 2))

    poll = asyncio.ensure_future(waits_twice())
    await first_wait_over.wait()
    await until(lambda: store._waiters.waiting(queue_id) == 1)

    assert store.parked_receives(queue_id) == 0
    await store.send_messages(queue_id, [_message("now", NOW + 1)], NOW + 1, 300_000)
    assert [(m.body, m.receive_count) for m in (await poll).messages] == [("now", 1)]  # its own claim, once woken


async def test_a_receive_gone_before_the_claim_made_for_it_ran_takes_nothing(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    poll = asyncio.ensure_future(_long_poll(store, queue_id))
    await until(lambda: store.parked_receives(queue_id) == 1)
    hold = Hold(store)
    await hold.entered()
    sent = asyncio.ensure_future(store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000))
    await until(lambda: store.parked_receives(queue_id) == 0)  # served: its claim is enqueued behind the send

    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    await hold.release()
    await sent

    result = await store.claim_messages(queue_id, _claim(NOW + 3))
    assert [(m.body, m.receive_count) for m in result.messages] == [("a", 1)]


async def test_a_send_the_served_receives_drain_leaves_the_other_parked_receives_asleep(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first, second = await _parked_polls(store, queue_id, 2)

    await store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000)

    assert [m.body for m in (await first).messages] == ["a"]
    # The other one would only have claimed and found nothing: it was not woken.
    assert not second.done()
    assert store.parked_receives(queue_id) == 1
    assert store._waiters.waiting(queue_id) == 1
    await store.send_messages(queue_id, [_message("b", NOW + 2)], NOW + 2, 300_000)
    assert [m.body for m in (await second).messages] == ["b"]


async def test_messages_left_visible_by_a_served_receive_wake_the_others(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    gone, other = await _parked_polls(store, queue_id, 2)
    hold = Hold(store)
    await hold.entered()
    sent = asyncio.ensure_future(store.send_messages(queue_id, [_message("a", NOW + 1)], NOW + 1, 300_000))
    await until(lambda: store.parked_receives(queue_id) == 1)  # the first is served, its claim waits

    gone.cancel()  # its claim will take nothing: "a" stays visible, and the other receive must hear of it
    with pytest.raises(asyncio.CancelledError):
        await gone
    await hold.release()
    await sent

    assert [m.body for m in (await asyncio.wait_for(other, 10)).messages] == ["a"]


async def test_a_send_with_a_delayed_message_wakes_every_parked_receive(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first, second = await _parked_polls(store, queue_id, 2)

    sent = [_message("now", NOW + 1), _message("later", NOW + 1, delay_ms=60_000)]
    await store.send_messages(queue_id, sent, NOW + 1, 300_000)

    assert [m.body for m in (await first).messages] == ["now"]
    # Woken: it claims again (and learns when the delayed message is due, for its next wait).
    assert (await asyncio.wait_for(second, 10)).messages == []
