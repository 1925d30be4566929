"""Notify only while someone waits: URL settings, local wake-up bookkeeping, and the database side."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psycopg
import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, claim, make_queue, msg, send
from loosely.core.documents import NewDelivery, NewPublication
from loosely.core.queues.models import ClaimResult, DeadLetterTarget, MessageRef, QueueRecord
from loosely.storage.postgres import PostgresStore
from loosely.storage.postgres._notify import Waiters
from loosely.storage.postgres._wake import REGISTRATION_TTL_S, Registrations
from loosely.storage.postgres.backend import split_url_settings
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres


def test_url_settings_are_taken_out_before_libpq_sees_them() -> None:
    url, ours = split_url_settings("postgresql://u@h:5/db?sslmode=disable&schema=prod&pool_max=20&op_timeout_s=2")

    assert url == "postgresql://u@h:5/db?sslmode=disable"
    assert ours == {"schema": "prod", "pool_max": "20", "op_timeout_s": "2"}
    store = PostgresStore("postgresql://u@h:5/db?schema=prod&pool_max=20&op_timeout_s=2")
    assert store.schema == "prod"


def test_url_and_keyword_settings_must_agree() -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresStore("postgresql://u@h/db?schema=a", schema="b")


async def test_waiters_epoch_tells_a_receiver_it_missed_a_wake_up() -> None:
    waiters = Waiters()
    before = waiters.epoch(7)
    waiters.wake(7)

    await asyncio.wait_for(waiters.wait(7, 30.0, since=before), 1.0)  # returns at once
    assert waiters.epoch(8) == 0
    waiters.wake_all()
    assert waiters.epoch(8) == 1  # wake_all counts for queues never seen


async def test_a_send_may_reserve_the_room_of_local_waiters_until_they_are_woken() -> None:
    waiters = Waiters()
    assert not waiters.reserve(7, 1)  # nobody waits
    parked = [asyncio.create_task(waiters.wait(7, 30.0, want=10)) for _ in range(2)]
    outbox = asyncio.create_task(waiters.wait(7, 30.0))  # wants nothing: no room
    await asyncio.sleep(0)

    assert waiters.reserve(7, 15) and waiters.reserve(7, 5)
    assert not waiters.reserve(7, 1)  # all 20 taken
    assert waiters.wake(7) == 20  # what the woken waiters will claim
    await asyncio.wait_for(asyncio.gather(*parked, outbox), 1.0)
    assert not waiters.reserve(7, 1)  # reservations end with the wake-up, and so does the room


async def test_registrations_share_one_round_trip_and_expire_on_the_local_clock() -> None:
    now = [100.0]
    calls: list[int] = []

    async def register(queue_id: int) -> None:
        calls.append(queue_id)
        await asyncio.sleep(0.01)

    registrations = Registrations(register, clock=lambda: now[0])
    assert not registrations.covers(1, 1.0)

    await asyncio.gather(*(registrations.ensure(1) for _ in range(5)))

    assert calls == [1]
    assert registrations.covers(1, 1.0) and not registrations.due(1)
    now[0] += REGISTRATION_TTL_S - 1.5
    assert registrations.due(1) and not registrations.covers(1, 1.0)
    assert registrations.forget() and not registrations.covers(1, 0.0)


async def wake_rows(store: PostgresStore, queue_id: int) -> bool:
    async def probe(conn: object) -> bool:
        sql = store._sql
        params = {"channel": "loosely_probe", "q": queue_id, "wake_key": sql.wake_key, "node": sql.node}
        cur = await conn.execute(sql.wake, params)  # type: ignore[attr-defined]
        return bool((await cur.fetchone())[0])

    return await store._run(probe)  # type: ignore[arg-type]


async def notify_waiters(store: PostgresStore, queue_id: int) -> bool:
    """Run the wake-up a send runs, on ``store``'s pool and channel (no local wake-up follows)."""

    async def wake(conn: object) -> bool:
        sql = store._sql
        params = {"channel": store._channel, "q": queue_id, "wake_key": sql.wake_key, "node": sql.node}
        cur = await conn.execute(sql.wake, params)  # type: ignore[attr-defined]
        return bool((await cur.fetchone())[0])

    return await store._run(wake)  # type: ignore[arg-type]


async def test_sends_notify_only_while_a_node_waits(open_node: NodeFactory) -> None:
    waiting, sending = await open_node(wake_fallback_s=30.0), await open_node()
    queue = await make_queue(sending)
    assert not await wake_rows(sending, queue.id)  # nobody waits: a send would not notify

    assert (await claim(waiting, queue)).messages == []
    await waiting.wait_for_messages(queue.id, 5.0)  # registers, then returns for a fresh claim
    assert await wake_rows(sending, queue.id)
    parked = asyncio.create_task(waiting.wait_for_messages(queue.id, 30.0))
    await asyncio.sleep(0.05)
    await send(sending, queue, "wake up")
    await asyncio.wait_for(parked, 2.0)

    await waiting.close()  # a node that leaves deletes its registrations
    assert not await wake_rows(sending, queue.id)
    assert (await claim(sending, queue, now_ms=T0)).messages


async def long_poll(node: PostgresStore, queue: QueueRecord, n: int = 10) -> ClaimResult:
    """What ReceiveMessage with a wait does: claim, and while nothing comes, wait (within the registration)."""
    while True:
        result = await claim(node, queue, n)
        if result.messages:
            return result
        await node.wait_for_messages(queue.id, 5.0)


async def parked(node: PostgresStore, queue: QueueRecord, n: int = 10) -> asyncio.Task[ClaimResult]:
    task = asyncio.create_task(long_poll(node, queue, n))
    await until(lambda: node._waiters.waiting(queue.id) > 0)
    return task


async def until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Poll ``condition`` (a notification's arrival, a task reaching its wait) up to a generous deadline."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def notified_only_by_marker(node: PostgresStore, marker_from: PostgresStore, queue: QueueRecord) -> bool:
    """Whether ``node`` got no wake-up for ``queue`` before a marker notification sent now.

    Notifications arrive in commit order: once the marker's has arrived, any earlier one has too.
    """
    before = node._waiters.epoch(queue.id)
    assert await notify_waiters(marker_from, queue.id)
    await until(lambda: node._waiters.epoch(queue.id) != before)
    return node._waiters.epoch(queue.id) == before + 1


async def test_a_send_its_own_node_s_waiters_can_take_does_not_wake_other_nodes(open_node: NodeFactory) -> None:
    sending, other = await open_node(wake_fallback_s=30.0), await open_node(wake_fallback_s=30.0)
    queue = await make_queue(sending)
    for node in (sending, other):
        assert (await claim(node, queue)).messages == []
        await node.wait_for_messages(queue.id, 5.0)  # registers, then returns for a fresh claim
    local, remote = await parked(sending, queue), await parked(other, queue)
    epoch = other._waiters.epoch(queue.id)

    await send(sending, queue, *[f"m{i}" for i in range(10)])

    assert len((await asyncio.wait_for(local, 5.0)).messages) == 10
    assert other._waiters.epoch(queue.id) == epoch
    assert await notified_only_by_marker(other, sending, queue)  # the send did not notify
    assert not remote.done()
    remote.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await remote


async def test_a_send_its_own_node_s_waiters_cannot_all_take_wakes_other_nodes(open_node: NodeFactory) -> None:
    sending, other = await open_node(wake_fallback_s=30.0), await open_node(wake_fallback_s=30.0)
    queue = await make_queue(sending)
    for node in (sending, other):
        assert (await claim(node, queue)).messages == []
        await node.wait_for_messages(queue.id, 5.0)  # registers, then returns for a fresh claim
    local, remote = await parked(sending, queue, n=1), await parked(other, queue)

    await send(sending, queue, "a", "b", "c")  # one local waiter wants one message: the others must hear

    assert len((await asyncio.wait_for(remote, 5.0)).messages) >= 2  # notified (the fallback is 30 s)
    local.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await local


async def test_a_node_s_own_registration_does_not_make_its_writes_notify(open_node: NodeFactory) -> None:
    waiting, other = await open_node(wake_fallback_s=30.0), await open_node()
    queue = await make_queue(waiting)
    assert (await claim(waiting, queue)).messages == []
    await waiting.wait_for_messages(queue.id, 5.0)  # registers, then returns for a fresh claim

    assert not await wake_rows(waiting, queue.id)  # it wakes its own waiters after the commit
    assert await wake_rows(other, queue.id)


async def notifications_before_marker(listener: psycopg.AsyncConnection[object]) -> list[str]:
    """The payloads ``listener`` hears until a "marker" notification (they arrive in commit order)."""
    heard: list[str] = []
    while True:
        async for notification in listener.notifies(timeout=1.0):
            if notification.payload == "marker":
                return heard
            heard.append(notification.payload)


async def test_a_node_alone_never_notifies_although_its_receivers_wait(
    open_node: NodeFactory, postgres_url: str
) -> None:
    node = await open_node(wake_fallback_s=30.0)  # only a wake-up can end these waits in time
    queue, fifo = await make_queue(node, "q"), await make_queue(node, "q.fifo")
    source, dlq = await make_queue(node, "src"), await make_queue(node, "dlq")
    await send(node, source, "poison")
    await claim(node, source)  # received once: the next receive moves it to the dead-letter queue
    for registered in (queue, fifo, source, dlq):
        assert (await claim(node, registered)).messages == []
        await node.wait_for_messages(registered.id, 5.0)  # registers, then returns for a fresh claim

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener:
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(node._channel)))
        heard = asyncio.create_task(notifications_before_marker(listener))

        # Standard sends: more than the parked receiver takes, then with nobody parked (still registered).
        receiver = await parked(node, queue, n=1)
        await send(node, queue, "a", "b", "c")
        assert len((await asyncio.wait_for(receiver, 5.0)).messages) == 1
        await send(node, queue, "d")
        # A FIFO send.
        receiver = await parked(node, fifo)
        await send(node, fifo, "x", group_id="g", dedup_key="k")
        assert len((await asyncio.wait_for(receiver, 5.0)).messages) == 1
        # A visibility change that makes a message visible now.
        [first, *_] = (await claim(node, queue)).messages
        receiver = await parked(node, queue)
        await node.change_visibility(queue.id, [(MessageRef(first.row_id, first.receive_count), T0)], T0)
        assert len((await asyncio.wait_for(receiver, 5.0)).messages) == 1
        # A dead-letter move, then a redrive back to the source.
        epoch = node._waiters.epoch(dlq.id)
        target = DeadLetterTarget(queue_id=dlq.id, max_receive_count=1, source_arn=source.key.arn)
        await claim(node, source, now_ms=T0 + VISIBILITY_MS, dead_letter=target)
        assert node._waiters.epoch(dlq.id) > epoch  # woken locally
        epoch = node._waiters.epoch(source.id)
        assert await node.move_messages(dlq.id, None, 10, T0 + VISIBILITY_MS) == 1
        assert node._waiters.epoch(source.id) > epoch

        await node._run(lambda conn: conn.execute("SELECT pg_notify(%s, 'marker')", (node._channel,)))
        assert await asyncio.wait_for(heard, 10.0) == []


async def test_nodes_of_the_previous_version_still_notify_for_every_registration(open_node: NodeFactory) -> None:
    # During a rolling upgrade older nodes call wake_waiters (migration 0002), which must keep working.
    waiting = await open_node(wake_fallback_s=30.0)
    queue = await make_queue(waiting)
    assert (await claim(waiting, queue)).messages == []
    await waiting.wait_for_messages(queue.id, 5.0)  # registers, then returns for a fresh claim

    async def old_wake(conn: object) -> bool:
        statement = f'SELECT "{waiting.schema}".wake_waiters(%s, %s, %s)'
        cur = await conn.execute(statement, ("loosely_probe", queue.id, waiting._sql.wake_key))  # type: ignore[attr-defined]
        return bool((await cur.fetchone())[0])

    assert await waiting._run(old_wake)  # type: ignore[arg-type]


async def test_a_fan_out_to_queues_its_own_node_waits_on_does_not_notify(
    open_node: NodeFactory, postgres_url: str
) -> None:
    node = await open_node(wake_fallback_s=30.0)
    queue, fifo = await make_queue(node, "fan"), await make_queue(node, "fan.fifo")
    for registered in (queue, fifo):
        assert (await claim(node, registered)).messages == []
        await node.wait_for_messages(registered.id, 5.0)  # registers, then returns for a fresh claim
    publication = NewPublication("arn:aws:sns:us-east-1:123456789012:t", "p-1", "{}")
    [published] = await node.add_publications([publication], T0, DEDUP_WINDOW_MS)

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener:
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(node._channel)))
        heard = asyncio.create_task(notifications_before_marker(listener))
        receiver = await parked(node, queue, n=1)

        fanned = [(queue.id, msg("a")), (queue.id, msg("b")), (fifo.id, msg("c", group_id="g", dedup_key="k"))]
        await node.complete_publication(published.sequence, fanned, [], T0, DEDUP_WINDOW_MS)

        assert len((await asyncio.wait_for(receiver, 5.0)).messages) == 1  # woken locally
        await node._run(lambda conn: conn.execute("SELECT pg_notify(%s, 'marker')", (node._channel,)))
        assert await asyncio.wait_for(heard, 10.0) == []


async def outbox_registered(node: PostgresStore) -> None:
    """Register the node's outbox workers as waiting (as an idle fan-out does)."""
    await node.claim_publications("probe", T0, 1_000, 10)
    await node.wait_for_outbox(5.0)  # registers, then returns for a fresh claim


async def test_outbox_writes_notify_no_worker_of_their_own_node(open_node: NodeFactory, postgres_url: str) -> None:
    node = await open_node(wake_fallback_s=30.0)
    await outbox_registered(node)
    topic = "arn:aws:sns:us-east-1:123456789012:t"

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener:
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(node._channel)))
        heard = asyncio.create_task(notifications_before_marker(listener))
        epoch = node._waiters.epoch(0)

        # A standard topic's publications (one statement), then a FIFO topic's (a transaction).
        [plain] = await node.add_publications([NewPublication(topic, "p-1", "{}")], T0, DEDUP_WINDOW_MS)
        ordered = NewPublication(f"{topic}.fifo", "p-2", "{}", ordering_key=f"{topic}.fifo", dedup_key="d")
        await node.add_publications([ordered], T0, DEDUP_WINDOW_MS)
        # Fan-out that leaves a push delivery, whose retry and hand-back wake the workers again.
        claimed = await node.claim_publications("worker", T0, 60_000, 10)
        assert plain.sequence in {p.id for p in claimed}
        await node.release_publications("worker", [p.id for p in claimed if p.id != plain.sequence])
        await node.complete_publication(plain.sequence, [], [NewDelivery(f"{topic}:s", "{}", T0)], T0, DEDUP_WINDOW_MS)
        [delivery] = await node.claim_deliveries("worker", T0, 60_000, 10)
        await node.retry_delivery(delivery.id, T0, "refused")
        [delivery] = await node.claim_deliveries("worker", T0, 60_000, 10)
        await node.release_delivery(delivery.id, T0)

        assert node._waiters.epoch(0) > epoch  # its own workers were woken, locally
        await node._run(lambda conn: conn.execute("SELECT pg_notify(%s, 'marker')", (node._channel,)))
        assert await asyncio.wait_for(heard, 10.0) == []


async def test_outbox_writes_notify_the_workers_of_other_nodes(open_node: NodeFactory, postgres_url: str) -> None:
    publisher, idle = await open_node(), await open_node(wake_fallback_s=30.0)
    await outbox_registered(idle)

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener:
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(idle._channel)))
        heard = asyncio.create_task(notifications_before_marker(listener))
        publication = NewPublication("arn:aws:sns:us-east-1:123456789012:t", "p-1", "{}")
        await publisher.add_publications([publication], T0, DEDUP_WINDOW_MS)
        await publisher._run(lambda conn: conn.execute("SELECT pg_notify(%s, 'marker')", (idle._channel,)))
        assert await asyncio.wait_for(heard, 10.0) == ["0"]
