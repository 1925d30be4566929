"""Notify only while someone waits: URL settings, local wake-up bookkeeping, and the database side."""

from __future__ import annotations

import asyncio

import pytest

from contract.helpers import T0, claim, make_queue, send
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
        cur = await conn.execute(sql.wake, {"channel": "loosely_probe", "q": queue_id, "wake_key": sql.wake_key})  # type: ignore[attr-defined]
        return bool((await cur.fetchone())[0])

    return await store._run(probe)  # type: ignore[arg-type]


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
