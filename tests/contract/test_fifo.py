"""Contract: FIFO group ordering and blocking, dead letters in the claim, receive attempts."""

from __future__ import annotations

import pytest

from contract.conftest import Harness
from contract.helpers import DAY_MS, DEDUP_WINDOW_MS, T0, VISIBILITY_MS, bodies, claim, key, make_queue, msg
from loosely.core.ports import QueueStore
from loosely.core.queues.models import (
    DeadLetterTarget,
    DeleteOutcome,
    MessageRef,
    QueueCounts,
    QueueRecord,
    StoredMessage,
    VisibilityOutcome,
)


def ref(m: StoredMessage) -> MessageRef:
    return MessageRef(row_id=m.row_id, receive_count=m.receive_count)


async def send_groups(store: QueueStore, queue: QueueRecord, spec: str, now_ms: int = T0) -> None:
    """Send messages named like ``A1 A2 B1``: the letter is the group."""
    messages = [msg(name, group_id=name[0], sent_ms=now_ms) for name in spec.split()]
    await store.send_messages(queue.id, messages, now_ms, DEDUP_WINDOW_MS)


async def test_fifo_claim_returns_groups_in_send_order(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1 A2 B2 A3 C1")

    result = await claim(store, queue, n=10)

    got = bodies(result)
    assert sorted(got) == ["A1", "A2", "A3", "B1", "B2", "C1"]
    for group in "ABC":
        in_group = [b for b in got if b[0] == group]
        assert in_group == sorted(in_group)


async def test_fifo_group_with_message_in_flight_yields_nothing(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2 A3 B1")

    first = await claim(store, queue, n=1)
    second = await claim(store, queue, n=10)
    third = await claim(store, queue, n=10)

    assert bodies(first) == ["A1"]
    assert bodies(second) == ["B1"]
    assert third.messages == []
    assert third.next_visible_at_ms == T0 + VISIBILITY_MS


async def test_fifo_delete_unblocks_group_in_order(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2 A3")
    [a1] = (await claim(store, queue, n=1)).messages

    await store.delete_messages(queue.id, [ref(a1)])
    next_two = await claim(store, queue, n=2)

    assert bodies(next_two) == ["A2", "A3"]


async def test_fifo_partial_delete_keeps_group_blocked(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2 A3")
    a1, a2 = (await claim(store, queue, n=2)).messages

    await store.delete_messages(queue.id, [ref(a1)])

    assert (await claim(store, queue, n=10)).messages == []
    await store.delete_messages(queue.id, [ref(a2)])
    assert bodies(await claim(store, queue, n=10)) == ["A3"]


async def test_fifo_timeout_redelivers_head_before_later_messages(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    await claim(store, queue, n=1)

    again = await claim(store, queue, n=1, now_ms=T0 + VISIBILITY_MS)

    [a1] = again.messages
    assert (a1.body, a1.receive_count) == ("A1", 2)


async def test_fifo_change_visibility_to_now_unblocks_group(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    [a1] = (await claim(store, queue, n=1)).messages

    outcome = await store.change_visibility(queue.id, [(ref(a1), T0 + 5)], T0 + 5)
    result = await claim(store, queue, n=10, now_ms=T0 + 5)

    assert outcome == [VisibilityOutcome.CHANGED]
    assert bodies(result) == ["A1", "A2"]


async def test_fifo_head_visible_again_is_delivered_while_a_later_message_is_in_flight(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2 B1")
    a1, _a2 = (await claim(store, queue, n=2)).messages

    await store.change_visibility(queue.id, [(ref(a1), T0 + 5)], T0 + 5)
    result = await claim(store, queue, n=3, now_ms=T0 + 5)

    # B1's group was ready first (at its send); A's head is ready again, A2 is still in flight.
    assert bodies(result) == ["B1", "A1"]
    assert result.messages[1].receive_count == 2
    assert (await claim(store, queue, n=10, now_ms=T0 + 6)).messages == []


async def test_fifo_head_timeout_redelivers_the_head_alone_while_later_visibility_was_extended(
    store: QueueStore,
) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    _a1, a2 = (await claim(store, queue, n=2)).messages
    await store.change_visibility(queue.id, [(ref(a2), T0 + 100_000)], T0 + 1)

    redelivered = await claim(store, queue, n=10, now_ms=T0 + VISIBILITY_MS)

    assert bodies(redelivered) == ["A1"]
    [a1_again] = redelivered.messages
    await store.delete_messages(queue.id, [ref(a1_again)])
    # The head is now A2, still in flight until its extended visibility ends.
    blocked = await claim(store, queue, n=10, now_ms=T0 + VISIBILITY_MS + 1)
    assert blocked.messages == []
    assert blocked.next_visible_at_ms == T0 + 100_000
    assert bodies(await claim(store, queue, n=10, now_ms=T0 + 100_000)) == ["A2"]


async def test_fifo_later_message_made_visible_waits_for_the_in_flight_head(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2 A3")
    a1, a2 = (await claim(store, queue, n=2)).messages

    outcome = await store.change_visibility(queue.id, [(ref(a2), T0 + 5)], T0 + 5)

    assert outcome == [VisibilityOutcome.CHANGED]
    assert (await claim(store, queue, n=10, now_ms=T0 + 5)).messages == []
    await store.delete_messages(queue.id, [ref(a1)])
    assert bodies(await claim(store, queue, n=10, now_ms=T0 + 6)) == ["A2", "A3"]


async def test_fifo_head_ready_with_many_groups_in_flight_claims_only_ready_heads(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    names = [f"G{g:03d}-{i}" for i in range(2) for g in range(200)]
    for start in range(0, len(names), 100):
        batch = [msg(name, group_id=name[:4], sent_ms=T0) for name in names[start : start + 100]]
        await store.send_messages(queue.id, batch, T0, DEDUP_WINDOW_MS)
    taken = []
    for _ in range(40):
        taken += (await claim(store, queue, n=10)).messages
    assert len(taken) == 400
    heads = {m.body[:4]: m for m in taken if m.body.endswith("-0")}
    chosen = sorted(heads)[::20]

    await store.change_visibility(queue.id, [(ref(heads[g]), T0 + 5) for g in chosen], T0 + 5)
    result = await claim(store, queue, n=10, now_ms=T0 + 5)

    assert sorted(bodies(result)) == sorted(f"{g}-0" for g in chosen)


async def test_fifo_extending_visibility_keeps_group_blocked_longer(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    [a1] = (await claim(store, queue, n=1)).messages

    await store.change_visibility(queue.id, [(ref(a1), T0 + 100_000)], T0 + 1)

    assert (await claim(store, queue, now_ms=T0 + VISIBILITY_MS)).messages == []
    blocked = await claim(store, queue, now_ms=T0 + 99_999)
    assert blocked.next_visible_at_ms == T0 + 100_000
    assert bodies(await claim(store, queue, now_ms=T0 + 100_000)) == ["A1", "A2"]


async def test_fifo_claim_spans_several_groups_and_respects_max(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, " ".join(f"{g}{i}" for g in "ABCDE" for i in range(1, 4)))

    result = await claim(store, queue, n=10)

    assert len(result.messages) == 10
    groups = {m.group_id for m in result.messages}
    assert len(groups) >= 4
    for group in groups:
        in_group = [m.body for m in result.messages if m.group_id == group]
        assert in_group == [f"{group}{i}" for i in range(1, len(in_group) + 1)]


async def test_fifo_delayed_head_blocks_its_group_only(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await store.send_messages(
        queue.id,
        [msg("A1", group_id="A", visible_at_ms=T0 + 5_000), msg("A2", group_id="A"), msg("B1", group_id="B")],
        T0,
        DEDUP_WINDOW_MS,
    )

    now = await claim(store, queue, n=10)
    later = await claim(store, queue, n=10, now_ms=T0 + 5_000)

    assert bodies(now) == ["B1"]
    assert bodies(later) == ["A1", "A2"]


async def test_fifo_expired_messages_skipped_in_group(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo", retention_ms=60_000)
    await send_groups(store, queue, "A1 A2", now_ms=T0)
    await send_groups(store, queue, "A3", now_ms=T0 + 30_000)

    result = await claim(store, queue, n=10, now_ms=T0 + 60_000)

    assert bodies(result) == ["A3"]


async def test_fifo_reaper_keeps_groups_consistent(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo", retention_ms=60_000)
    await send_groups(store, queue, "A1", now_ms=T0)
    await send_groups(store, queue, "A2", now_ms=T0 + 30_000)
    await claim(store, queue, n=1)  # A1 in flight until T0 + 30 s

    assert await store.expire_messages(T0 + 60_000, 10) == 1
    assert bodies(await claim(store, queue, n=10, now_ms=T0 + 60_000)) == ["A2"]


async def test_fifo_purge_clears_groups(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1")
    await claim(store, queue, n=1)

    await store.purge_queue(queue.id, T0 + 1, 60_000)
    await send_groups(store, queue, "A2", now_ms=T0 + 2)

    assert bodies(await claim(store, queue, n=10, now_ms=T0 + 2)) == ["A2"]


async def test_fifo_standard_queue_with_group_ids_is_not_blocked(store: QueueStore) -> None:
    queue = await make_queue(store, "fair")
    await send_groups(store, queue, "A1 A2")
    await claim(store, queue, n=1)

    assert bodies(await claim(store, queue, n=10)) == ["A2"]


# ---- dead letters in the claim ----


async def make_redrive(store: QueueStore, fifo: bool = False) -> tuple[QueueRecord, QueueRecord, DeadLetterTarget]:
    suffix = ".fifo" if fifo else ""
    source = await make_queue(store, "src" + suffix)
    dlq, _ = await store.create_queue(key("dlq" + suffix), {}, {}, 2 * 86_400_000, T0)
    return source, dlq, DeadLetterTarget(queue_id=dlq.id, max_receive_count=2, source_arn=source.key.arn)


async def test_claim_moves_messages_received_max_times_to_dead_letter_queue(store: QueueStore) -> None:
    source, dlq, target = await make_redrive(store)
    sent = msg("poison", meta='{"m":1}', sent_ms=T0 - 1_000)
    await store.send_messages(source.id, [sent], T0, DEDUP_WINDOW_MS)
    await claim(store, source, n=1, dead_letter=target)  # received once
    await claim(store, source, n=1, now_ms=T0 + VISIBILITY_MS, dead_letter=target)  # twice
    at = T0 + 2 * VISIBILITY_MS
    await store.send_messages(source.id, [msg("fine", sent_ms=at)], at, DEDUP_WINDOW_MS)

    third = await claim(store, source, n=10, now_ms=at, dead_letter=target)
    moved = await claim(store, dlq, n=10, now_ms=at)

    assert bodies(third) == ["fine"]
    assert third.moved_to_dead_letter == 1
    [dead] = moved.messages
    assert (dead.message_id, dead.body, dead.meta, dead.sent_ms) == (sent.message_id, "poison", '{"m":1}', T0 - 1_000)
    assert dead.dead_letter_source_arn == source.key.arn
    # Received twice in the source, once more by the receive that moved it, then once in the DLQ: SQS keeps
    # counting across the move, and keeps the first receive's time.
    assert dead.receive_count == 4
    assert dead.first_receive_ms == T0
    assert (await store.count_messages(source.id, at)).in_flight == 1


@pytest.mark.parametrize("max_receives", [1, 2])
async def test_claim_neither_repeats_nor_dead_letters_what_it_took_with_visibility_zero(
    harness: Harness, max_receives: int
) -> None:
    # A claim that moved a dead letter may look for more; a message it took with a visibility timeout
    # of 0 is visible again at once, and must not be handed out twice (max 2) or moved (max 1) by it.
    assert harness.store is not None
    store = harness.store
    source, dlq, target = await make_redrive(store)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=max_receives, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg("poison")], T0, DEDUP_WINDOW_MS)
    for _ in range(max_receives):
        await claim(store, source, n=1, visibility_ms=0, dead_letter=target)
    await store.send_messages(source.id, [msg("fine")], T0, DEDUP_WINDOW_MS)

    result = await claim(store, source, n=10, visibility_ms=0, dead_letter=target)

    assert [(m.body, m.receive_count) for m in result.messages] == [("fine", 1)]
    assert result.moved_to_dead_letter == 1
    assert await store.count_messages(source.id, T0) == QueueCounts(visible=1, in_flight=0, delayed=0)
    assert (await store.count_messages(dlq.id, T0)).visible == 1


async def test_dead_lettered_message_expires_by_original_send_time(store: QueueStore) -> None:
    source, dlq, target = await make_redrive(store)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg("p", sent_ms=T0)], T0, DEDUP_WINDOW_MS)
    await claim(store, source, n=1, dead_letter=target)
    await claim(store, source, n=1, now_ms=T0 + VISIBILITY_MS, dead_letter=target)

    alive = await store.count_messages(dlq.id, T0 + 2 * 86_400_000 - 1)
    dead = await store.count_messages(dlq.id, T0 + 2 * 86_400_000)

    assert alive.visible == 1
    assert dead.visible == 0


async def test_fifo_dead_lettered_message_retention_restarts_at_the_move(store: QueueStore) -> None:
    # AWS: for FIFO queues the enqueue timestamp resets when a message moves to the dead-letter queue.
    source, dlq, target = await make_redrive(store, fifo=True)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await send_groups(store, source, "A1")
    await claim(store, source, n=1, dead_letter=target)
    moved_at = T0 + DAY_MS
    moving = await claim(store, source, n=1, now_ms=moved_at, dead_letter=target)

    alive = await store.count_messages(dlq.id, moved_at + 2 * DAY_MS - 1)
    dead = await store.count_messages(dlq.id, moved_at + 2 * DAY_MS)

    assert moving.moved_to_dead_letter == 1
    assert alive.visible == 1
    assert dead.visible == 0


async def test_fifo_dead_letter_keeps_group_and_unblocks_source_group(store: QueueStore) -> None:
    source, dlq, target = await make_redrive(store, fifo=True)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await send_groups(store, source, "A1 A2")
    await claim(store, source, n=1, dead_letter=target)

    later = await claim(store, source, n=10, now_ms=T0 + VISIBILITY_MS, dead_letter=target)
    dead = await claim(store, dlq, n=10, now_ms=T0 + VISIBILITY_MS)

    assert bodies(later) == ["A2"]
    assert later.moved_to_dead_letter == 1
    assert [(m.body, m.group_id) for m in dead.messages] == [("A1", "A")]


async def test_dead_letter_target_missing_delivers_normally(store: QueueStore) -> None:
    source = await make_queue(store)
    target = DeadLetterTarget(queue_id=424242, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg("p")], T0, DEDUP_WINDOW_MS)
    await claim(store, source, dead_letter=target)

    again = await claim(store, source, now_ms=T0 + VISIBILITY_MS, dead_letter=target)

    assert bodies(again) == ["p"]
    assert again.moved_to_dead_letter == 0


# ---- receive attempts ----


async def test_attempt_repeat_returns_same_messages_and_restarts_visibility(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    first = await claim(store, queue, n=2, attempt_id="try-1")

    repeat = await claim(store, queue, n=2, now_ms=T0 + 20_000, attempt_id="try-1")

    assert [(m.row_id, m.receive_count) for m in repeat.messages] == [
        (m.row_id, m.receive_count) for m in first.messages
    ]
    assert (await claim(store, queue, n=10, now_ms=T0 + VISIBILITY_MS)).messages == []  # restarted at T0 + 20 s
    assert bodies(await claim(store, queue, n=10, now_ms=T0 + 20_000 + VISIBILITY_MS)) == ["A1", "A2"]


async def test_attempt_after_messages_modified_claims_anew(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    [a1] = (await claim(store, queue, n=1, attempt_id="try-1")).messages
    await store.delete_messages(queue.id, [ref(a1)])

    repeat = await claim(store, queue, n=1, now_ms=T0 + 1, attempt_id="try-1")

    assert bodies(repeat) == ["A2"]


async def test_attempt_after_visibility_timeout_claims_anew(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1")
    await claim(store, queue, n=1, attempt_id="try-1")

    repeat = await claim(store, queue, n=1, now_ms=T0 + VISIBILITY_MS, attempt_id="try-1")

    [a1] = repeat.messages
    assert a1.receive_count == 2


async def test_attempt_after_window_claims_anew(store: QueueStore) -> None:
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1")
    await claim(store, queue, n=1, visibility_ms=900_000, attempt_id="try-1", attempt_window_ms=300_000)

    repeat = await claim(store, queue, n=1, now_ms=T0 + 300_000, attempt_id="try-1", attempt_window_ms=300_000)

    assert bodies(repeat) == ["B1"]


async def test_attempt_after_visibility_changed_and_set_back_claims_anew(store: QueueStore) -> None:
    # AWS: a retry returns the same messages only if none was modified, i.e. deleted or given another
    # visibility; setting it back to the old instant does not undo the change.
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1")
    [a1] = (await claim(store, queue, n=1, attempt_id="try-1")).messages
    await store.change_visibility(queue.id, [(ref(a1), T0 + 5)], T0 + 1)
    await store.change_visibility(queue.id, [(ref(a1), T0 + VISIBILITY_MS)], T0 + 2)

    retry = await claim(store, queue, n=1, now_ms=T0 + 3, attempt_id="try-1")

    assert bodies(retry) == ["B1"]


async def test_attempt_after_visibility_batch_to_the_same_deadline_claims_anew(store: QueueStore) -> None:
    # ChangeMessageVisibilityBatch: a change counts even when it leaves the deadline where it was, and one
    # message named twice (set, then set back) counts as well.
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1 C1")
    a1, b1 = (await claim(store, queue, n=2, attempt_id="try-1")).messages
    deadline = T0 + VISIBILITY_MS
    changes = [(ref(a1), T0 + 5), (ref(b1), deadline), (ref(a1), deadline)]

    outcomes = await store.change_visibility(queue.id, changes, T0 + 1)
    retry = await claim(store, queue, n=2, now_ms=T0 + 2, attempt_id="try-1")

    assert outcomes == [VisibilityOutcome.CHANGED] * 3
    assert bodies(retry) == ["C1"]


async def test_attempt_not_repeated_once_made_visible_and_received_by_another(store: QueueStore) -> None:
    # A change to visibility 0 lets another receiver take the message; the retry must not hand it out again.
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    [a1] = (await claim(store, queue, n=1, attempt_id="try-1")).messages
    await store.change_visibility(queue.id, [(ref(a1), T0 + 1)], T0 + 1)
    [other] = (await claim(store, queue, n=1, now_ms=T0 + 2)).messages

    retry = await claim(store, queue, n=1, now_ms=T0 + 3, attempt_id="try-1")

    assert (other.row_id, other.receive_count) == (a1.row_id, 2)
    assert retry.messages == []  # A1 is in flight to the other receiver, and A2 waits behind it


async def test_attempt_repeats_after_visibility_changed_in_an_earlier_receive(store: QueueStore) -> None:
    # Only a change made while the attempt holds the message counts, not one from an earlier receive.
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 A2")
    [first] = (await claim(store, queue, n=1)).messages
    await store.change_visibility(queue.id, [(ref(first), T0 + 1)], T0 + 1)
    [a1] = (await claim(store, queue, n=1, now_ms=T0 + 2, attempt_id="try-1")).messages

    retry = await claim(store, queue, n=1, now_ms=T0 + 3, attempt_id="try-1")

    assert (a1.row_id, a1.receive_count) == (first.row_id, 2)
    assert [(m.row_id, m.receive_count) for m in retry.messages] == [(a1.row_id, 2)]


async def test_attempt_repeated_twice_then_changed_claims_anew(store: QueueStore) -> None:
    # A retry restarts the visibility itself, which is not a change; a change after it still counts.
    queue = await make_queue(store, "f.fifo")
    await send_groups(store, queue, "A1 B1")
    [a1] = (await claim(store, queue, n=1, attempt_id="try-1")).messages
    assert bodies(await claim(store, queue, n=1, now_ms=T0 + 1, attempt_id="try-1")) == ["A1"]
    await store.change_visibility(queue.id, [(ref(a1), T0 + 1 + VISIBILITY_MS)], T0 + 2)

    retry = await claim(store, queue, n=1, now_ms=T0 + 3, attempt_id="try-1")

    assert bodies(retry) == ["B1"]


async def test_attempt_ids_are_per_queue(store: QueueStore) -> None:
    a, b = await make_queue(store, "a.fifo"), await make_queue(store, "b.fifo")
    await send_groups(store, a, "A1")
    await send_groups(store, b, "B1")
    await claim(store, a, n=1, attempt_id="same")

    assert bodies(await claim(store, b, n=1, attempt_id="same")) == ["B1"]


async def test_delete_outcome_after_dead_letter_move_is_gone(store: QueueStore) -> None:
    source, _dlq, target = await make_redrive(store)
    target = DeadLetterTarget(queue_id=target.queue_id, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg("p")], T0, DEDUP_WINDOW_MS)
    [p] = (await claim(store, source, dead_letter=target)).messages
    await claim(store, source, now_ms=T0 + VISIBILITY_MS, dead_letter=target)

    assert await store.delete_messages(source.id, [ref(p)]) == [DeleteOutcome.GONE]


async def test_claim_continues_past_a_large_poison_backlog(store: QueueStore) -> None:
    source, dlq, target = await make_redrive(store)
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg(f"p{i}") for i in range(600)], T0, DEDUP_WINDOW_MS)
    for i in range(60):
        await claim(store, source, n=10, now_ms=T0 + i, visibility_ms=1_000)
    now = T0 + 5_000
    await store.send_messages(source.id, [msg("fine", sent_ms=now)], now, DEDUP_WINDOW_MS)

    got: list[str] = []
    moved = 0
    for _ in range(10):  # a backend may stop a claim early after passing over many; later claims go on
        result = await claim(store, source, n=10, now_ms=now, dead_letter=target)
        got += bodies(result)
        moved += result.moved_to_dead_letter
        if got:
            break

    assert got == ["fine"]
    assert moved == 600
    assert (await store.count_messages(dlq.id, now)).visible == 600
