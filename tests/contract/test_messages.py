"""Contract: send, claim, visibility, delete, expiry and deduplication on standard queues."""

from __future__ import annotations

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, bodies, claim, make_queue, msg, send
from loosely.core.errors import QueueDoesNotExist
from loosely.core.ports import QueueStore
from loosely.core.queues.models import DeleteOutcome, MessageRef, QueueCounts, VisibilityOutcome


def ref(m: object) -> MessageRef:
    return MessageRef(row_id=m.row_id, receive_count=m.receive_count)  # type: ignore[attr-defined]


async def test_send_returns_one_outcome_per_message_in_order(store: QueueStore) -> None:
    queue = await make_queue(store)
    messages = [msg(f"m{i}") for i in range(5)]

    outcomes = await store.send_messages(queue.id, messages, T0, DEDUP_WINDOW_MS)

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert [o.duplicate for o in outcomes] == [False] * 5
    sequences = [o.sequence for o in outcomes]
    assert sequences == sorted(sequences) and len(set(sequences)) == 5


async def test_batch_sequences_name_the_stored_rows(store: QueueStore) -> None:
    queue = await make_queue(store)
    earlier = await store.send_messages(queue.id, [msg("x"), msg("y")], T0, DEDUP_WINDOW_MS)
    taken = await claim(store, queue, n=2)
    await store.delete_messages(queue.id, [MessageRef(m.row_id, m.receive_count) for m in taken.messages])
    batch = [msg(f"m{i}") for i in range(7)]

    outcomes = await store.send_messages(queue.id, batch, T0, DEDUP_WINDOW_MS)
    received = await claim(store, queue, n=10)

    rows = {m.message_id: m.row_id for m in received.messages}
    assert {o.message_id: o.sequence for o in outcomes} == rows
    assert min(rows.values()) > max(o.sequence for o in earlier)


async def test_sequences_increase_across_calls_and_queues(store: QueueStore) -> None:
    a, b = await make_queue(store, "a"), await make_queue(store, "b")
    first = await store.send_messages(a.id, [msg()], T0, DEDUP_WINDOW_MS)
    second = await store.send_messages(b.id, [msg()], T0, DEDUP_WINDOW_MS)
    third = await store.send_messages(a.id, [msg()], T0, DEDUP_WINDOW_MS)

    assert first[0].sequence < third[0].sequence
    assert second[0].sequence != first[0].sequence


async def test_claim_returns_stored_fields(store: QueueStore) -> None:
    queue = await make_queue(store)
    sent = msg("hello", meta='{"attrs":{"k":"v"}}', group_id="g1")
    outcome = (await store.send_messages(queue.id, [sent], T0, DEDUP_WINDOW_MS))[0]

    result = await claim(store, queue, now_ms=T0 + 5)

    [got] = result.messages
    assert got.row_id == outcome.sequence
    assert (got.message_id, got.body, got.meta, got.sent_ms) == (sent.message_id, "hello", sent.meta, T0)
    assert (got.receive_count, got.first_receive_ms, got.group_id) == (1, T0 + 5, "g1")
    assert got.dead_letter_source_arn is None
    assert result.moved_to_dead_letter == 0


async def test_claim_hands_out_oldest_first_up_to_max(store: QueueStore) -> None:
    queue = await make_queue(store)
    for i in range(20):
        await send(store, queue, f"m{i:02d}", now_ms=T0 + i)

    first = await claim(store, queue, n=10, now_ms=T0 + 100)
    second = await claim(store, queue, n=10, now_ms=T0 + 100)
    third = await claim(store, queue, n=10, now_ms=T0 + 100)

    assert bodies(first) == [f"m{i:02d}" for i in range(10)]
    assert bodies(second) == [f"m{i:02d}" for i in range(10, 20)]
    assert third.messages == []


async def test_claimed_message_invisible_until_timeout_then_redelivered(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a")

    first = await claim(store, queue, now_ms=T0)
    hidden = await claim(store, queue, now_ms=T0 + VISIBILITY_MS - 1)
    again = await claim(store, queue, now_ms=T0 + VISIBILITY_MS)

    assert bodies(first) == ["a"]
    assert hidden.messages == []
    assert hidden.next_visible_at_ms == T0 + VISIBILITY_MS
    [redelivered] = again.messages
    assert redelivered.receive_count == 2
    assert redelivered.first_receive_ms == T0
    assert redelivered.row_id == first.messages[0].row_id


async def test_delayed_message_not_claimable_until_visible(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "later", now_ms=T0, visible_at_ms=T0 + 10_000)

    early = await claim(store, queue, now_ms=T0 + 9_999)
    on_time = await claim(store, queue, now_ms=T0 + 10_000)

    assert early.messages == []
    assert early.next_visible_at_ms == T0 + 10_000
    assert bodies(on_time) == ["later"]


async def test_empty_queue_has_no_next_visible(store: QueueStore) -> None:
    queue = await make_queue(store)

    result = await claim(store, queue)

    assert result.messages == []
    assert result.next_visible_at_ms is None


async def test_zero_visibility_claim_hands_each_message_once_per_claim(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b")

    first = await claim(store, queue, n=10, now_ms=T0, visibility_ms=0)
    second = await claim(store, queue, n=10, now_ms=T0, visibility_ms=0)

    assert sorted(bodies(first)) == ["a", "b"]
    assert sorted(bodies(second)) == ["a", "b"]
    assert {m.receive_count for m in second.messages} == {2}


async def test_delete_outcomes_deleted_stale_gone(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b")
    first = await claim(store, queue, n=2, now_ms=T0)
    a, b = first.messages
    again = await claim(store, queue, n=2, now_ms=T0 + VISIBILITY_MS)  # both received a second time
    b2 = next(m for m in again.messages if m.row_id == b.row_id)

    outcomes = await store.delete_messages(queue.id, [ref(a), ref(b2), ref(b2)])

    assert outcomes == [DeleteOutcome.STALE, DeleteOutcome.DELETED, DeleteOutcome.GONE]
    assert (await store.count_messages(queue.id, T0 + VISIBILITY_MS)).in_flight == 1


async def test_delete_with_ref_of_other_queue_is_gone(store: QueueStore) -> None:
    a, b = await make_queue(store, "a"), await make_queue(store, "b")
    await send(store, a, "x")
    [m] = (await claim(store, a)).messages

    assert await store.delete_messages(b.id, [ref(m)]) == [DeleteOutcome.GONE]
    assert await store.delete_messages(a.id, [ref(m)]) == [DeleteOutcome.DELETED]


async def test_delete_after_visibility_expired_still_deletes_current_receive(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a")
    [m] = (await claim(store, queue)).messages

    assert await store.delete_messages(queue.id, [ref(m)]) == [DeleteOutcome.DELETED]
    assert (await claim(store, queue, now_ms=T0 + VISIBILITY_MS)).messages == []


async def test_delete_on_missing_queue_raises(store: QueueStore) -> None:
    with pytest.raises(QueueDoesNotExist):
        await store.delete_messages(424242, [MessageRef(1, 1)])


async def test_change_visibility_extends_and_shortens(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b")
    a, b = (await claim(store, queue, n=2)).messages

    outcomes = await store.change_visibility(queue.id, [(ref(a), T0 + 100_000), (ref(b), T0 + 1)], T0 + 1)

    assert outcomes == [VisibilityOutcome.CHANGED, VisibilityOutcome.CHANGED]
    assert bodies(await claim(store, queue, now_ms=T0 + 1, visibility_ms=500_000)) == ["b"]
    assert (await claim(store, queue, now_ms=T0 + 99_999)).messages == []
    assert bodies(await claim(store, queue, now_ms=T0 + 100_000)) == ["a"]


async def test_change_visibility_not_in_flight_or_gone(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a", "b")
    a, b = (await claim(store, queue, n=2)).messages
    await store.delete_messages(queue.id, [ref(b)])
    never_received = (await store.send_messages(queue.id, [msg("c")], T0, DEDUP_WINDOW_MS))[0]

    stale = await store.change_visibility(queue.id, [(MessageRef(a.row_id, 7), T0 + 60_000)], T0)
    gone = await store.change_visibility(queue.id, [(ref(b), T0 + 60_000)], T0)
    visible = await store.change_visibility(queue.id, [(MessageRef(never_received.sequence, 0), T0 + 60_000)], T0)

    assert stale == [VisibilityOutcome.NOT_IN_FLIGHT]
    assert gone == [VisibilityOutcome.GONE]
    assert visible == [VisibilityOutcome.NOT_IN_FLIGHT]


async def test_change_visibility_after_the_timeout_ran_out_applies_while_the_receipt_is_current(
    store: QueueStore,
) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a")
    (a,) = (await claim(store, queue)).messages
    later = T0 + VISIBILITY_MS + 5_000  # the timeout ran out 5 s ago: "a" is visible again

    outcome = await store.change_visibility(queue.id, [(ref(a), later + 30_000)], later)

    assert outcome == [VisibilityOutcome.CHANGED]
    assert bodies(await claim(store, queue, now_ms=later)) == []
    again = await claim(store, queue, now_ms=later + 30_000)
    assert bodies(again) == ["a"]
    assert again.messages[0].receive_count == 2


async def test_change_visibility_after_the_timeout_with_a_receipt_of_an_earlier_receive_is_not_in_flight(
    store: QueueStore,
) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a")
    (first,) = (await claim(store, queue)).messages
    later = T0 + VISIBILITY_MS + 1
    (second,) = (await claim(store, queue, now_ms=later)).messages

    outdated = await store.change_visibility(queue.id, [(ref(first), later)], later)
    current = await store.change_visibility(queue.id, [(ref(second), later)], later)

    assert outdated == [VisibilityOutcome.NOT_IN_FLIGHT]
    assert current == [VisibilityOutcome.CHANGED]
    assert bodies(await claim(store, queue, now_ms=later)) == ["a"]


async def test_expired_messages_are_not_claimed_and_are_reaped(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=60_000)
    await send(store, queue, "old1", "old2", "old3", now_ms=T0)
    await send(store, queue, "young", now_ms=T0 + 30_000)

    reaped_first = await store.expire_messages(T0 + 60_000, 2)
    reaped_rest = await store.expire_messages(T0 + 60_000, 100)
    result = await claim(store, queue, now_ms=T0 + 60_000)

    assert (reaped_first, reaped_rest) == (2, 1)
    assert bodies(result) == ["young"]
    assert await store.expire_messages(T0 + 60_000, 100) == 0


async def test_claim_skips_expired_without_reaper(store: QueueStore) -> None:
    queue = await make_queue(store, retention_ms=60_000)
    await send(store, queue, *[f"old{i}" for i in range(30)], now_ms=T0)
    await send(store, queue, "young", now_ms=T0 + 59_000)

    result = await claim(store, queue, now_ms=T0 + 60_000)

    assert bodies(result) == ["young"]


async def test_dedup_within_window_returns_original(store: QueueStore) -> None:
    queue = await make_queue(store, "d.fifo")
    [first] = await store.send_messages(queue.id, [msg("x", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)
    [dup] = await store.send_messages(
        queue.id, [msg("other", group_id="g", dedup_key="k", sent_ms=T0 + 1000)], T0 + 1000, DEDUP_WINDOW_MS
    )

    assert dup.duplicate is True
    assert (dup.message_id, dup.sequence) == (first.message_id, first.sequence)
    assert (await store.count_messages(queue.id, T0 + 1000)).visible == 1


async def test_dedup_same_key_twice_in_one_batch(store: QueueStore) -> None:
    queue = await make_queue(store, "d.fifo")
    outcomes = await store.send_messages(
        queue.id, [msg("a", group_id="g", dedup_key="k"), msg("b", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS
    )

    assert [o.duplicate for o in outcomes] == [False, True]
    assert outcomes[1].message_id == outcomes[0].message_id


async def test_dedup_after_window_stores_again(store: QueueStore) -> None:
    queue = await make_queue(store, "d.fifo")
    [first] = await store.send_messages(queue.id, [msg("x", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)
    later = T0 + DEDUP_WINDOW_MS
    [second] = await store.send_messages(
        queue.id, [msg("x", group_id="g", dedup_key="k", sent_ms=later)], later, DEDUP_WINDOW_MS
    )

    assert second.duplicate is False
    assert second.message_id != first.message_id
    assert (await store.count_messages(queue.id, later)).visible == 2


async def test_dedup_survives_delete_of_original(store: QueueStore) -> None:
    queue = await make_queue(store, "d.fifo")
    [first] = await store.send_messages(queue.id, [msg("x", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)
    [m] = (await claim(store, queue)).messages
    await store.delete_messages(queue.id, [ref(m)])

    [dup] = await store.send_messages(queue.id, [msg("x", group_id="g", dedup_key="k")], T0 + 5, DEDUP_WINDOW_MS)

    assert dup.duplicate and dup.message_id == first.message_id
    assert await store.count_messages(queue.id, T0 + 5) == QueueCounts(0, 0, 0)


async def test_dedup_is_per_queue(store: QueueStore) -> None:
    a, b = await make_queue(store, "a.fifo"), await make_queue(store, "b.fifo")
    await store.send_messages(a.id, [msg("x", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)

    [other] = await store.send_messages(b.id, [msg("x", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)

    assert other.duplicate is False


async def test_send_to_missing_queue_raises(store: QueueStore) -> None:
    with pytest.raises(QueueDoesNotExist):
        await store.send_messages(424242, [msg()], T0, DEDUP_WINDOW_MS)
