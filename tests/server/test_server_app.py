"""The ASGI application in process: health, body cap, dispatch, failures, life cycle.

A fake store and a fake protocol handler stand in for the real ones, so these tests pin down
what the server itself does, whatever the other layers do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import httpx
import orjson
import pytest

from loosely import __version__
from loosely.config import Settings
from loosely.core.ports import QueueStore
from loosely.protocols._wire import ServerContext, WireRequest, WireResponse
from loosely.server.app import MAX_BODY_BYTES, App, build_app


class FakeStore:
    def __init__(self) -> None:
        self.opened = False
        self.closed = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True


class RecordingHandler:
    def __init__(self, response: WireResponse | None = None, error: Exception | None = None) -> None:
        self.requests: list[WireRequest] = []
        self.contexts: list[ServerContext] = []
        self.response = response or WireResponse(200, [("content-type", "text/plain")], b"handled")
        self.error = error

    async def __call__(self, request: WireRequest, context: ServerContext) -> WireResponse:
        self.requests.append(request)
        self.contexts.append(context)
        if self.error is not None:
            raise self.error
        return self.response


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path, account_id="123456789012", region="eu-west-1", public_url="http://q.example")


@pytest.fixture
async def app(settings: Settings, store: FakeStore, handler: RecordingHandler) -> AsyncIterator[App]:
    application = build_app(
        settings, store_factory=lambda _: cast(QueueStore, store), handler=handler, background=False
    )
    await application.startup()
    yield application
    await application.shutdown()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def test_health_reports_ok_version_and_services(client: httpx.AsyncClient) -> None:
    response = await client.get("/_loosely/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "version": __version__, "services": ["sqs"]}


async def test_unknown_internal_path_is_404_and_not_dispatched(
    client: httpx.AsyncClient, handler: RecordingHandler
) -> None:
    response = await client.get("/_loosely/nope")
    assert response.status_code == 404
    assert handler.requests == []


async def test_request_reaches_handler_as_wire_request(client: httpx.AsyncClient, handler: RecordingHandler) -> None:
    response = await client.post(
        "/123456789012/q%20name?x=1",
        content=b"Action=ListQueues",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Custom": "Value"},
    )
    assert response.status_code == 200
    assert response.content == b"handled"
    assert response.headers["content-length"] == "7"
    [request] = handler.requests
    assert request.method == "POST"
    assert request.path == "/123456789012/q name"
    assert request.query_string == b"x=1"
    assert request.body == b"Action=ListQueues"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-custom"] == "Value"


async def test_context_carries_identity_from_settings(client: httpx.AsyncClient, handler: RecordingHandler) -> None:
    await client.post("/", content=b"{}")
    [context] = handler.contexts
    assert (context.default_account_id, context.default_region) == ("123456789012", "eu-west-1")
    assert context.public_url == "http://q.example"


async def test_chunked_body_is_joined(client: httpx.AsyncClient, handler: RecordingHandler) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a" * 1000, b"b" * 1000, b"c"):
            yield part

    await client.post("/", content=chunks())
    assert handler.requests[0].body == b"a" * 1000 + b"b" * 1000 + b"c"


async def test_declared_body_over_cap_is_413_json_without_dispatch(
    client: httpx.AsyncClient, handler: RecordingHandler
) -> None:
    response = await client.post(
        "/",
        content=b"x",
        headers={"Content-Length": str(MAX_BODY_BYTES + 1), "X-Amz-Target": "AmazonSQS.SendMessage"},
    )
    assert response.status_code == 413
    assert response.json()["__type"] == "RequestEntityTooLarge"
    assert response.headers["x-amzn-query-error"] == "RequestEntityTooLarge;Sender"
    assert response.headers["connection"] == "close"
    assert handler.requests == []


async def test_streamed_body_over_cap_is_413_xml(client: httpx.AsyncClient, handler: RecordingHandler) -> None:
    chunk = b"a" * (1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk

    response = await client.post("/", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert b"<Code>RequestEntityTooLarge</Code>" in response.content
    assert b"<Type>Sender</Type>" in response.content
    assert handler.requests == []


async def test_body_at_cap_is_accepted(client: httpx.AsyncClient, handler: RecordingHandler) -> None:
    response = await client.post("/", content=b"z" * MAX_BODY_BYTES)
    assert response.status_code == 200
    assert len(handler.requests[0].body) == MAX_BODY_BYTES


async def test_handler_exception_becomes_aws_internal_failure(settings: Settings, store: FakeStore) -> None:
    handler = RecordingHandler(error=RuntimeError("secret detail"))
    app = build_app(settings, store_factory=lambda _: cast(QueueStore, store), handler=handler, background=False)
    await app.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            json_response = await client.post("/", content=b"{}", headers={"X-Amz-Target": "AmazonSQS.ListQueues"})
            xml_response = await client.post("/", content=b"Action=ListQueues")
    finally:
        await app.shutdown()
    assert json_response.status_code == 500
    assert orjson.loads(json_response.content)["__type"] == "InternalFailure"
    assert json_response.headers["x-amzn-query-error"] == "InternalFailure;Receiver"
    assert xml_response.status_code == 500
    assert b"<Code>InternalFailure</Code>" in xml_response.content
    assert b"<Type>Receiver</Type>" in xml_response.content
    for response in (json_response, xml_response):
        assert b"secret detail" not in response.content
        assert b"Traceback" not in response.content
        assert response.headers["x-amzn-requestid"]


async def test_content_length_from_handler_is_replaced(settings: Settings, store: FakeStore) -> None:
    handler = RecordingHandler(response=WireResponse(200, [("Content-Length", "999")], b"abc"))
    app = build_app(settings, store_factory=lambda _: cast(QueueStore, store), handler=handler, background=False)
    await app.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.post("/", content=b"")
    finally:
        await app.shutdown()
    assert response.headers.get_list("content-length") == ["3"]
    assert response.content == b"abc"


async def test_lifespan_opens_and_closes_store(settings: Settings, store: FakeStore) -> None:
    app = build_app(settings, store_factory=lambda _: cast(QueueStore, store), handler=RecordingHandler())
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            assert store.opened and not store.closed

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert store.closed


async def test_lifespan_startup_failure_is_reported(settings: Settings) -> None:
    class BrokenStore(FakeStore):
        async def open(self) -> None:
            raise OSError("disk on fire")

    app = build_app(settings, store_factory=lambda _: cast(QueueStore, BrokenStore()), handler=RecordingHandler())
    sent = await _lifespan_startup(app)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "disk on fire" in sent[0]["message"]


async def test_an_unusable_signing_key_stops_sns_and_is_never_overwritten(settings: Settings) -> None:
    # SNS starts after the server answers (the key loads then); its failure is loud: SNS requests get
    # 503, `sns_ready` raises it, and `loosely serve` stops with status 1 (see test_server_process).
    assert settings.data_dir is not None
    key_file = settings.data_dir / "sns-signing.pem"
    key_file.write_bytes(b"garbage -----BEGIN CERTIFICATE-----\nnope\n")
    app = build_app(settings)
    try:
        await app.startup()  # the store opens and the server answers: the key is not read yet
        with pytest.raises(Exception, match=r"sns-signing\.pem"):
            await app.sns_ready()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            sns = await client.post("/", content=b"Action=ListTopics&Version=2010-03-31")
            health = await client.get("/_loosely/health")
    finally:
        await app.shutdown()
    assert sns.status_code == 503
    assert b"<Code>ServiceUnavailable</Code>" in sns.content
    assert health.status_code == 200
    assert key_file.read_bytes().startswith(b"garbage")  # never overwritten


async def _lifespan_startup(app: App) -> list[dict[str, Any]]:
    """Send the app a lifespan startup, as an ASGI server would, and keep what it answers."""
    sent: list[dict[str, Any]] = []
    messages: Iterator[dict[str, Any]] = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    return sent


async def _raw_call(app: App, headers: list[tuple[bytes, bytes]], first: dict[str, Any]) -> list[dict[str, Any]]:
    """Call the app as an ASGI server would, with one receive message, and keep what it sends."""
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return first

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_response_headers_reach_asgi_as_bytes_with_computed_length(app: App, handler: RecordingHandler) -> None:
    handler.response = WireResponse(
        201, [("x-amzn-RequestId", "r-1"), ("content-LENGTH", "7"), ("x-amzn-RequestId", "r-2")], b"body"
    )
    for _ in range(2):  # the second call takes the encoded names from the cache
        start, end = await _raw_call(app, [], {"type": "http.request", "body": b"", "more_body": False})
        assert start == {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-amzn-RequestId", b"r-1"), (b"x-amzn-RequestId", b"r-2"), (b"content-length", b"4")],
        }
        assert end == {"type": "http.response.body", "body": b"body"}


async def test_request_headers_decoded_beyond_the_name_cache(app: App, handler: RecordingHandler) -> None:
    names = [f"x-made-up-{i}".encode() for i in range(300)]  # more distinct names than the cache keeps
    headers = [(name, b"caf\xe9") for name in names] + [(b"x-made-up-0", b"last")]
    await _raw_call(app, headers, {"type": "http.request", "body": b"abc", "more_body": False})
    seen = handler.requests[0].headers
    assert len(seen) == 300
    assert seen["x-made-up-0"] == "last"  # a repeated name keeps its last value
    assert seen["x-made-up-299"] == "café"
    assert handler.requests[0].body == b"abc"


async def test_disconnect_before_body_dispatches_empty_body(app: App, handler: RecordingHandler) -> None:
    start, _ = await _raw_call(app, [], {"type": "http.disconnect"})
    assert start["status"] == 200
    assert handler.requests[0].body == b""


async def test_request_before_startup_is_503(settings: Settings, handler: RecordingHandler) -> None:
    app = build_app(settings, handler=handler, background=False)
    start, end = await _raw_call(app, [(b"x-amz-target", b"AmazonSQS.ListQueues")], {"type": "http.request"})
    assert start["status"] == 503
    assert orjson.loads(end["body"])["__type"] == "ServiceUnavailable"
    assert handler.requests == []
