"""Start-up: a node answers before SNS has started, and SNS starts behind it without losing a request.

SNS (its protocol table, the topic service, the delivery workers, cryptography and the signing key)
is a third of what start-up used to import; a node now starts it once it answers. These tests pin
that down: nothing of SNS is imported by start-up, health and SQS over AWS JSON do not wait for it,
and a request that may be for SNS waits for it and then works, in process and in a real server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from loosely.config import Settings
from loosely.server import app as app_module
from loosely.server.app import App, build_app
from loosely.server.testing import ServerProcess

# Modules start-up must leave alone: SNS's, the delivery workers', and what only they use; decimal,
# which only a Number message attribute needs.
LAZY = (
    "loosely.core.topics.filter_policy",
    "loosely.core.topics.service",
    "loosely.delivery",
    "loosely.protocols.sns",
    "loosely.server.delivery",
    "cryptography",
    "aiohttp",
    "decimal",
)

# Start-up as `loosely serve` runs it (the CLI, the server, the store, the protocol tables), short of
# binding the port, and one SQS request over AWS JSON: what is in `sys.modules` then.
_STARTUP_SCRIPT = """
import asyncio, json, sys
from pathlib import Path

from loosely.cli import main  # noqa: F401  (the command's own imports)
from loosely.config import Settings
from loosely.protocols._wire import WireRequest
from loosely.server import run  # noqa: F401  (what `serve` imports: uvicorn, the app)
from loosely.server.app import build_app


async def start() -> list[str]:
    app = build_app(Settings(data_dir=Path(sys.argv[1])))
    app.start_sns_when_listening = True  # as `loosely.server.run.serve` builds it
    await app.startup()
    headers = {"x-amz-target": "AmazonSQS.CreateQueue", "content-type": "application/x-amz-json-1.0"}
    request = WireRequest("POST", "/", b"", headers, b'{"QueueName": "q"}')
    from loosely.protocols.dispatch import handle

    response = await handle(request, app.context)
    assert response.status == 200, response.body
    loaded = sorted(sys.modules)
    await app.shutdown()
    return loaded


loaded = asyncio.run(start())
# Value classes defined by then that are plain dataclasses, not records (`loosely.core.frozen`): each
# compiled six methods as it was defined, about 1 ms a class. Storage's are left to storage.
plain = [
    f"{module.__name__}.{name}"
    for module in list(sys.modules.values())
    if module.__name__.startswith("loosely.") and not module.__name__.startswith("loosely.storage")
    for name, cls in vars(module).items()
    if isinstance(cls, type)
    and cls.__module__ == module.__name__
    and "__dataclass_fields__" in cls.__dict__
    and cls.__dict__.get("__setattr__", cls.__dict__.get("__repr__")).__module__ != "loosely.core.frozen"
]
print(json.dumps({"loaded": loaded, "plain": plain}))
"""


def test_start_up_and_sqs_over_json_import_nothing_of_sns(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _STARTUP_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=60,
    )
    found = json.loads(done.stdout)
    loaded = found["loaded"]
    assert "loosely.storage.sqlite" in loaded and "loosely.protocols.sqs" in loaded  # the script did start up
    eager = [name for name in loaded if name.startswith(LAZY)]
    assert eager == []
    assert found["plain"] == []


# `loosely serve` with a probe: whether the cyclic garbage collector was on while the store opened, once
# the port listened, once SNS had started behind it (and start-up's objects were frozen, and young
# collections wait for more than Python's default 700 new objects), and at the end.
_GC_SCRIPT = """
import gc, sys
from pathlib import Path

from loosely.config import Settings
from loosely.server import app, run

seen = []
open_store = app.App.startup


async def startup(self):
    seen.append(("store opening", gc.isenabled()))
    await open_store(self)


class Probe(run._Server):
    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        seen.append(("listening", gc.isenabled()))

    async def _settle(self, app):
        await super()._settle(app)
        seen.append(("SNS up", gc.isenabled(), gc.get_freeze_count() > 10_000, gc.get_threshold()[0]))
        self.should_exit = True


app.App.startup = startup
run._Server = Probe
status = run.serve(Settings(port=0, data_dir=Path(sys.argv[1])))
seen.append(("stopped", gc.isenabled()))
print(repr(seen), file=sys.stderr)
sys.exit(status)
"""


def test_the_garbage_collector_rests_until_the_server_is_up(tmp_path: Path) -> None:
    # Start-up allocates what lives for good; collecting while it runs found next to nothing to free and
    # cost about 3 % of its instructions. Once SNS is up, start-up's objects are frozen and it runs again,
    # its young collections spaced out so that requests in flight do not set them off all the time.
    done = subprocess.run(
        [sys.executable, "-c", _GC_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = done.stderr.strip().splitlines()[-1]
    assert seen == (
        "[('store opening', False), ('listening', False), ('SNS up', True, True, 10000), ('stopped', True)]"
    )


@pytest.fixture
def slow_sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold SNS's start-up (its thread's work) until the event is set."""
    release = threading.Event()
    prepare = app_module._prepare_sns

    def held(settings: Settings, with_signer: bool) -> Any:
        if not release.wait(30):
            raise TimeoutError("never released")
        return prepare(settings, with_signer)

    monkeypatch.setattr(app_module, "_prepare_sns", held)
    yield release
    release.set()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[App]:
    """A node on a real SQLite store whose SNS has not begun to start, as `serve` leaves it before listening."""
    application = build_app(Settings(data_dir=tmp_path, public_url="http://node.test"))
    application.start_sns_when_listening = True
    await application.startup()
    try:
        yield application
    finally:
        await application.shutdown()


def _client(app: App) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node.test")


async def test_a_first_sns_request_starts_sns_and_waits_for_it(node: App) -> None:
    async with _client(node) as client:
        created = await client.post("/", data={"Action": "CreateTopic", "Name": "first", "Version": "2010-03-31"})
        listed = await client.post("/", data={"Action": "ListTopics", "Version": "2010-03-31"})
    assert created.status_code == 200, created.text
    assert b"<TopicArn>arn:aws:sns:us-east-1:000000000000:first</TopicArn>" in created.content
    assert b"first" in listed.content


async def test_health_and_json_sqs_answer_while_sns_starts(node: App, slow_sns: threading.Event) -> None:
    async with _client(node) as client:
        sns = asyncio.create_task(client.post("/", data={"Action": "ListTopics", "Version": "2010-03-31"}))
        health = await client.get("/_loosely/health")
        queues = await client.post(
            "/",
            content=b"{}",
            headers={"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"},
        )
        assert not sns.done()  # still waiting for SNS
        slow_sns.set()
        listed = await sns
    assert health.status_code == 200
    assert health.json()["services"] == ["sqs", "sns"]
    assert queues.status_code == 200, queues.text
    assert listed.status_code == 200, listed.text


async def test_delivery_endpoints_wait_for_sns(node: App) -> None:
    async with _client(node) as client:
        stats = await client.get("/_loosely/delivery")
    assert stats.status_code == 200, stats.text  # served by the delivery workers, not a 404 from before they started
    assert isinstance(stats.json(), dict)


async def test_a_store_failing_while_the_delivery_workers_start_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers start after the server answers; a store away then (a database restarting) must
    # neither fail SNS nor stop the node: SNS requests are served, the workers start once it is back.
    from loosely.core.errors import ServiceUnavailable
    from loosely.server.delivery import DeliveryEndpoints

    monkeypatch.setattr(app_module, "DELIVERY_START_FIRST_PAUSE_S", 0.001)
    original = DeliveryEndpoints.start
    attempts = 0
    started = asyncio.Event()

    async def flaky_start(self: DeliveryEndpoints) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ServiceUnavailable("the store is away")
        await original(self)
        started.set()

    monkeypatch.setattr(DeliveryEndpoints, "start", flaky_start)
    app = build_app(Settings(data_dir=tmp_path, public_url="http://node.test"))
    await app.startup()
    try:
        await app.sns_ready()
        async with _client(app) as client:
            created = await client.post("/", data={"Action": "CreateTopic", "Name": "t", "Version": "2010-03-31"})
        assert created.status_code == 200, created.text
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await app.shutdown()
    assert attempts == 3


@pytest.mark.compat
def test_first_sns_requests_of_a_fresh_server_deliver(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    with ServerProcess(tmp_path / "data", env=env) as server:
        # The first requests after health: SNS is most likely still starting behind them.
        options: dict[str, Any] = {
            "endpoint_url": server.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        sns = boto3.client("sns", **options)
        sqs = boto3.client("sqs", **options)
        topic = sns.create_topic(Name="early")["TopicArn"]
        url = sqs.create_queue(QueueName="early")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        sns.publish(TopicArn=topic, Message="on time")
        deadline = time.monotonic() + 10
        bodies: list[str] = []
        while not bodies and time.monotonic() < deadline:
            received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
            bodies = [m["Body"] for m in received.get("Messages", [])]
    assert bodies == ["on time"]


@pytest.mark.compat
def test_an_unusable_signing_key_stops_the_server_with_status_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sns-signing.pem").write_bytes(b"garbage -----BEGIN CERTIFICATE-----\nnope\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    done = subprocess.run(
        [sys.executable, "-m", "loosely", "serve", "--port", "0", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert "SNS failed to start" in done.stderr and "sns-signing.pem" in done.stderr
    assert (data / "sns-signing.pem").read_bytes().startswith(b"garbage")
