"""Small builders shared by the contract tests."""

from __future__ import annotations

import itertools

from loosely.core.ports import QueueStore
from loosely.core.queues.models import ClaimRequest, ClaimResult, NewMessage, QueueKey, QueueRecord

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION_MS = 4 * DAY_MS
DEDUP_WINDOW_MS = 300_000
VISIBILITY_MS = 30_000
ACCOUNT = "123456789012"
REGION = "us-east-1"

_ids = itertools.count(1)


def key(name: str, account: str = ACCOUNT, region: str = REGION) -> QueueKey:
    return QueueKey(account_id=account, region=region, name=name)


async def make_queue(
    store: QueueStore, name: str = "q", retention_ms: int = RETENTION_MS, now_ms: int = T0
) -> QueueRecord:
    record, created = await store.create_queue(key(name), {"VisibilityTimeout": "30"}, {}, retention_ms, now_ms)
    assert created
    return record


def msg(
    body: str = "body",
    *,
    sent_ms: int = T0,
    visible_at_ms: int | None = None,
    group_id: str | None = None,
    dedup_key: str | None = None,
    meta: str = '{"a":1}',
    message_id: str | None = None,
) -> NewMessage:
    return NewMessage(
        message_id=message_id or f"00000000-0000-4000-8000-{next(_ids):012d}",
        body=body,
        meta=meta,
        sent_ms=sent_ms,
        visible_at_ms=sent_ms if visible_at_ms is None else visible_at_ms,
        group_id=group_id,
        dedup_key=dedup_key,
    )


async def send(store: QueueStore, queue: QueueRecord, *bodies: str, now_ms: int = T0, **kw: object) -> list[str]:
    """Send one message per body (one call); return their message ids."""
    messages = [msg(b, sent_ms=now_ms, **kw) for b in bodies]  # type: ignore[arg-type]
    outcomes = await store.send_messages(queue.id, messages, now_ms, DEDUP_WINDOW_MS)
    return [o.message_id for o in outcomes]


async def claim(
    store: QueueStore,
    queue: QueueRecord,
    n: int = 10,
    now_ms: int = T0,
    visibility_ms: int = VISIBILITY_MS,
    **kw: object,
) -> ClaimResult:
    request = ClaimRequest(
        max_messages=n, now_ms=now_ms, visible_until_ms=now_ms + visibility_ms, fifo=queue.key.fifo, **kw
    )  # type: ignore[arg-type]
    return await store.claim_messages(queue.id, request)


def bodies(result: ClaimResult) -> list[str]:
    return [m.body for m in result.messages]
