"""Contract: message move tasks, their leases, and moving messages out of a dead-letter queue."""

from __future__ import annotations

import dataclasses

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, bodies, claim, make_queue, msg
from loosely.core.errors import UnsupportedOperation
from loosely.core.ports import QueueStore
from loosely.core.queues.models import DeadLetterTarget, MessageRef, MoveTask, MoveTaskStatus, QueueRecord

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"


def task(handle: str, started_ms: int = T0, source_arn: str = DLQ_ARN, **kw: object) -> MoveTask:
    values: dict[str, object] = {
        "task_handle": handle,
        "source_queue_id": 1,
        "source_arn": source_arn,
        "destination_arn": None,
        "max_per_second": None,
        "status": MoveTaskStatus.RUNNING,
        "approximate_to_move": 5,
        "moved": 0,
        "started_ms": started_ms,
    }
    values.update(kw)
    return MoveTask(**values)  # type: ignore[arg-type]


async def test_move_task_create_get_and_list_newest_first(store: QueueStore) -> None:
    first = task("h1", T0)
    await store.create_move_task(first)
    await store.update_move_task(dataclasses.replace(first, status=MoveTaskStatus.COMPLETED, moved=5))
    await store.create_move_task(task("h2", T0 + 10))
    await store.create_move_task(task("other", T0 + 20, source_arn=DLQ_ARN + "-2"))

    listed = await store.list_move_tasks(DLQ_ARN, 10)

    assert [t.task_handle for t in listed] == ["h2", "h1"]
    assert await store.get_move_task("h1") == dataclasses.replace(first, status=MoveTaskStatus.COMPLETED, moved=5)
    assert await store.get_move_task("nope") is None
    assert [t.task_handle for t in await store.list_move_tasks(DLQ_ARN, 1)] == ["h2"]


async def test_second_running_task_for_same_source_is_refused(store: QueueStore) -> None:
    await store.create_move_task(task("h1"))

    with pytest.raises(UnsupportedOperation):
        await store.create_move_task(task("h2", T0 + 1))
    await store.create_move_task(task("elsewhere", source_arn=DLQ_ARN + "-2"))


async def test_update_move_task_stores_every_field(store: QueueStore) -> None:
    original = task("h1", destination_arn="arn:aws:sqs:us-east-1:123456789012:dest", max_per_second=50)
    await store.create_move_task(original)
    changed = dataclasses.replace(
        original,
        status=MoveTaskStatus.FAILED,
        moved=3,
        approximate_to_move=9,
        failure_reason="AWS.SimpleQueueService.NonExistentQueue",
        lease_owner="node-a",
        lease_until_ms=T0 + 5,
    )

    await store.update_move_task(changed)

    assert await store.get_move_task("h1") == changed


async def test_lease_gives_each_task_to_one_owner_until_expiry(store: QueueStore) -> None:
    await store.create_move_task(task("h1"))

    leased = await store.lease_move_task("node-a", T0, 10_000)
    other = await store.lease_move_task("node-b", T0 + 9_999, 10_000)
    after_expiry = await store.lease_move_task("node-b", T0 + 10_000, 10_000)

    assert leased is not None and leased.task_handle == "h1"
    assert (leased.lease_owner, leased.lease_until_ms) == ("node-a", T0 + 10_000)
    assert other is None
    assert after_expiry is not None and after_expiry.lease_owner == "node-b"
    assert await store.lease_move_task("node-a", T0 + 10_001, 10_000) is None


async def test_the_owner_of_a_lease_waits_for_it_too(store: QueueStore) -> None:
    # A step ends by leasing its task until the next step is due: that lease is the task's rate
    # limit (MaxNumberOfMessagesPerSecond), so the node that ran the step must not take it sooner.
    await store.create_move_task(task("h1"))

    assert await store.lease_move_task("node-a", T0, 1_000) is not None
    assert await store.lease_move_task("node-a", T0 + 999, 1_000) is None
    again = await store.lease_move_task("node-a", T0 + 1_000, 1_000)
    assert again is not None and again.lease_until_ms == T0 + 2_000


async def test_lease_takes_cancelling_but_not_finished_tasks(store: QueueStore) -> None:
    await store.create_move_task(task("done", status=MoveTaskStatus.COMPLETED))
    await store.create_move_task(task("cancelling", status=MoveTaskStatus.CANCELLING, source_arn=DLQ_ARN + "-2"))

    first = await store.lease_move_task("node-a", T0, 1_000)
    second = await store.lease_move_task("node-b", T0, 1_000)

    assert first is not None and first.task_handle == "cancelling"
    assert second is None


async def dead_letters(store: QueueStore, source: QueueRecord, dlq: QueueRecord, *names: str) -> None:
    """Put messages into ``dlq`` the way a claim does (received once, max receive count 1)."""
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg(n) for n in names], T0, DEDUP_WINDOW_MS)
    await claim(store, source, n=10, dead_letter=target)
    result = await claim(store, source, n=10, now_ms=T0 + VISIBILITY_MS, dead_letter=target)
    assert result.moved_to_dead_letter == len(names)


async def test_move_messages_to_explicit_destination(store: QueueStore) -> None:
    source, dlq, dest = await make_queue(store, "src"), await make_queue(store, "dlq"), await make_queue(store, "dest")
    await dead_letters(store, source, dlq, "a", "b", "c")
    now = T0 + VISIBILITY_MS

    moved_first = await store.move_messages(dlq.id, dest.id, 2, now)
    moved_rest = await store.move_messages(dlq.id, dest.id, 10, now)
    landed = await claim(store, dest, n=10, now_ms=now)

    assert (moved_first, moved_rest) == (2, 1)
    assert sorted(bodies(landed)) == ["a", "b", "c"]
    assert {m.receive_count for m in landed.messages} == {1}
    assert (await store.count_messages(dlq.id, now)).visible == 0


async def test_move_messages_back_to_each_source(store: QueueStore) -> None:
    one, two, dlq = await make_queue(store, "one"), await make_queue(store, "two"), await make_queue(store, "dlq")
    await dead_letters(store, one, dlq, "from-one")
    await dead_letters(store, two, dlq, "from-two")
    now = T0 + VISIBILITY_MS

    moved = await store.move_messages(dlq.id, None, 10, now)

    assert moved == 2
    back_one = await claim(store, one, n=10, now_ms=now)
    back_two = await claim(store, two, n=10, now_ms=now)
    assert bodies(back_one) == ["from-one"]
    assert bodies(back_two) == ["from-two"]
    assert back_one.messages[0].receive_count == 1
    assert back_one.messages[0].sent_ms == T0


async def test_move_messages_leaves_those_whose_source_is_gone(store: QueueStore) -> None:
    kept, gone, dlq = await make_queue(store, "kept"), await make_queue(store, "gone"), await make_queue(store, "dlq")
    await dead_letters(store, gone, dlq, "orphan1", "orphan2")
    await dead_letters(store, kept, dlq, "movable")
    await store.delete_queue(gone.id, T0 + VISIBILITY_MS)
    now = T0 + VISIBILITY_MS

    moved = await store.move_messages(dlq.id, None, 1, now)

    assert moved == 1
    assert bodies(await claim(store, kept, n=10, now_ms=now)) == ["movable"]
    assert (await store.count_messages(dlq.id, now)).visible == 2
    assert await store.move_messages(dlq.id, None, 10, now) == 0


async def test_move_messages_into_fifo_keeps_group_order(store: QueueStore) -> None:
    source, dlq = await make_queue(store, "src.fifo"), await make_queue(store, "dlq.fifo")
    target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
    await store.send_messages(source.id, [msg("A1", group_id="A"), msg("A2", group_id="A")], T0, DEDUP_WINDOW_MS)
    for i in range(4):
        await claim(store, source, n=10, now_ms=T0 + i * VISIBILITY_MS, dead_letter=target)
    now = T0 + 4 * VISIBILITY_MS

    moved = await store.move_messages(dlq.id, None, 10, now)
    back = await claim(store, source, n=10, now_ms=now)

    assert moved == 2
    assert bodies(back) == ["A1", "A2"]


async def fifo_dead_letters(store: QueueStore, *bodies_by_group: tuple[str, str]) -> tuple[QueueRecord, QueueRecord]:
    """A FIFO source and its dead-letter queue holding ``(group, body)`` messages, in that order, visible at T0."""
    source, dlq = await make_queue(store, "src.fifo"), await make_queue(store, "dlq.fifo")
    messages = [msg(body, group_id=group) for group, body in bodies_by_group]
    await store.send_messages(dlq.id, messages, T0, DEDUP_WINDOW_MS)
    return source, dlq


async def test_fifo_move_leaves_a_group_with_a_message_in_flight(store: QueueStore) -> None:
    source, dlq = await fifo_dead_letters(store, ("A", "A1"), ("A", "A2"), ("B", "B1"))
    received = await claim(store, dlq, n=1)  # A1 in flight: A2 must wait behind it
    assert bodies(received) == ["A1"]

    moved = await store.move_messages(dlq.id, source.id, 10, T0 + 1)

    assert moved == 1
    assert bodies(await claim(store, source, n=10, now_ms=T0 + 1)) == ["B1"]


async def test_fifo_move_does_not_let_a_visible_message_overtake_one_in_flight(store: QueueStore) -> None:
    source, dlq = await fifo_dead_letters(store, ("A", "A1"), ("A", "A2"), ("A", "A3"))
    received = await claim(store, dlq, n=2)
    assert bodies(received) == ["A1", "A2"]
    # A1 is visible again while A2 stays in flight: A3 must not be moved ahead of A2.
    await store.change_visibility(dlq.id, [(MessageRef(received.messages[0].row_id, 1), T0)], T0)

    moved_while_busy = await store.move_messages(dlq.id, source.id, 10, T0 + 1)
    await store.delete_messages(dlq.id, [MessageRef(received.messages[1].row_id, 1)])
    moved_after = await store.move_messages(dlq.id, source.id, 10, T0 + 2)

    assert moved_while_busy == 0
    assert moved_after == 2
    assert bodies(await claim(store, source, n=10, now_ms=T0 + 2)) == ["A1", "A3"]


async def test_fifo_move_keeps_group_order_across_steps(store: QueueStore) -> None:
    source, dlq = await fifo_dead_letters(store, ("A", "A1"), ("B", "B1"), ("A", "A2"), ("A", "A3"), ("B", "B2"))

    steps = [await store.move_messages(dlq.id, source.id, 2, T0 + i) for i in range(1, 5)]
    landed = await claim(store, source, n=10, now_ms=T0 + 5)

    assert sum(steps) == 5 and steps[-1] == 0
    by_group = {g: [b for b in bodies(landed) if b.startswith(g)] for g in "AB"}
    assert by_group == {"A": ["A1", "A2", "A3"], "B": ["B1", "B2"]}
