"""Management reads see another node's change at once, even before its notification has arrived."""

from __future__ import annotations

import pytest

from contract.helpers import T0, make_queue
from loosely.storage.postgres import PostgresStore
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres


def notifications_lost(node: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on ``node`` handles no "queue changed" notification, as if every one were still in flight."""
    monkeypatch.setattr(node._queues, "invalidate", lambda queue_id: None)


async def test_a_fresh_lookup_sees_a_deletion_made_on_another_node(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, deleting = await open_node(), await open_node()
    queue = await make_queue(deleting)
    assert await reading.get_queue(queue.key) == queue  # now in the reading node's cache
    notifications_lost(reading, monkeypatch)

    await deleting.delete_queue(queue.id, T0 + 1)

    assert await reading.get_queue(queue.key) == queue  # the cache alone is a notification behind
    assert await reading.get_queue(queue.key, fresh=True) is None


async def test_a_fresh_lookup_sees_attributes_changed_on_another_node(
    open_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, changing = await open_node(), await open_node()
    queue = await make_queue(changing)
    assert await reading.get_queue(queue.key) == queue
    notifications_lost(reading, monkeypatch)

    await changing.update_queue(queue.id, T0 + 1, attributes={"VisibilityTimeout": "45"})

    fresh = await reading.get_queue(queue.key, fresh=True)
    assert fresh is not None and fresh.attributes["VisibilityTimeout"] == "45"
