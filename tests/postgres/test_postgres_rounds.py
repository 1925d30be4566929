"""Rounds: a node's concurrent sends, deletes and claims written by one statement, each answered as alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import ClaimRequest, ClaimResult, DeleteOutcome, MessageRef, NewMessage, QueueKey
from loosely.storage.postgres import PostgresStore, _messages, _sql
from loosely.storage.postgres._notify import Waiters
from loosely.storage.postgres._rounds import Rounds

pytestmark = pytest.mark.postgres

NOW = 1_000_000
DAY_MS = 86_400_000


def message(body: str, now: int = NOW) -> NewMessage:
    return NewMessage(message_id=str(uuid.uuid4()), body=body, meta="{}", sent_ms=now, visible_at_ms=now)


async def make_queue(store: PostgresStore, name: str) -> int:
    record, _ = await store.create_queue(QueueKey("000000000000", "us-east-1", name), {}, {}, 4 * DAY_MS, NOW)
    await store.send_messages(record.id, [], NOW, 0)  # nothing sent; the queue's kind is now known
    await store.claim_messages(record.id, ClaimRequest(1, NOW, NOW + 30_000))  # the kind, cached
    return record.id


@pytest.fixture
async def store(open_node: Callable[..., Awaitable[PostgresStore]]) -> PostgresStore:
    return await open_node()


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """The rounds written by the combined statement: (sends, deletes, claims) requests in each."""
    seen: list[tuple[int, int, int]] = []
    original = _messages.round_standard

    async def spy(conn: Any, sql: Any, channel: str, sends: Any, notify: Any, deletes: Any, q: Any, claims: Any) -> Any:
        seen.append((len(sends), len(deletes), len(claims)))
        return await original(conn, sql, channel, sends, notify, deletes, q, claims)

    monkeypatch.setattr(_messages, "round_standard", spy)
    return seen


async def test_concurrent_sends_deletes_and_claims_share_one_statement(
    store: PostgresStore, rounds: list[tuple[int, int, int]]
) -> None:
    q = await make_queue(store, "mixed")
    await store.send_messages(q, [message("old-1"), message("old-2"), message("old-3")], NOW, 0)
    first = await store.claim_messages(q, ClaimRequest(2, NOW, NOW + 30_000))
    held = [MessageRef(m.row_id, m.receive_count) for m in first.messages]

    sent, deleted, claimed, claimed_too = await asyncio.gather(
        store.send_messages(q, [message("new-1"), message("new-2")], NOW, 0),
        store.delete_messages(q, [held[0], MessageRef(held[1].row_id, held[1].receive_count + 1)]),
        store.claim_messages(q, ClaimRequest(10, NOW, NOW + 30_000)),
        store.claim_messages(q, ClaimRequest(10, NOW, NOW + 30_000)),
    )

    assert rounds == [(1, 1, 2)]
    assert len(sent) == 2 and sent[0].sequence < sent[1].sequence
    assert deleted == [DeleteOutcome.DELETED, DeleteOutcome.STALE]
    # The claims see the queue as it was before the round: the one visible old message, not the new ones.
    assert [m.body for m in claimed.messages] == ["old-3"]
    assert claimed_too.messages == []
    later = await store.claim_messages(q, ClaimRequest(10, NOW, NOW + 30_000))
    assert sorted(m.body for m in later.messages) == ["new-1", "new-2"]


async def test_a_message_deleted_in_the_round_is_not_claimed_by_it(
    store: PostgresStore, rounds: list[tuple[int, int, int]]
) -> None:
    q = await make_queue(store, "expired-visibility")
    ref = await _received_and_visible_again(store, q)

    deleted, claimed = await asyncio.gather(
        store.delete_messages(q, [ref]),
        store.claim_messages(q, ClaimRequest(10, LATER, LATER + 30_000)),
    )

    assert rounds == [(0, 1, 1)]
    assert deleted == [DeleteOutcome.DELETED]
    assert claimed.messages == []
    again = await store.claim_messages(q, ClaimRequest(10, LATER, LATER + 30_000))
    assert again.messages == []


# The round statement's parts with the claim run before the delete. PostgreSQL happens to run the
# round's delete first (its part comes first in the UNION ALL), and a row a statement has already
# deleted is skipped by the claim's FOR UPDATE SKIP LOCKED; but which of two changes to one row in
# one statement takes effect is not defined, so the claim must not depend on the order.
_CLAIM_THEN_DELETE = """
    WITH {DELETE_CTES},
    {CLAIMS}
    SELECT 'claimed', u.id FROM u
    UNION ALL
    SELECT 'deleted', d.id FROM d"""


@pytest.mark.parametrize(("claims", "excluded"), [("{CLAIM_CTES_EXCLUDING_DELETED}", True), ("{CLAIM_CTES}", False)])
async def test_the_round_claim_leaves_out_what_the_round_deletes_whichever_part_runs_first(
    store: PostgresStore, claims: str, excluded: bool
) -> None:
    """The round's claim part keeps the rows being deleted out of its candidates (case ``excluded``).

    The other case, the claim without that exclusion, shows the test can tell: run first, it takes the
    row, and the delete that follows in the same statement silently changes nothing.
    """
    q = await make_queue(store, "claim-first")
    ref = await _received_and_visible_again(store, q)
    statement = _sql.render(_CLAIM_THEN_DELETE.replace("{CLAIMS}", claims), store.schema)
    params = {
        **_messages._delete_params([(q, [ref])]),
        **_messages._claim_params(q, [ClaimRequest(10, LATER, LATER + 30_000)]),
    }

    async def run(conn: Any) -> list[tuple[str, int]]:
        cur = await conn.execute(statement, params)
        return [(part, row_id) for part, row_id in await cur.fetchall()]

    outcome = await store._run(run)

    if excluded:
        assert outcome == [("deleted", ref.row_id)]
        assert (await store.claim_messages(q, ClaimRequest(10, LATER, LATER + 30_000))).messages == []
    else:
        assert outcome == [("claimed", ref.row_id)]


LATER = NOW + 5_000


async def _received_and_visible_again(store: PostgresStore, q: int) -> MessageRef:
    """A message received at NOW for one second: at LATER it is claimable again, and its receipt still
    deletes it (as on AWS)."""
    await store.send_messages(q, [message("only")], NOW, 0)
    received = await store.claim_messages(q, ClaimRequest(1, NOW, NOW + 1_000))
    return MessageRef(received.messages[0].row_id, received.messages[0].receive_count)


async def test_a_gone_queue_fails_only_its_own_requests_in_a_round(
    store: PostgresStore, rounds: list[tuple[int, int, int]]
) -> None:
    kept = await make_queue(store, "kept")
    gone = await make_queue(store, "gone")
    await store.send_messages(kept, [message("waiting")], NOW, 0)
    await store.delete_queue(gone, NOW)

    results = await asyncio.gather(
        store.send_messages(gone, [message("lost")], NOW, 0),
        store.send_messages(kept, [message("stored")], NOW, 0),
        store.claim_messages(gone, ClaimRequest(10, NOW, NOW + 30_000)),
        return_exceptions=True,
    )

    assert rounds == [(2, 0, 1)]
    assert isinstance(results[0], QueueDoesNotExist)
    assert isinstance(results[2], QueueDoesNotExist)
    assert not isinstance(results[1], BaseException) and len(results[1]) == 1
    claimed = await store.claim_messages(kept, ClaimRequest(10, NOW, NOW + 30_000))
    assert sorted(m.body for m in claimed.messages) == ["stored", "waiting"]


async def test_claims_on_several_queues_in_one_round_are_each_served(
    store: PostgresStore, rounds: list[tuple[int, int, int]]
) -> None:
    a = await make_queue(store, "a")
    b = await make_queue(store, "b")
    await store.send_messages(a, [message("a-1")], NOW, 0)
    await store.send_messages(b, [message("b-1")], NOW, 0)

    sent, from_a, from_b = await asyncio.gather(
        store.send_messages(a, [message("a-2")], NOW, 0),
        store.claim_messages(a, ClaimRequest(10, NOW, NOW + 30_000)),
        store.claim_messages(b, ClaimRequest(10, NOW, NOW + 30_000)),
    )

    assert rounds == [(1, 0, 1)]  # the first queue's claims ride with the sends; b's run beside them
    assert len(sent) == 1
    assert [m.body for m in from_a.messages] == ["a-1"]
    assert [m.body for m in from_b.messages] == ["b-1"]


async def test_an_empty_claim_reports_the_wake_ups_its_statement_covered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wake-ups before the round's statement are covered by it (no claim again for them), one during it
    is not; nor are those since the receive was queued when a message becomes visible soon after the
    claim's instant (it may have been sent after the receive read its clock)."""
    waiters = Waiters()
    during: list[bool] = []
    next_visible: list[int | None] = []

    async def claim_many(conn: Any, sql: Any, queue_id: int, requests: Any) -> list[ClaimResult]:
        if during.pop():
            waiters.wake(queue_id)  # a send committed while the statement ran: its snapshot may miss it
        return [ClaimResult([], next_visible.pop()) for _ in requests]

    async def run(work: Callable[[Any], Awaitable[Any]]) -> Any:
        return await work(None)

    monkeypatch.setattr(_messages, "claim_standard_many", claim_many)
    rounds = Rounds(_sql.Sql("rounds_epoch", "node-a"), "channel", waiters, run, lambda queue_ids: None, max_writers=1)
    request = ClaimRequest(10, NOW, NOW + 30_000)

    async def claim_with_a_wake_up_while_queued(visible_at: int | None) -> int:
        during.append(False)
        next_visible.append(visible_at)
        queued = asyncio.ensure_future(rounds.claim(7, request))
        await asyncio.sleep(0)  # queued, its writer not yet started
        waiters.wake(7)  # a send committed before the statement was issued
        _, epoch = await queued
        return epoch

    assert await claim_with_a_wake_up_while_queued(None) == waiters.epoch(7)
    assert await claim_with_a_wake_up_while_queued(NOW + 30_000) == waiters.epoch(7)  # only messages in flight
    assert await claim_with_a_wake_up_while_queued(NOW + 5) == waiters.epoch(7) - 1  # perhaps just sent: again

    during.append(True)
    next_visible.append(None)
    _, epoch = await rounds.claim(7, request)
    assert epoch == waiters.epoch(7) - 1


async def test_the_round_statements_are_prepared_at_their_first_use(
    open_node: Callable[..., Awaitable[PostgresStore]],
) -> None:
    store = await open_node(pool_min=1, pool_max=1)  # one connection: every statement below ran on it once
    q = await make_queue(store, "prepared")  # one claim
    await store.send_messages(q, [message("one")], NOW, 0)

    async def prepared(conn: Any) -> list[str]:
        cur = await conn.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in await cur.fetchall()]

    statements = await store._run(prepared)
    assert any("INSERT INTO" in text and "json_to_recordset" in text for text in statements)  # the send
    assert any("SKIP LOCKED" in text for text in statements)  # the claim
