"""Fair queues: a standard queue's quiet tenants go ahead of a noisy neighbour's backlog (storage._fair).

A tenant (MessageGroupId) is noisy with more than 10 % of the queue's in-flight messages and at
least 30 of them, or with more than 10 % of the consumer processing time recently spent on the
queue's deleted messages. The detection stands for a second of the store's clock, so each test
moves the clock past it after putting messages in flight.
"""

from __future__ import annotations

import asyncio

from loosely.core.ports import QueueStore
from loosely.core.queues.models import DeadLetterTarget, DeleteOutcome, MessageRef, QueueRecord
from loosely.storage._fair import DETECT_EVERY_MS, LOOK_AHEAD, PROCESSING_WINDOW_MS

from .helpers import DEDUP_WINDOW_MS, T0, bodies, claim, make_queue, msg, send

LATER = T0 + DETECT_EVERY_MS + 10  # past the detection made while the messages were put in flight


async def _in_flight(store: QueueStore, queue: QueueRecord, count: int, now_ms: int = T0 + 1) -> list[MessageRef]:
    """Claim ``count`` messages (the oldest visible) so they are in flight; their receipts."""
    refs: list[MessageRef] = []
    while len(refs) < count:
        got = await claim(store, queue, n=min(10, count - len(refs)), now_ms=now_ms)
        assert got.messages
        refs += [MessageRef(m.row_id, m.receive_count) for m in got.messages]
    return refs


async def _send_group(store: QueueStore, queue: QueueRecord, prefix: str, count: int, group: str | None) -> None:
    messages = [msg(f"{prefix}{i}", sent_ms=T0, group_id=group) for i in range(count)]
    for start in range(0, count, 500):
        await store.send_messages(queue.id, messages[start : start + 500], T0, DEDUP_WINDOW_MS)


async def test_quiet_tenants_go_ahead_of_a_noisy_backlog(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 5, "A")
    await send(store, queue, "b1", "b2", group_id="B")
    await send(store, queue, "plain")
    await _in_flight(store, queue, 40)

    first = await claim(store, queue, n=3, now_ms=LATER)
    assert sorted(bodies(first)) == ["b1", "b2", "plain"]
    # No quiet message left: the noisy tenant's messages are delivered as usual, oldest first.
    rest = await claim(store, queue, n=10, now_ms=LATER)
    assert bodies(rest) == [f"a-old{i}" for i in range(5)]


async def test_a_fair_claim_fills_up_with_noisy_messages(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 3, "A")
    await send(store, queue, "b1", group_id="B")
    await _in_flight(store, queue, 40)

    got = await claim(store, queue, n=10, now_ms=LATER)
    assert bodies(got) == ["b1", "a-old0", "a-old1", "a-old2"]


async def test_only_the_noisy_tenant_visible_still_delivers(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 2, "A")
    await _in_flight(store, queue, 40)

    got = await claim(store, queue, n=10, now_ms=LATER)
    assert bodies(got) == ["a-old0", "a-old1"]


async def test_the_noisy_tenant_with_fewer_in_flight_comes_first(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 50, "A")
    await _send_group(store, queue, "c-flight", 35, "C")
    await _in_flight(store, queue, 85)
    await _send_group(store, queue, "a-old", 2, "A")
    await _send_group(store, queue, "c-old", 2, "C")

    got = await claim(store, queue, n=3, now_ms=LATER)
    assert bodies(got) == ["c-old0", "c-old1", "a-old0"]


async def test_below_the_thresholds_the_order_is_oldest_first(store: QueueStore) -> None:
    queue = await make_queue(store)
    # 29 in flight: too few, although all of the queue's in-flight messages.
    await _send_group(store, queue, "a-flight", 29, "A")
    await _send_group(store, queue, "a-old", 2, "A")
    await send(store, queue, "b1", group_id="B")
    await _in_flight(store, queue, 29)
    assert bodies(await claim(store, queue, n=3, now_ms=LATER)) == ["a-old0", "a-old1", "b1"]


async def test_ten_percent_or_less_of_the_in_flight_is_not_noisy(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 30, "A")
    await _send_group(store, queue, "x-flight", 270, None)  # A holds exactly 10 %
    await _send_group(store, queue, "a-old", 2, "A")
    await send(store, queue, "b1", group_id="B")
    await _in_flight(store, queue, 300)
    assert bodies(await claim(store, queue, n=3, now_ms=LATER)) == ["a-old0", "a-old1", "b1"]


async def test_a_tenant_is_quiet_again_once_its_in_flight_messages_are_deleted(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 2, "A")
    await send(store, queue, "b1", "b2", group_id="B")
    refs = await _in_flight(store, queue, 40)
    assert bodies(await claim(store, queue, n=1, now_ms=LATER)) == ["b1"]

    await store.delete_messages(queue.id, refs)
    # Within the detection's second A still counts as noisy; after it, plain order again.
    assert bodies(await claim(store, queue, n=1, now_ms=LATER + 1)) == ["b2"]
    again = LATER + DETECT_EVERY_MS
    assert bodies(await claim(store, queue, n=10, now_ms=again)) == ["a-old0", "a-old1"]


async def test_a_deep_noisy_backlog_still_yields_quiet_messages(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-head", LOOK_AHEAD // 2, "A")
    await send(store, queue, "early", group_id="B")  # within the oldest rows looked at
    await _send_group(store, queue, "a-old", 5_000, "A")
    await send(store, queue, "recent", group_id="B")  # sent after the whole backlog: among the newest
    await _in_flight(store, queue, 40)

    got = await claim(store, queue, n=2, now_ms=LATER)
    assert bodies(got) == ["early", "recent"]
    assert bodies(await claim(store, queue, n=1, now_ms=LATER)) == ["a-head0"]


async def test_dead_letters_move_on_fair_claims(store: QueueStore) -> None:
    queue = await make_queue(store)
    dlq = await make_queue(store, "dlq")
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=queue.key.arn)
    await send(store, queue, "b-poison", group_id="B")
    assert bodies(await claim(store, queue, n=1, now_ms=T0, visibility_ms=500)) == ["b-poison"]
    await _send_group(store, queue, "a-flight", 40, "A")
    await _in_flight(store, queue, 40)
    await _send_group(store, queue, "a-old", 1, "A")
    await send(store, queue, "b-good", group_id="B")

    got = await claim(store, queue, n=2, now_ms=LATER, dead_letter=target)
    assert bodies(got) == ["b-good", "a-old0"]
    assert got.moved_to_dead_letter == 1
    assert bodies(await claim(store, dlq, n=10, now_ms=LATER)) == ["b-poison"]


async def test_concurrent_fair_claims_hand_out_each_message_once(store: QueueStore) -> None:
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 60, "A")
    await _send_group(store, queue, "b", 20, "B")
    await _in_flight(store, queue, 40)

    results = await asyncio.gather(*(claim(store, queue, n=10, now_ms=LATER) for _ in range(8)))
    taken = [m.row_id for r in results for m in r.messages]
    assert len(taken) == len(set(taken)) == 80
    assert sum(1 for r in results for m in r.messages if m.group_id == "B") == 20


async def test_a_fair_claim_hands_out_dead_letters_when_the_dead_letter_queue_is_gone(store: QueueStore) -> None:
    # As a plain claim does: with no queue to move them to, over-limit messages are delivered as any other.
    queue = await make_queue(store)
    dlq = await make_queue(store, "dlq")
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=queue.key.arn)
    await send(store, queue, "b-poison", group_id="B")
    assert bodies(await claim(store, queue, n=1, now_ms=T0, visibility_ms=500)) == ["b-poison"]
    await _send_group(store, queue, "a-flight", 40, "A")
    await _in_flight(store, queue, 40)
    await store.delete_queue(dlq.id, T0 + 2)

    got = await claim(store, queue, n=1, now_ms=LATER, dead_letter=target)
    assert bodies(got) == ["b-poison"]
    assert got.moved_to_dead_letter == 0


async def test_a_tenant_turning_noisy_is_detected_without_waiting_for_the_clock(store: QueueStore) -> None:
    # The detection stands for a second, or until the store has handed out as many of the queue's
    # messages as make a tenant noisy: then the next claim counts again, at the same instant.
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await _send_group(store, queue, "a-old", 2, "A")
    await send(store, queue, "b1", group_id="B")
    await _in_flight(store, queue, 40)

    assert bodies(await claim(store, queue, n=2, now_ms=T0 + 1)) == ["b1", "a-old0"]


async def test_a_deleted_fair_queue_leaves_no_state_behind(store: QueueStore) -> None:
    # A server that serves many short-lived queues (test suites) must not keep one entry per queue ever made.
    queue = await make_queue(store)
    await _send_group(store, queue, "a-flight", 40, "A")
    await send(store, queue, "b1", group_id="B")
    await _in_flight(store, queue, 40)
    await claim(store, queue, n=1, now_ms=LATER)
    fair = store._fair  # type: ignore[attr-defined]
    assert fair.knows(queue.id)

    await store.delete_queue(queue.id, LATER)

    assert not fair.knows(queue.id)


async def _process(store: QueueStore, queue: QueueRecord, slow_ms: int, *, timed: bool = True) -> int:
    """Tenant A's one message and B's nine are received at T0 + 1; B's are deleted 1 ms later, A's
    after ``slow_ms`` (A's share of the processing time is then over 10 %, B's under). A then
    has two messages waiting and B, sent after them, one. Returns the instant of A's delete."""
    await send(store, queue, "a-done", group_id="A")
    await _send_group(store, queue, "b-done", 9, "B")
    taken = (await claim(store, queue, n=10, now_ms=T0 + 1)).messages
    refs = {m.body: MessageRef(m.row_id, m.receive_count) for m in taken}
    b_refs = [refs[f"b-done{i}"] for i in range(9)]
    timing = {"now_ms": T0 + 2, "received_ms": [T0 + 1] * 9} if timed else {}
    assert await store.delete_messages(queue.id, b_refs, **timing) == [DeleteOutcome.DELETED] * 9  # type: ignore[arg-type]
    deleted_at = T0 + 1 + slow_ms
    timing = {"now_ms": deleted_at, "received_ms": [T0 + 1]} if timed else {}
    assert await store.delete_messages(queue.id, [refs["a-done"]], **timing) == [DeleteOutcome.DELETED]  # type: ignore[arg-type]
    await send(store, queue, "a-next0", "a-next1", group_id="A")
    await send(store, queue, "b-next", group_id="B")
    return deleted_at


async def test_a_tenant_with_slow_messages_is_noisy_by_processing_time(store: QueueStore) -> None:
    # Nothing is in flight, so the concurrency share finds no noisy tenant: A's one message kept a
    # consumer busy for 5 s against B's nine for 1 ms each, so B's message goes ahead of A's older ones.
    queue = await make_queue(store)
    deleted_at = await _process(store, queue, slow_ms=5_000)

    got = await claim(store, queue, n=2, now_ms=deleted_at + DETECT_EVERY_MS)
    assert bodies(got) == ["b-next", "a-next0"]


async def test_a_slow_share_of_ten_percent_or_less_is_not_noisy(store: QueueStore) -> None:
    # A's 1 ms is exactly 10 % of the 10 ms spent on the queue: not more than 10 %, oldest first.
    queue = await make_queue(store)
    deleted_at = await _process(store, queue, slow_ms=1)

    assert bodies(await claim(store, queue, n=1, now_ms=deleted_at + DETECT_EVERY_MS)) == ["a-next0"]


async def test_deletes_without_their_receive_instants_count_no_processing_time(store: QueueStore) -> None:
    queue = await make_queue(store)
    deleted_at = await _process(store, queue, slow_ms=5_000, timed=False)

    assert bodies(await claim(store, queue, n=1, now_ms=deleted_at + DETECT_EVERY_MS)) == ["a-next0"]


async def test_processing_time_counts_for_two_windows(store: QueueStore) -> None:
    queue = await make_queue(store)
    deleted_at = await _process(store, queue, slow_ms=5_000)

    # Still noisy in the window after the one the times were counted in; quiet once that one ends too.
    first_window_start = T0 + 2
    in_next = first_window_start + PROCESSING_WINDOW_MS + PROCESSING_WINDOW_MS // 2
    assert in_next - deleted_at >= DETECT_EVERY_MS
    assert bodies(await claim(store, queue, n=1, now_ms=in_next)) == ["b-next"]
    later = first_window_start + 2 * PROCESSING_WINDOW_MS
    assert bodies(await claim(store, queue, n=1, now_ms=later)) == ["a-next0"]


async def test_stale_deletes_count_no_processing_time(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a-done", group_id="A")
    await send(store, queue, "b-done", group_id="B")
    a, b = (await claim(store, queue, n=2, now_ms=T0 + 1)).messages
    assert a.body == "a-done"
    stale = MessageRef(a.row_id, a.receive_count + 1)
    done_at = T0 + 9_001
    outcomes = await store.delete_messages(queue.id, [stale], now_ms=done_at, received_ms=[T0 + 1])
    assert outcomes == [DeleteOutcome.STALE]
    b_ref = MessageRef(b.row_id, b.receive_count)
    await store.delete_messages(queue.id, [b_ref], now_ms=T0 + 2_001, received_ms=[T0 + 1])
    await send(store, queue, "b-next", group_id="B")
    await send(store, queue, "a-next", group_id="A")

    # Only B's 2 s count (A's 9 s would make both noisy, and the older B message first): B is the
    # noisy one, and A's message goes ahead of B's older one.
    assert bodies(await claim(store, queue, n=1, now_ms=done_at + DETECT_EVERY_MS)) == ["a-next"]


async def test_timed_deletes_on_a_fair_queue_keep_the_counts(store: QueueStore) -> None:
    # A fair queue's timed deletes take their own statement (they also read the groups): the
    # queue's counts must follow them as they follow any delete.
    queue = await make_queue(store)
    await _send_group(store, queue, "a", 6, "A")
    await send(store, queue, "plain")
    taken = (await claim(store, queue, n=5, now_ms=T0 + 1)).messages
    refs = [MessageRef(m.row_id, m.receive_count) for m in taken]
    assert store._fair.grouped(queue.id)  # type: ignore[attr-defined]

    outcomes = await store.delete_messages(queue.id, [*refs[:3], refs[0]], now_ms=T0 + 50, received_ms=[T0 + 1] * 4)

    assert outcomes == [DeleteOutcome.DELETED] * 3 + [DeleteOutcome.GONE]
    counts = await store.count_messages(queue.id, T0 + 50)
    assert (counts.visible, counts.in_flight) == (2, 2)
