"""SNS fan-out into queues serves parked long polls the way a send does: no herd, no lost wake-up.

A fan-out chunk (`complete_publications`) that writes messages to a queue with long polls parked on
it enqueues claims for as many of them as its visible messages can fill, in the chunk's own commit
group; when those claims took everything, the other parked receives are not woken (they would only
claim and find nothing). Each test drives the store as the service does for a long poll (claim,
wait, claim again); instants are passed in. Every wait is far longer than the test's deadline
(`_DEADLINE_S`), so a receive left asleep while a message it could take waits fails the test
instead of being rescued by its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlite_writer_control import Hold, until

from loosely.core.documents import FanOutResult, NewPublication
from loosely.core.errors import QueuesGone
from loosely.core.queues.models import ClaimRequest, ClaimResult, NewMessage, QueueKey
from loosely.storage.sqlite.backend import SqliteStore

NOW = 1_700_000_000_000
VISIBILITY_MS = 30_000
DEDUP_WINDOW_MS = 300_000
TOPIC = "arn:aws:sns:us-east-1:000000000000:t"
_WAIT_S = 60.0
"""Every long poll's wait: a receive that slept through a message would hold the test this long."""
_DEADLINE_S = 10.0
"""How long a test waits for a receive that must be answered now (well short of `_WAIT_S`)."""


@pytest.fixture(params=["FULL", "PIPELINED"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "q.db"), synchronous=request.param)
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


def _claim(now_ms: int, max_messages: int) -> ClaimRequest:
    return ClaimRequest(max_messages=max_messages, now_ms=now_ms, visible_until_ms=now_ms + VISIBILITY_MS)


def _message(body: str, delay_ms: int = 0, group_id: str | None = None) -> NewMessage:
    dedup = body if group_id is not None else None
    return NewMessage(
        message_id=f"id-{body}",
        body=body,
        meta="{}",
        sent_ms=NOW + 1,
        visible_at_ms=NOW + 1 + delay_ms,
        group_id=group_id,
        dedup_key=dedup,
    )


async def _long_poll(store: SqliteStore, queue_id: int, max_messages: int) -> ClaimResult:
    """What the service does: claim, find nothing, wait, claim again."""
    first = await store.claim_messages(queue_id, _claim(NOW, max_messages))
    assert first.messages == []
    await store.wait_for_messages(queue_id, _WAIT_S)
    return await store.claim_messages(queue_id, _claim(NOW + 2, max_messages))


async def _parked_polls(
    store: SqliteStore, queue_id: int, count: int, max_messages: int = 10
) -> list[asyncio.Future[ClaimResult]]:
    """``count`` long polls started one after another, each parked before the next starts."""
    polls: list[asyncio.Future[ClaimResult]] = []
    for _ in range(count):
        polls.append(asyncio.ensure_future(_long_poll(store, queue_id, max_messages)))
        await until(lambda: store.parked_receives(queue_id) == len(polls))
    return polls


async def _claimed(store: SqliteStore, count: int) -> list[int]:
    """``count`` publications, published and claimed as the fan-out worker claims them: their ids."""
    publications = [NewPublication(TOPIC, f"p{i}-{NOW}", "{}") for i in range(count)]
    await store.add_publications(publications, NOW, DEDUP_WINDOW_MS)
    return [p.id for p in await store.claim_publications("node", NOW, 60_000, count)]


async def _complete(store: SqliteStore, ids: Sequence[int], sends: Sequence[Sequence[tuple[int, NewMessage]]]) -> int:
    """Retire a chunk as the fan-out worker does (one transaction); how many groups the writer committed meanwhile."""
    commits = store.groups_committed
    results = [FanOutResult(i, list(s)) for i, s in zip(ids, sends, strict=True)]
    await store.complete_publications(results, NOW + 1, DEDUP_WINDOW_MS)
    return store.groups_committed - commits


async def _fan_out(store: SqliteStore, sends: Sequence[Sequence[tuple[int, NewMessage]]]) -> int:
    """One chunk: a publication per entry of ``sends``, claimed and retired (`_complete`)."""
    return await _complete(store, await _claimed(store, len(sends)), sends)


async def _answered(polls: Sequence[asyncio.Future[ClaimResult]]) -> list[list[str]]:
    """The bodies each of ``polls`` returned, failing if any is not answered soon."""
    results = await asyncio.wait_for(asyncio.gather(*polls), _DEADLINE_S)
    return [[m.body for m in result.messages] for result in results]


async def _cancel(polls: Sequence[asyncio.Future[ClaimResult]]) -> None:
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)


async def test_a_fan_out_wakes_only_the_parked_receive_its_message_fills(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first, *others = await _parked_polls(store, queue_id, 8)

    commits = await _fan_out(store, [[(queue_id, _message("a"))]])

    assert await _answered([first]) == [["a"]]
    # The claim made for it committed with the fan-out; the seven others were left asleep.
    assert commits == 1
    assert not any(poll.done() for poll in others)
    assert store.parked_receives(queue_id) == 7
    assert store._waiters.waiting(queue_id) == 7
    await _cancel(others)


async def test_a_chunk_of_k_messages_is_taken_by_k_parked_receives_at_once(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    polls = await _parked_polls(store, queue_id, 5, max_messages=1)

    await _fan_out(store, [[(queue_id, _message(body))] for body in ("a", "b", "c")])

    assert sorted(b for bodies in await _answered(polls[:3]) for b in bodies) == ["a", "b", "c"]
    assert not polls[3].done() and not polls[4].done()
    assert store.parked_receives(queue_id) == 2
    assert (await store.claim_messages(queue_id, _claim(NOW + 3, 10))).messages == []
    await _cancel(polls[3:])


async def test_each_queue_of_a_chunk_serves_its_own_parked_receives(store: SqliteStore) -> None:
    one, two = await _queue(store, "one"), await _queue(store, "two")
    one_polls = await _parked_polls(store, one, 3)
    two_polls = await _parked_polls(store, two, 3)

    await _fan_out(store, [[(one, _message("x1")), (two, _message("x2"))], [(one, _message("y1"))]])

    assert await _answered([one_polls[0], two_polls[0]]) == [["x1", "y1"], ["x2"]]
    assert store.parked_receives(one) == 2 and store.parked_receives(two) == 2
    await _cancel(one_polls[1:] + two_polls[1:])


async def test_more_messages_than_the_parked_receives_take_wake_no_one_in_vain(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    polls = await _parked_polls(store, queue_id, 2, max_messages=1)

    await _fan_out(store, [[(queue_id, _message(body))] for body in ("a", "b", "c")])

    assert sorted(b for bodies in await _answered(polls) for b in bodies) == ["a", "b"]
    left = await store.claim_messages(queue_id, _claim(NOW + 3, 10))
    assert [m.body for m in left.messages] == ["c"]


async def test_a_message_a_served_receive_left_visible_wakes_the_others(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    gone, other = await _parked_polls(store, queue_id, 2)
    ids = await _claimed(store, 1)
    hold = Hold(store)
    await hold.entered()
    try:
        fanned_out = asyncio.ensure_future(_complete(store, ids, [[(queue_id, _message("a"))]]))
        await until(lambda: store.parked_receives(queue_id) == 1)  # the first is served, its claim waits

        gone.cancel()  # its claim will take nothing: "a" stays visible, and the other receive must hear of it
        with pytest.raises(asyncio.CancelledError):
            await gone
    finally:
        await hold.release()
    await fanned_out

    assert await _answered([other]) == [["a"]]


async def test_a_delayed_message_in_a_chunk_wakes_every_parked_receive(store: SqliteStore) -> None:
    queue_id = await _queue(store)
    first, second = await _parked_polls(store, queue_id, 2)

    await _fan_out(store, [[(queue_id, _message("now"))], [(queue_id, _message("later", delay_ms=60_000))]])

    # Woken both: the second claims again (and learns when the delayed message is due, for its next wait).
    assert await _answered([first, second]) == [["now"], []]


async def test_a_fan_out_to_a_fifo_queue_wakes_every_parked_receive(store: SqliteStore) -> None:
    queue_id = await _queue(store, "q.fifo")
    first, second = await _parked_polls(store, queue_id, 2)

    await _fan_out(store, [[(queue_id, _message("a", group_id="g"))]])

    assert await _answered([first, second]) == [["a"], []]


async def test_a_chunk_that_failed_and_is_retried_still_reaches_the_receive_it_had_served(
    store: SqliteStore,
) -> None:
    queue_id = await _queue(store)
    deleted = await _queue(store, "deleted")
    await store.delete_queue(deleted, NOW)
    [poll] = await _parked_polls(store, queue_id, 1)
    ids = await _claimed(store, 1)

    # The first try names a queue deleted since: nothing is written, and the claim made for the receive finds nothing.
    with pytest.raises(QueuesGone):
        await _complete(store, ids, [[(queue_id, _message("a")), (deleted, _message("lost"))]])
    assert not poll.done()
    await _complete(store, ids, [[(queue_id, _message("a"))]])

    assert await _answered([poll]) == [["a"]]
