"""The server's delivery endpoints in process: certificates shared between nodes, outbox, link context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from delivery_support import store_has_outbox

from loosely.config import Settings
from loosely.core.clock import SystemClock
from loosely.core.ids import RandomIds
from loosely.core.queues.service import QueueService, QueueSettings
from loosely.protocols._wire import ServerContext, WireRequest
from loosely.server.delivery import DeliveryEndpoints, build_delivery, link_context

TOPIC = "arn:aws:sns:eu-west-1:210987654321:news"


def request(query: str, method: str = "GET", **headers: str) -> WireRequest:
    return WireRequest(method, "/", query.encode(), headers, b"")


def test_subscribe_and_unsubscribe_links_act_as_the_arns_account_and_region() -> None:
    context = ServerContext(queues=None, default_account_id="000000000000", default_region="us-east-1")  # type: ignore[arg-type]
    confirm = link_context(request(f"Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t"), context)
    assert (confirm.default_account_id, confirm.default_region) == ("210987654321", "eu-west-1")
    leave = link_context(request(f"Action=Unsubscribe&SubscriptionArn={TOPIC}:abc"), context)
    assert (leave.default_account_id, leave.default_region) == ("210987654321", "eu-west-1")


@pytest.mark.parametrize(
    "wire",
    [
        request(f"Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t", method="POST"),
        request(f"Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t", authorization="AWS4-HMAC-SHA256 ..."),
        request(f"Action=Publish&TopicArn={TOPIC}"),
        request("Action=ConfirmSubscription&TopicArn=not-an-arn&Token=t"),
    ],
)
def test_other_requests_keep_their_context(wire: WireRequest) -> None:
    context = ServerContext(queues=None)  # type: ignore[arg-type]
    assert link_context(wire, context) is context


@pytest.fixture
async def two_nodes(tmp_path: Path) -> Any:
    """Two nodes with their own data directories (own signing keys) on one store."""
    if not store_has_outbox():
        pytest.skip("the SQLite store does not keep documents yet")
    from loosely.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    await store.open()
    queues = QueueService(store, SystemClock(), RandomIds(), QueueSettings())
    nodes: list[DeliveryEndpoints] = []
    for name in ("a", "b"):
        node = build_delivery(Settings(data_dir=tmp_path / name, public_url=f"http://{name}.test"), store, queues)
        assert node is not None
        await node.start()
        nodes.append(node)
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.stop()
        await store.close()


async def test_any_node_serves_every_nodes_certificate(two_nodes: list[DeliveryEndpoints]) -> None:
    a, b = two_nodes
    a_url = a.runtime.renderer.signing_cert_url
    b_url = b.runtime.renderer.signing_cert_url
    a_path, b_path = a_url.removeprefix("http://a.test"), b_url.removeprefix("http://b.test")
    assert a_path != b_path
    own = await a.serve("GET", a_path, b"")
    other = await a.serve("GET", b_path, b"")
    assert own is not None and other is not None
    assert own[0] == other[0] == 200
    assert other[2] == await _pem(b, b_path)
    missing = await a.serve("GET", "/SimpleNotificationService-0000.pem", b"")
    assert missing is not None and missing[0] == 404


async def _pem(node: DeliveryEndpoints, path: str) -> bytes:
    response = await node.serve("GET", path, b"")
    assert response is not None
    return response[2]


async def test_outbox_endpoint_validates_its_limit(two_nodes: list[DeliveryEndpoints]) -> None:
    a, _ = two_nodes
    bad = await a.serve("GET", "/_loosely/outbox", b"limit=0")
    assert bad is not None and bad[0] == 400
    empty = await a.serve("GET", "/_loosely/outbox", b"type=sms")
    assert empty is not None and json.loads(empty[2]) == {"messages": []}
    assert await a.serve("GET", "/_loosely/health", b"") is None  # not a delivery endpoint
    stats = await a.serve("GET", "/_loosely/delivery", b"")
    assert stats is not None and json.loads(stats[2])["delivered"] == 0
