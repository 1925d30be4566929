"""Fair queues weigh how long consumers work on each tenant's messages (storage._fair).

The service tells the store each deleted message's receive instant (from its receipt handle) and
the time of the delete, so a tenant whose few messages each keep a consumer busy is found noisy
although it never has many messages in flight. Fake time: the clock moves, nothing sleeps.
"""

from __future__ import annotations

import pytest

from loosely.core.clock import FakeClock
from loosely.core.queues.models import QueueKey, ReceiveRequest, SendRequest
from loosely.core.queues.service import QueueService
from loosely.storage._fair import DETECT_EVERY_MS

Q = QueueKey(account_id="000000000000", region="us-east-1", name="fair")


async def _send(service: QueueService, body: str, group: str) -> None:
    await service.send_message(Q, SendRequest(body=body, group_id=group), "AIDASENDER")


async def _receive(service: QueueService, n: int) -> dict[str, str]:
    got = await service.receive_message(Q, ReceiveRequest(max_messages=n, visibility_timeout_s=600))
    return {m.body: m.receipt_handle for m in got}


async def _delete(service: QueueService, handles: list[str], batch: bool) -> None:
    if batch:
        assert not (await service.delete_message_batch(Q, [(str(i), h) for i, h in enumerate(handles)])).failed
    else:
        for handle in handles:
            await service.delete_message(Q, handle)


@pytest.mark.parametrize("slow_in_batch", [False, True], ids=["slow-deleted-alone", "slow-deleted-in-batch"])
async def test_deletes_tell_the_store_how_long_each_tenant_was_processed(
    service: QueueService, clock: FakeClock, slow_in_batch: bool
) -> None:
    await service.create_queue(Q, {}, {})
    for i in range(2):
        await _send(service, f"a-slow{i}", "A")
    for i in range(8):
        await _send(service, f"b-fast{i}", "B")
    handles = await _receive(service, 10)
    assert len(handles) == 10

    clock.advance(1)  # B's eight, deleted 1 ms after their receive
    await _delete(service, [handles[f"b-fast{i}"] for i in range(8)], batch=not slow_in_batch)
    clock.advance(5_000)  # A's two, 5 s after: A's share of the processing time is over 10 %
    await _delete(service, [handles[f"a-slow{i}"] for i in range(2)], batch=slow_in_batch)

    await _send(service, "a-next", "A")
    await _send(service, "b-next", "B")
    clock.advance(DETECT_EVERY_MS)
    assert list(await _receive(service, 1)) == ["b-next"]
