"""Contract: the publication outbox and push deliveries (`OutboxStore`), on every backend."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from contract.conftest import Harness, skip_or_fail
from contract.helpers import DEDUP_WINDOW_MS, T0, bodies, claim, make_queue, msg
from loosely.core.documents import (
    Delivery,
    DeliveryState,
    DocumentGuard,
    FanOutResult,
    NewDelivery,
    NewPublication,
    Publication,
)
from loosely.core.errors import ConcurrentUpdate, QueuesGone
from loosely.core.ports import DocumentStore, OutboxStore, QueueStore
from loosely.core.queues.models import NewMessage, QueueCounts
from loosely.storage.sqlite import messages as sqlite_messages

LEASE_MS = 60_000
TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
FIFO_TOPIC = "arn:aws:sns:us-east-1:123456789012:t.fifo"
SUB = TOPIC + ":sub-1"


class Store(QueueStore, OutboxStore):  # type: ignore[misc]
    """What these tests use: one store keeps queues and the outbox."""


@pytest.fixture
def outbox(store: QueueStore) -> Store:
    if not isinstance(store, OutboxStore):
        skip_or_fail(f"{type(store).__name__} does not keep an outbox yet")
    return store  # type: ignore[return-value]


def pub(message_id: str, topic: str = TOPIC, *, ordered: bool = False, dedup: str | None = None) -> NewPublication:
    return NewPublication(
        topic_arn=topic,
        message_id=message_id,
        payload=f'{{"m":"{message_id}"}}',
        ordering_key=topic if ordered else None,
        dedup_key=dedup,
    )


def push(payload: str = "p", due_ms: int = T0, sub: str = SUB) -> NewDelivery:
    return NewDelivery(subscription_arn=sub, payload=payload, next_attempt_ms=due_ms)


def ids(publications: list[Publication]) -> list[str]:
    return [p.message_id for p in publications]


async def add(outbox: OutboxStore, *publications: NewPublication, now_ms: int = T0) -> list[int]:
    outcomes = await outbox.add_publications(list(publications), now_ms, DEDUP_WINDOW_MS)
    return [o.sequence for o in outcomes]


async def take(outbox: OutboxStore, owner: str = "a", now_ms: int = T0, limit: int = 10) -> list[Publication]:
    return await outbox.claim_publications(owner, now_ms, LEASE_MS, limit)


async def deliveries_for(outbox: OutboxStore, *pushes: NewDelivery, now_ms: int = T0) -> None:
    """Record deliveries the way a fan-out does: through a publication's completion."""
    [seq] = await add(outbox, pub(f"carrier-{time.monotonic_ns()}"), now_ms=now_ms)
    await outbox.complete_publication(seq, [], list(pushes), now_ms, DEDUP_WINDOW_MS)


async def take_deliveries(outbox: OutboxStore, owner: str = "a", now_ms: int = T0, limit: int = 10) -> list[Delivery]:
    return await outbox.claim_deliveries(owner, now_ms, LEASE_MS, limit)


# ---- publications ----


async def test_add_then_claim_returns_publications_oldest_first(outbox: Store) -> None:
    seqs = await add(outbox, pub("m1"), pub("m2", topic=FIFO_TOPIC), pub("m3"))

    claimed = await take(outbox, now_ms=T0 + 1)

    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert claimed == [
        Publication(seqs[0], TOPIC, "m1", '{"m":"m1"}', T0, seqs[0]),
        Publication(seqs[1], FIFO_TOPIC, "m2", '{"m":"m2"}', T0, seqs[1]),
        Publication(seqs[2], TOPIC, "m3", '{"m":"m3"}', T0, seqs[2]),
    ]


async def test_add_empty_batch_returns_nothing(outbox: Store) -> None:
    assert await outbox.add_publications([], T0, DEDUP_WINDOW_MS) == []
    assert await take(outbox) == []


async def test_add_sequences_keep_growing_across_batches(outbox: Store) -> None:
    first = await add(outbox, pub("m1"), pub("m2"))
    await outbox.complete_publication(first[1], [], [], T0, DEDUP_WINDOW_MS)
    second = await add(outbox, pub("m3"))

    assert second[0] > first[1]


async def test_add_duplicate_within_window_names_the_original(outbox: Store) -> None:
    [original] = await outbox.add_publications([pub("m1", dedup="d")], T0, DEDUP_WINDOW_MS)

    [dup, other_topic, fresh] = await outbox.add_publications(
        [pub("m2", dedup="d"), pub("m3", topic=FIFO_TOPIC, dedup="d"), pub("m4", dedup="e")], T0 + 10, DEDUP_WINDOW_MS
    )

    assert dup.duplicate and (dup.message_id, dup.sequence) == ("m1", original.sequence)
    assert not other_topic.duplicate and not fresh.duplicate
    assert ids(await take(outbox, now_ms=T0 + 10)) == ["m1", "m3", "m4"]


async def test_add_duplicate_within_one_batch_is_suppressed(outbox: Store) -> None:
    outcomes = await outbox.add_publications([pub("m1", dedup="d"), pub("m2", dedup="d")], T0, DEDUP_WINDOW_MS)

    assert [o.duplicate for o in outcomes] == [False, True]
    assert outcomes[1].message_id == "m1"
    assert ids(await take(outbox)) == ["m1"]


async def test_add_duplicate_after_completion_is_still_suppressed(outbox: Store) -> None:
    [seq] = await add(outbox, pub("m1", dedup="d"))
    await outbox.complete_publication(seq, [], [], T0 + 1, DEDUP_WINDOW_MS)

    [dup] = await outbox.add_publications([pub("m2", dedup="d")], T0 + 2, DEDUP_WINDOW_MS)

    assert dup.duplicate and dup.sequence == seq


async def test_add_same_dedup_key_after_window_is_new(outbox: Store) -> None:
    await add(outbox, pub("m1", dedup="d"))

    [again] = await outbox.add_publications([pub("m2", dedup="d")], T0 + DEDUP_WINDOW_MS, DEDUP_WINDOW_MS)

    assert not again.duplicate and again.message_id == "m2"


async def test_claim_respects_limit_and_lease(outbox: Store) -> None:
    await add(outbox, pub("m1"), pub("m2"), pub("m3"))

    first = await take(outbox, "a", limit=2)
    second = await take(outbox, "b", now_ms=T0 + LEASE_MS - 1)
    after_lease = await take(outbox, "b", now_ms=T0 + LEASE_MS)

    assert ids(first) == ["m1", "m2"]
    assert ids(second) == ["m3"]
    assert ids(after_lease) == ["m1", "m2"]


async def test_claim_ordering_key_hands_out_one_batch_at_a_time(outbox: Store) -> None:
    await add(outbox, pub("f1", FIFO_TOPIC, ordered=True), pub("s1"), pub("f2", FIFO_TOPIC, ordered=True))
    await add(outbox, pub("f3", FIFO_TOPIC, ordered=True), pub("s2"), now_ms=T0 + 1)

    first = await take(outbox, "a", now_ms=T0 + 1, limit=1)
    meanwhile = await take(outbox, "b", now_ms=T0 + 2)

    assert ids(first) == ["f1"]
    assert ids(meanwhile) == ["s1", "s2"]  # nothing of the key while f1 is leased
    await outbox.complete_publication(first[0].id, [], [], T0 + 3, DEDUP_WINDOW_MS)
    assert ids(await take(outbox, "b", now_ms=T0 + 3)) == ["f2", "f3"]
    assert await take(outbox, "c", now_ms=T0 + 4) == []


async def test_claim_ordering_key_batch_is_consecutive_and_in_order(outbox: Store) -> None:
    await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(5)), pub("s"))

    batch = await take(outbox, "a", limit=3)

    assert ids(batch) == ["f0", "f1", "f2"]
    assert ids(await take(outbox, "b")) == ["s"]


async def test_claim_ordering_key_expired_lease_starts_again_from_the_first(outbox: Store) -> None:
    await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(3)))
    await take(outbox, "a", limit=2)

    again = await take(outbox, "b", now_ms=T0 + LEASE_MS)

    assert ids(again) == ["f0", "f1", "f2"]


async def test_claim_ordering_key_next_waits_for_the_rest_of_its_batch(outbox: Store) -> None:
    await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(3)))
    f0, _f1 = await take(outbox, "a", limit=2)

    await outbox.complete_publication(f0.id, [], [], T0 + 1, DEDUP_WINDOW_MS)

    assert await take(outbox, "b", now_ms=T0 + 1) == []  # f1 is still leased to a
    assert ids(await take(outbox, "b", now_ms=T0 + LEASE_MS)) == ["f1", "f2"]


async def test_release_hands_claimed_publications_back_at_once(outbox: Store) -> None:
    await add(outbox, pub("m1"), pub("m2"), pub("m3"))
    m1, m2, _m3 = await take(outbox, "a")

    await outbox.release_publications("a", [m1.id, m2.id])

    assert ids(await take(outbox, "b", now_ms=T0 + 1)) == ["m1", "m2"]  # m3 stays leased to a


async def test_release_leaves_publications_leased_to_another_owner(outbox: Store) -> None:
    await add(outbox, pub("m1"))
    [m1] = await take(outbox, "a")
    [again] = await take(outbox, "b", now_ms=T0 + LEASE_MS)  # a's lease ran out; b took it over

    await outbox.release_publications("a", [m1.id])

    assert again.id == m1.id
    assert await take(outbox, "c", now_ms=T0 + LEASE_MS + 1) == []


async def test_release_of_a_fifo_batch_hands_it_out_again_in_order(outbox: Store) -> None:
    await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(3)))
    batch = await take(outbox, "a")

    await outbox.release_publications("a", [p.id for p in batch])

    assert ids(await take(outbox, "b", now_ms=T0 + 1)) == ["f0", "f1", "f2"]


async def test_release_of_unknown_or_retired_publications_does_nothing(outbox: Store) -> None:
    [seq] = await add(outbox, pub("m1"))
    await take(outbox, "a")
    await outbox.complete_publication(seq, [], [], T0, DEDUP_WINDOW_MS)

    await outbox.release_publications("a", [seq, 999_999])
    await outbox.release_publications("a", [])

    assert await take(outbox, "b", now_ms=T0 + 1) == []


async def test_release_wakes_outbox_waiters(outbox: Store) -> None:
    await add(outbox, pub("m1"))
    [m1] = await take(outbox, "a")
    assert await take(outbox, "b") == []
    waiter = asyncio.create_task(outbox.wait_for_outbox(30))
    await asyncio.sleep(0.05)

    await outbox.release_publications("a", [m1.id])

    assert await _returns_within(waiter, 5) < 3


async def test_claim_ordering_keys_are_independent(outbox: Store) -> None:
    other = FIFO_TOPIC.replace("t.fifo", "u.fifo")
    await add(outbox, pub("t1", FIFO_TOPIC, ordered=True), pub("u1", other, ordered=True))
    await add(outbox, pub("t2", FIFO_TOPIC, ordered=True), pub("u2", other, ordered=True))

    first = await take(outbox, "a", limit=1)

    assert ids(first) == ["t1"]
    assert ids(await take(outbox, "b")) == ["u1", "u2"]


async def test_complete_sends_messages_records_deliveries_and_retires(outbox: Store) -> None:
    queue = await make_queue(outbox, "fan")
    fifo = await make_queue(outbox, "fan.fifo")
    [seq] = await add(outbox, pub("m1"))
    [publication] = await take(outbox)
    sends = [
        (queue.id, msg("to-standard")),
        (fifo.id, msg("g1", group_id="g", dedup_key="k1")),
        (fifo.id, msg("g2", group_id="g", dedup_key="k2")),
    ]

    await outbox.complete_publication(publication.id, sends, [push("a"), push("b", T0 + 500)], T0 + 1, DEDUP_WINDOW_MS)

    assert publication.id == seq
    assert bodies(await claim(outbox, queue, now_ms=T0 + 1)) == ["to-standard"]
    assert bodies(await claim(outbox, fifo, now_ms=T0 + 1)) == ["g1", "g2"]
    assert [d.payload for d in await take_deliveries(outbox, now_ms=T0 + 500)] == ["a", "b"]
    assert await take(outbox, now_ms=T0 + LEASE_MS) == []  # retired for good


async def test_complete_applies_fifo_dedup_against_earlier_sends(outbox: Store) -> None:
    fifo = await make_queue(outbox, "dd.fifo")
    [first] = await outbox.send_messages(fifo.id, [msg("direct", group_id="g", dedup_key="k")], T0, DEDUP_WINDOW_MS)
    [seq] = await add(outbox, pub("m1"))

    await outbox.complete_publication(
        seq, [(fifo.id, msg("fanned", group_id="g", dedup_key="k"))], [], T0 + 1, DEDUP_WINDOW_MS
    )

    result = await claim(outbox, fifo, now_ms=T0 + 1)
    assert [(m.body, m.message_id) for m in result.messages] == [("direct", first.message_id)]


async def test_complete_stamps_expiry_from_the_queue_retention(outbox: Store) -> None:
    queue = await make_queue(outbox, "short", retention_ms=60_000)
    [seq] = await add(outbox, pub("m1"))

    await outbox.complete_publication(seq, [(queue.id, msg("x", sent_ms=T0))], [], T0, DEDUP_WINDOW_MS)

    assert await outbox.count_messages(queue.id, T0 + 59_999) == QueueCounts(1, 0, 0)
    assert await outbox.count_messages(queue.id, T0 + 60_000) == QueueCounts(0, 0, 0)
    assert await outbox.expire_messages(T0 + 60_000, 10) == 1


async def test_complete_refuses_queues_that_no_longer_exist_and_changes_nothing(outbox: Store) -> None:
    kept = await make_queue(outbox, "kept")
    gone = await make_queue(outbox, "gone")
    await outbox.delete_queue(gone.id, T0)
    [seq] = await add(outbox, pub("m1"))

    with pytest.raises(QueuesGone) as raised:
        await outbox.complete_publication(
            seq,
            [(gone.id, msg("lost")), (kept.id, msg("kept")), (999_999, msg("never"))],
            [push()],
            T0,
            DEDUP_WINDOW_MS,
        )

    assert raised.value.queue_ids == {gone.id, 999_999}
    assert (await claim(outbox, kept)).messages == []
    assert await take_deliveries(outbox) == []
    assert ids(await take(outbox)) == ["m1"]


async def test_complete_many_refuses_queues_that_no_longer_exist_and_changes_nothing(outbox: Store) -> None:
    kept = await make_queue(outbox, "kept")
    gone = await make_queue(outbox, "gone")
    await outbox.delete_queue(gone.id, T0)
    seqs = await add(outbox, pub("m1"), pub("m2"))

    with pytest.raises(QueuesGone) as raised:
        await outbox.complete_publications(
            [FanOutResult(seqs[0], [(kept.id, msg("kept"))], [push()]), FanOutResult(seqs[1], [(gone.id, msg("x"))])],
            T0,
            DEDUP_WINDOW_MS,
        )

    assert raised.value.queue_ids == {gone.id}
    assert (await claim(outbox, kept)).messages == []
    assert await take_deliveries(outbox) == []
    assert ids(await take(outbox)) == ["m1", "m2"]


async def test_complete_of_a_retired_publication_does_nothing(outbox: Store) -> None:
    queue = await make_queue(outbox)
    [seq] = await add(outbox, pub("m1"))
    await outbox.complete_publication(seq, [(queue.id, msg("once"))], [push("once")], T0, DEDUP_WINDOW_MS)

    await outbox.complete_publication(seq, [(queue.id, msg("twice"))], [push("twice")], T0, DEDUP_WINDOW_MS)

    assert bodies(await claim(outbox, queue)) == ["once"]
    assert [d.payload for d in await take_deliveries(outbox)] == ["once"]


async def test_complete_is_atomic_when_a_part_fails(outbox: Store) -> None:
    queue = await make_queue(outbox)
    [seq] = await add(outbox, pub("m1"))
    broken = NewDelivery(subscription_arn=SUB, payload=None, next_attempt_ms=T0)  # type: ignore[arg-type]

    with pytest.raises(Exception):  # noqa: B017 - each backend's own error for a NULL column; only atomicity counts
        await outbox.complete_publication(seq, [(queue.id, msg("x"))], [push(), broken], T0, DEDUP_WINDOW_MS)

    assert (await claim(outbox, queue)).messages == []
    assert await take_deliveries(outbox) == []
    assert ids(await take(outbox)) == ["m1"]


async def test_complete_wakes_receivers_of_the_queue(outbox: Store) -> None:
    queue = await make_queue(outbox)
    assert (await claim(outbox, queue)).messages == []
    waiter = asyncio.create_task(outbox.wait_for_messages(queue.id, 10))
    await asyncio.sleep(0.05)
    [seq] = await add(outbox, pub("m1"))

    started = time.monotonic()
    await outbox.complete_publication(seq, [(queue.id, msg("x"))], [], T0, DEDUP_WINDOW_MS)
    await asyncio.wait_for(waiter, 5)

    assert time.monotonic() - started < 3


# ---- guarded by a document ----


@pytest.mark.parametrize("kind", ["plain", "ordered", "deduplicated"])
async def test_add_guarded_by_a_document_records_only_while_it_is_stored_as_given(outbox: Store, kind: str) -> None:
    if not isinstance(outbox, DocumentStore):
        skip_or_fail(f"{type(outbox).__name__} does not keep documents yet")
    docs: DocumentStore = outbox

    def publication(message_id: str) -> NewPublication:
        if kind == "ordered":
            return pub(message_id, FIFO_TOPIC, ordered=True)
        return pub(message_id, dedup=message_id if kind == "deduplicated" else None)

    await docs.put_document("topic", TOPIC, '{"v":1}', T0)
    current = DocumentGuard("topic", TOPIC, '{"v":1}')

    [ok] = await outbox.add_publications([publication("m1")], T0, DEDUP_WINDOW_MS, current)
    await docs.put_document("topic", TOPIC, '{"v":2}', T0)
    with pytest.raises(ConcurrentUpdate):
        await outbox.add_publications([publication("m2")], T0, DEDUP_WINDOW_MS, current)
    await docs.delete_document("topic", TOPIC)
    with pytest.raises(ConcurrentUpdate):
        await outbox.add_publications(
            [publication("m3")], T0, DEDUP_WINDOW_MS, DocumentGuard("topic", TOPIC, '{"v":2}')
        )

    assert not ok.duplicate
    assert ids(await take(outbox)) == ["m1"]


# ---- finishing many deliveries at once ----


async def test_finish_many_ends_each_delivery_and_skips_those_already_gone(outbox: Store) -> None:
    await deliveries_for(outbox, push("a"), push("b"), push("c"))
    a, b, c = await take_deliveries(outbox)
    await outbox.finish_delivery(a.id, DeliveryState.DELIVERED, T0)

    await outbox.finish_deliveries([a.id, b.id, c.id], DeliveryState.DELIVERED, T0 + 1)

    assert await take_deliveries(outbox, now_ms=T0 + LEASE_MS + 1) == []


async def test_finish_many_needs_a_final_state(outbox: Store) -> None:
    await deliveries_for(outbox, push("a"))
    [a] = await take_deliveries(outbox)

    with pytest.raises(ValueError):
        await outbox.finish_deliveries([a.id], DeliveryState.PENDING, T0)

    assert [d.id for d in await take_deliveries(outbox, now_ms=T0 + LEASE_MS + 1)] == [a.id]


# ---- completing many publications at once ----


async def test_complete_many_sends_each_queue_its_messages_in_publication_order(outbox: Store) -> None:
    queue = await make_queue(outbox, "many")
    fifo = await make_queue(outbox, "many.fifo")
    seqs = await add(outbox, pub("f1", FIFO_TOPIC, ordered=True), pub("f2", FIFO_TOPIC, ordered=True), pub("s1"))
    claimed = await take(outbox)
    assert [p.id for p in claimed] == seqs

    await outbox.complete_publications(
        [
            FanOutResult(seqs[0], [(fifo.id, msg("f1", group_id="g", dedup_key="k1")), (queue.id, msg("f1"))]),
            FanOutResult(seqs[1], [(fifo.id, msg("f2", group_id="g", dedup_key="k2")), (queue.id, msg("f2"))]),
            FanOutResult(seqs[2], [(queue.id, msg("s1"))], [push("d-s1")]),
        ],
        T0 + 1,
        DEDUP_WINDOW_MS,
    )

    assert bodies(await claim(outbox, fifo, now_ms=T0 + 1)) == ["f1", "f2"]
    assert bodies(await claim(outbox, queue, now_ms=T0 + 1)) == ["f1", "f2", "s1"]
    assert [d.payload for d in await take_deliveries(outbox, now_ms=T0 + 1)] == ["d-s1"]
    assert await take(outbox, now_ms=T0 + LEASE_MS) == []


@pytest.mark.parametrize("statements", ["usual", "small"])
async def test_complete_many_across_queues_stores_each_queue_its_own_messages(
    outbox: Store, monkeypatch: pytest.MonkeyPatch, statements: str
) -> None:
    if statements == "small":  # SQLite's inserts and count updates split into many statements (no-op elsewhere)
        monkeypatch.setattr(sqlite_messages, "_INSERT_CHUNK", 3)
        monkeypatch.setattr(sqlite_messages, "_COUNT_IDS", 2)
    short = await make_queue(outbox, "short", retention_ms=60_000)
    longer = await make_queue(outbox, "longer")
    odd = await make_queue(outbox, "odd")
    deduplicated = await make_queue(outbox, "deduplicated")
    fifo = await make_queue(outbox, "across.fifo")
    others = [await make_queue(outbox, f"other-{i}") for i in range(3)]
    seqs = await add(outbox, *(pub(f"m{i}") for i in range(5)))
    await take(outbox)
    sent: dict[int, list[NewMessage]] = {}
    results = []
    for i, seq in enumerate(seqs):
        pairs = [(q.id, msg(f"m{i}-{q.key.name}")) for q in (short, longer, *others)]
        if i % 2:
            pairs.append((odd.id, msg(f"m{i}-odd")))
        pairs.append((deduplicated.id, msg(f"m{i}-dd", dedup_key=f"k{i % 3}")))
        pairs.append((fifo.id, msg(f"m{i}-fifo", group_id="g", dedup_key=f"k{i % 3}")))
        for queue_id, message in pairs:
            sent.setdefault(queue_id, []).append(message)
        results.append(FanOutResult(seq, pairs))

    await outbox.complete_publications(results, T0, DEDUP_WINDOW_MS)

    for queue in (short, longer, odd, *others):
        expected = sent[queue.id]
        assert await outbox.count_messages(queue.id, T0) == QueueCounts(len(expected), 0, 0)
        got = (await claim(outbox, queue, now_ms=T0)).messages
        assert [(m.message_id, m.body, m.meta) for m in got] == [(m.message_id, m.body, m.meta) for m in expected]
        assert [m.row_id for m in got] == sorted({m.row_id for m in got})
    assert await outbox.count_messages(fifo.id, T0) == QueueCounts(3, 0, 0)  # the others repeat a dedup id
    assert bodies(await claim(outbox, fifo, now_ms=T0)) == [m.body for m in sent[fifo.id][:3]]
    # A dedup id on a standard queue: deduplicated or not depending on the backend, but counted as stored.
    counted = await outbox.count_messages(deduplicated.id, T0)
    assert len(bodies(await claim(outbox, deduplicated, now_ms=T0))) == counted.visible >= 3
    assert await outbox.count_messages(short.id, T0 + 60_000) == QueueCounts(0, 0, 0)
    assert await outbox.count_messages(longer.id, T0 + 60_000) == QueueCounts(5, 0, 0)  # claimed, visible again
    assert await outbox.expire_messages(T0 + 60_000, 100) == 5


async def test_complete_many_wakes_receivers_of_every_queue(outbox: Store) -> None:
    queues = [await make_queue(outbox, f"w{i}") for i in range(3)] + [await make_queue(outbox, "w.fifo")]
    for queue in queues:
        assert (await claim(outbox, queue)).messages == []
    waiters = [asyncio.create_task(outbox.wait_for_messages(q.id, 10)) for q in queues]
    await asyncio.sleep(0.05)
    [seq] = await add(outbox, pub("m1"))
    pairs = [(q.id, msg("x", group_id="g", dedup_key="k") if q.key.fifo else msg("x")) for q in queues]

    started = time.monotonic()
    await outbox.complete_publications([FanOutResult(seq, pairs)], T0, DEDUP_WINDOW_MS)
    await asyncio.wait_for(asyncio.gather(*waiters), 5)

    assert time.monotonic() - started < 3


async def test_complete_many_skips_publications_completed_elsewhere(outbox: Store) -> None:
    queue = await make_queue(outbox)
    seqs = await add(outbox, pub("m1"), pub("m2"))
    await outbox.complete_publication(seqs[0], [(queue.id, msg("first"))], [], T0, DEDUP_WINDOW_MS)

    await outbox.complete_publications(
        [
            FanOutResult(seqs[0], [(queue.id, msg("again"))], [push("again")]),
            FanOutResult(seqs[1], [(queue.id, msg("m2"))]),
        ],
        T0,
        DEDUP_WINDOW_MS,
    )

    assert bodies(await claim(outbox, queue)) == ["first", "m2"]
    assert await take_deliveries(outbox) == []
    assert await take(outbox, now_ms=T0 + LEASE_MS) == []


async def test_complete_many_of_part_of_a_fifo_topic_hands_out_the_rest_next(outbox: Store) -> None:
    seqs = await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(4)))
    assert [p.id for p in await take(outbox, limit=2)] == seqs[:2]

    await outbox.complete_publications([FanOutResult(seqs[0]), FanOutResult(seqs[1])], T0, DEDUP_WINDOW_MS)

    assert ids(await take(outbox, "b")) == ["f2", "f3"]


async def test_complete_many_is_atomic_when_a_part_fails(outbox: Store) -> None:
    queue = await make_queue(outbox)
    seqs = await add(outbox, pub("m1"), pub("m2"))
    broken = NewDelivery(subscription_arn=SUB, payload=None, next_attempt_ms=T0)  # type: ignore[arg-type]

    with pytest.raises(Exception):  # noqa: B017 - each backend's own error for a NULL column; only atomicity counts
        await outbox.complete_publications(
            [FanOutResult(seqs[0], [(queue.id, msg("x"))]), FanOutResult(seqs[1], [], [broken])], T0, DEDUP_WINDOW_MS
        )

    assert (await claim(outbox, queue)).messages == []
    assert ids(await take(outbox)) == ["m1", "m2"]


# ---- deliveries ----


async def test_claim_deliveries_only_due_in_due_order(outbox: Store) -> None:
    await deliveries_for(outbox, push("late", T0 + 200), push("now", T0), push("soon", T0 + 100))

    assert [d.payload for d in await take_deliveries(outbox, now_ms=T0 + 150)] == ["now", "soon"]
    [late] = await take_deliveries(outbox, now_ms=T0 + 200)
    assert late == Delivery(late.id, SUB, "late", 0, T0 + 200, T0, None)


async def test_claim_deliveries_respects_limit_and_lease(outbox: Store) -> None:
    await deliveries_for(outbox, push("a"), push("b"), push("c"))

    first = await take_deliveries(outbox, "x", limit=2)
    during = await take_deliveries(outbox, "y", now_ms=T0 + LEASE_MS - 1)
    after = await take_deliveries(outbox, "y", now_ms=T0 + LEASE_MS)

    assert [d.payload for d in first] == ["a", "b"]
    assert [d.payload for d in during] == ["c"]
    assert sorted(d.payload for d in after) == ["a", "b"]
    assert all(d.attempts == 0 for d in after)  # an expired lease is not an attempt


async def test_retry_counts_the_attempt_and_schedules_the_next(outbox: Store) -> None:
    await deliveries_for(outbox, push("a"))
    [d] = await take_deliveries(outbox)

    await outbox.retry_delivery(d.id, T0 + 1_000, "HTTP 500")

    assert await take_deliveries(outbox, now_ms=T0 + 999) == []
    [again] = await take_deliveries(outbox, now_ms=T0 + 1_000)
    assert (again.id, again.attempts, again.next_attempt_ms, again.last_error) == (d.id, 1, T0 + 1_000, "HTTP 500")
    await outbox.retry_delivery(d.id, T0 + 3_000, None)
    [third] = await take_deliveries(outbox, now_ms=T0 + 3_000)
    assert (third.attempts, third.last_error) == (2, None)


async def test_release_hands_back_without_counting_an_attempt(outbox: Store) -> None:
    await deliveries_for(outbox, push("a"))
    [d] = await take_deliveries(outbox)
    await outbox.retry_delivery(d.id, T0, "timeout")
    [d] = await take_deliveries(outbox)

    await outbox.release_delivery(d.id, T0 + 10)

    assert await take_deliveries(outbox, now_ms=T0 + 9) == []
    [again] = await take_deliveries(outbox, now_ms=T0 + 10)
    assert (again.attempts, again.last_error, again.next_attempt_ms) == (1, "timeout", T0 + 10)


@pytest.mark.parametrize("state", [DeliveryState.DELIVERED, DeliveryState.FAILED])
async def test_finish_removes_the_delivery_for_good(outbox: Store, state: DeliveryState) -> None:
    await deliveries_for(outbox, push("a"), push("b"))
    a, _b = await take_deliveries(outbox)

    await outbox.finish_delivery(a.id, state, T0 + 1, error=None if state is DeliveryState.DELIVERED else "gone")

    assert [d.payload for d in await take_deliveries(outbox, now_ms=T0 + LEASE_MS)] == ["b"]


async def test_finish_dead_lettered_sends_into_the_queue(outbox: Store) -> None:
    dlq = await make_queue(outbox, "dlq")
    fifo_dlq = await make_queue(outbox, "dlq.fifo")
    await deliveries_for(outbox, push("a"), push("b"))
    a, b = await take_deliveries(outbox)

    await outbox.finish_delivery(a.id, DeliveryState.DEAD_LETTERED, T0, "HTTP 404", dead_letter=(dlq.id, msg("a")))
    await outbox.finish_delivery(
        b.id, DeliveryState.DEAD_LETTERED, T0, "HTTP 404", dead_letter=(fifo_dlq.id, msg("b", group_id="g"))
    )

    assert bodies(await claim(outbox, dlq)) == ["a"]
    assert bodies(await claim(outbox, fifo_dlq)) == ["b"]
    assert await take_deliveries(outbox, now_ms=T0 + LEASE_MS) == []


async def test_finish_dead_lettered_to_a_queue_that_no_longer_exists_changes_nothing(outbox: Store) -> None:
    gone = await make_queue(outbox, "gone")
    await outbox.delete_queue(gone.id, T0)
    await deliveries_for(outbox, push("a"))
    [a] = await take_deliveries(outbox)

    with pytest.raises(QueuesGone) as raised:
        await outbox.finish_delivery(a.id, DeliveryState.DEAD_LETTERED, T0, "x", dead_letter=(gone.id, msg("a")))

    assert raised.value.queue_ids == {gone.id}
    assert [d.id for d in await take_deliveries(outbox, now_ms=T0 + LEASE_MS)] == [a.id]  # still there


async def test_finish_twice_sends_the_dead_letter_once(outbox: Store) -> None:
    dlq = await make_queue(outbox, "dlq")
    await deliveries_for(outbox, push("a"))
    [a] = await take_deliveries(outbox)

    for _ in range(2):
        await outbox.finish_delivery(a.id, DeliveryState.DEAD_LETTERED, T0, "x", dead_letter=(dlq.id, msg("a")))

    assert await outbox.count_messages(dlq.id, T0) == QueueCounts(1, 0, 0)


async def test_finish_rejects_pending_and_misplaced_dead_letters(outbox: Store) -> None:
    dlq = await make_queue(outbox, "dlq")
    await deliveries_for(outbox, push("a"))
    [a] = await take_deliveries(outbox)

    with pytest.raises(ValueError, match="PENDING"):
        await outbox.finish_delivery(a.id, DeliveryState.PENDING, T0)
    with pytest.raises(ValueError, match="DEAD_LETTERED"):
        await outbox.finish_delivery(a.id, DeliveryState.FAILED, T0, dead_letter=(dlq.id, msg("a")))

    assert [d.id for d in await take_deliveries(outbox, now_ms=T0 + LEASE_MS)] == [a.id]


async def test_operations_on_unknown_deliveries_do_nothing(outbox: Store) -> None:
    await outbox.retry_delivery(123_456, T0, "x")
    await outbox.release_delivery(123_456, T0)
    await outbox.finish_delivery(123_456, DeliveryState.DELIVERED, T0)

    assert await take_deliveries(outbox) == []


# ---- waking workers ----


async def _returns_within(coro: object, limit_s: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(coro, limit_s)  # type: ignore[arg-type]
    return time.monotonic() - started


async def test_end_waits_leaves_the_outbox_waiting(outbox: Store) -> None:
    """Ending the long polls at a stop must not make fan-out's waits return at once (a busy loop)."""
    await take(outbox)
    await outbox.wait_for_outbox(0.2)  # may return at once (e.g. after registering as a waiter)
    outbox.end_waits()
    await take(outbox)

    elapsed = await _returns_within(outbox.wait_for_outbox(0.3), 5)

    assert elapsed >= 0.25


async def test_wait_for_outbox_times_out_when_nothing_happens(outbox: Store) -> None:
    await take(outbox)
    await outbox.wait_for_outbox(0.2)  # may return at once (e.g. after registering as a waiter)
    await take(outbox)

    elapsed = await _returns_within(outbox.wait_for_outbox(0.2), 5)

    assert elapsed >= 0.15


async def test_wait_for_outbox_wakes_on_new_publications(outbox: Store) -> None:
    assert await take(outbox) == []
    waiter = asyncio.create_task(outbox.wait_for_outbox(30))
    await asyncio.sleep(0.05)

    await add(outbox, pub("m1"))

    assert await _returns_within(waiter, 5) < 3


async def test_wait_for_outbox_wakes_on_new_deliveries(outbox: Store) -> None:
    [seq] = await add(outbox, pub("m1"))
    await take(outbox)
    await take_deliveries(outbox)
    waiter = asyncio.create_task(outbox.wait_for_outbox(30))
    await asyncio.sleep(0.05)

    await outbox.complete_publication(seq, [], [push()], T0, DEDUP_WINDOW_MS)

    assert await _returns_within(waiter, 5) < 3


async def test_wait_for_outbox_after_a_publication_added_since_the_claim_returns_soon(outbox: Store) -> None:
    assert await take(outbox) == []
    await add(outbox, pub("m1"))  # between the empty claim and the wait: must not be slept through

    assert await _returns_within(outbox.wait_for_outbox(30), 5) < 3


# ---- restart ----


async def test_reopen_keeps_publications_deliveries_and_leases(harness: Harness, outbox: Store) -> None:
    store = outbox
    await store.add_publications(
        [pub("f1", FIFO_TOPIC, ordered=True), pub("f2", FIFO_TOPIC, ordered=True), pub("s1", dedup="d")],
        T0,
        DEDUP_WINDOW_MS,
    )
    [f1] = await store.claim_publications("a", T0, LEASE_MS, 1)
    [carrier] = await store.add_publications([pub("carrier")], T0, DEDUP_WINDOW_MS)
    await store.complete_publication(carrier.sequence, [], [push("d1"), push("d2"), push("d3", T0 + 5)], T0, 1)
    d1, d2 = await store.claim_deliveries("a", T0, LEASE_MS, 2)
    await store.retry_delivery(d2.id, T0 + 10, "HTTP 503")

    reopened = await harness.reopen()
    assert isinstance(reopened, OutboxStore)

    assert ids(await reopened.claim_publications("b", T0 + 1, LEASE_MS, 10)) == ["s1"]  # f1 (and f2) leased
    [dup] = await reopened.add_publications([pub("s2", dedup="d")], T0 + 1, DEDUP_WINDOW_MS)
    assert dup.duplicate and dup.message_id == "s1"
    assert ids(await reopened.claim_publications("b", T0 + LEASE_MS, LEASE_MS, 10)) == ["f1", "f2"]
    due = await reopened.claim_deliveries("b", T0 + 10, LEASE_MS, 10)
    assert [(d.payload, d.attempts, d.last_error) for d in due] == [("d3", 0, None), ("d2", 1, "HTTP 503")]
    [again] = await reopened.claim_deliveries("b", T0 + LEASE_MS, LEASE_MS, 10)
    assert (again.id, again.payload) == (d1.id, "d1")
    assert f1.message_id == "f1"


# ---- concurrency ----


async def test_concurrent_publication_claims_never_share_an_item(outbox: Store) -> None:
    await add(outbox, *(pub(f"m{i}") for i in range(60)))

    batches = await asyncio.gather(*(take(outbox, f"w{i}", limit=7) for i in range(12)))

    got = Counter(p.message_id for batch in batches for p in batch)
    assert sum(got.values()) == 60
    assert max(got.values()) == 1


async def test_concurrent_claims_keep_each_ordering_key_with_one_worker_in_order(outbox: Store) -> None:
    topics = [FIFO_TOPIC.replace("t.fifo", f"t{k}.fifo") for k in range(3)]
    await add(outbox, *(pub(f"{k}-{i}", topics[k], ordered=True) for i in range(6) for k in range(3)))
    handed: dict[str, list[str]] = {topic: [] for topic in topics}

    for _round in range(20):
        batches = await asyncio.gather(*(take(outbox, f"w{i}", limit=4) for i in range(8)))
        if not any(batches):
            break
        for topic in topics:
            holders = [batch for batch in batches if any(p.topic_arn == topic for p in batch)]
            assert len(holders) <= 1  # never two workers on one key at a time
        for publication in sorted((p for batch in batches for p in batch), key=lambda p: p.id):
            handed[publication.topic_arn].append(publication.message_id)
            await outbox.complete_publication(publication.id, [], [], T0, DEDUP_WINDOW_MS)

    assert handed == {topic: [f"{k}-{i}" for i in range(6)] for k, topic in enumerate(topics)}


async def test_concurrent_delivery_claims_never_share_an_item(outbox: Store) -> None:
    await deliveries_for(outbox, *(push(f"d{i}") for i in range(40)))

    batches = await asyncio.gather(*(take_deliveries(outbox, f"w{i}", limit=6) for i in range(10)))

    got = Counter(d.payload for batch in batches for d in batch)
    assert sum(got.values()) == 40
    assert max(got.values()) == 1


async def test_claim_finds_work_behind_a_deep_blocked_ordering_key(outbox: Store) -> None:
    """A claim with a small limit still reaches publications queued behind a long, leased ordered backlog."""
    await add(outbox, *(pub(f"f{i}", FIFO_TOPIC, ordered=True) for i in range(2_000)))
    await add(outbox, pub("s1"))
    assert ids(await take(outbox, "a", limit=1)) == ["f0"]

    assert ids(await take(outbox, "b", limit=5)) == ["s1"]
