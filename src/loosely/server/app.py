"""The ASGI application: the one place where storage, services and protocol adapters meet.

`build_app` assembles a node from `Settings`. The lifespan opens the store, builds the services,
starts the background workers (retention expiry, message move tasks) and, at shutdown, stops them
and closes the store, so that everything acknowledged is on disk before the process exits.

SNS starts after that, in the background (`App.start_sns`): its modules, its signing key and its
delivery workers are not needed to answer health or SQS, and importing them would cost start-up
about a third of its time. Until SNS is up, a request that may need it (any request that is not
AWS JSON, and the delivery endpoints) waits for it; health and SQS over AWS JSON never wait.

Requests take one short path: ``/_loosely/health`` is answered here; every other request becomes a
`WireRequest` for `loosely.protocols.dispatch.handle`. The body is read with a cap, and no
exception reaches the client as a traceback: it becomes an AWS-shaped ``InternalFailure``.

No web framework sits in between: the ASGI interface is small, and this path runs for every
message, so it allocates only what the request needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

import orjson

from loosely import __version__
from loosely.config import Settings
from loosely.core.clock import SystemClock
from loosely.core.ids import RandomIds
from loosely.core.ports import DocumentStore, OutboxStore, QueueStore
from loosely.core.queues.service import QueueService, QueueSettings
from loosely.protocols._wire import ServerContext, WireRequest, WireResponse
from loosely.server.errors import aws_error
from loosely.server.links import CERTIFICATE_PREFIX, link_context
from loosely.storage import StoreOpenError

if TYPE_CHECKING:
    from loosely.delivery.signing import Signer
    from loosely.server.delivery import DeliveryEndpoints

__all__ = ["MAX_BODY_BYTES", "App", "Handler", "StoreFactory", "build_app"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[WireRequest, ServerContext], Awaitable[WireResponse]]
StoreFactory = Callable[[Settings], QueueStore]

# A 1 MiB message (or a batch of 1 MiB) grows on the wire: JSON escapes and base64 take up to about
# twice its size, and Query's percent-encoding three times for multi-byte characters. The cap lets
# every valid request through (the protocol layer applies AWS's exact limits) and stops abuse early.
MAX_BODY_BYTES = 4 * 1024 * 1024 + 64 * 1024

HEALTH_PATH = "/_loosely/health"
INTERNAL_PREFIX = "/_loosely/"
EXPIRY_INTERVAL_S = 1.0
MOVE_BUSY_INTERVAL_S = 0.2
MOVE_IDLE_INTERVAL_S = 1.0
DELIVERY_START_FIRST_PAUSE_S = 0.2
DELIVERY_START_MAX_PAUSE_S = 5.0

_JSON_HEADERS = [(b"content-type", b"application/json")]
_DELIVERY_PREFIXES = (CERTIFICATE_PREFIX, INTERNAL_PREFIX)

# Header names decoded (request) and encoded (response) once each. Bounded, so that clients sending
# made-up names cannot grow them: past the bound, names are converted per request as before.
_HEADER_CACHE_SIZE = 256
_HEADER_NAMES: dict[bytes, str] = {}
_RESPONSE_NAMES: dict[str, bytes | None] = {}


def build_app(
    settings: Settings,
    *,
    store_factory: StoreFactory | None = None,
    handler: Handler | None = None,
    background: bool = True,
) -> App:
    """The application for ``settings``. Tests may swap the store, the protocol handler, and workers."""
    return App(settings, store_factory or open_configured_store, handler, background)


def open_configured_store(settings: Settings) -> QueueStore:
    """The store ``settings`` names, created lazily so that the server imports only the backend it uses."""
    from loosely.storage import open_store

    if settings.uses_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return open_store(
            settings.store_url,
            synchronous=settings.sqlite_synchronous,
            disk_free_limit_bytes=settings.disk_free_limit_mb * 1024 * 1024,
        )
    return open_store(settings.store_url)


class App:
    """An ASGI 3 application serving one loosely node."""

    def __init__(
        self, settings: Settings, store_factory: StoreFactory, handler: Handler | None, background: bool
    ) -> None:
        self.settings = settings
        self._store_factory = store_factory
        self._handler = handler
        self._background = background
        self._store: QueueStore | None = None
        self._context: ServerContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._delivery: DeliveryEndpoints | None = None  # SNS delivery workers and endpoints
        self._health = orjson.dumps({"status": "ok", "version": __version__, "services": ["sqs"]})
        # SNS: True from start-up until it is up (or has failed); the task that starts it, once begun.
        self._sns_pending = False
        self._sns: asyncio.Task[None] | None = None
        self._delivery_start: asyncio.Task[None] | None = None  # publishes the certificate, starts the workers
        self._public_url: str | None = None
        self.start_sns_when_listening = False  # set by `loosely.server.run`: SNS starts once the port is bound

    @property
    def context(self) -> ServerContext:
        """The services, available between startup and shutdown."""
        if self._context is None:
            raise RuntimeError("the application has not started")
        return self._context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request, on one coroutine: this runs for every message, so the common case stays inline.

        The request is served here rather than in a method of its own: a second coroutine per request
        costs more than the indirection is worth. The lifespan, once per process, has its own method.
        """
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_DELIVERY_PREFIXES):
            if self._sns_pending and path != HEALTH_PATH and not await self._sns_up():
                await _respond(send, _sns_unavailable(_decode_headers(scope["headers"])))
                return
            if await self._serve_internal(scope, path, send):
                return
        headers = _decode_headers(scope["headers"])
        if self._sns_pending and _may_be_sns(headers) and not await self._sns_up():
            await _respond(send, _sns_unavailable(headers))
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _respond(send, _too_large(headers))
            return
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):  # the body in one piece
            first: bytes = message.get("body", b"")
            body = first if len(first) <= MAX_BODY_BYTES else None
        else:
            body = await _read_rest(receive, message)
        if body is None:
            await _respond(send, _too_large(headers))
            return
        client = scope.get("client")
        # Positional: the keyword form of a frozen dataclass's constructor costs measurably more per request.
        request = WireRequest(
            scope["method"],
            path,
            scope["query_string"],
            headers,
            body,
            client[0] if client else None,
            scope.get("scheme", "http"),
        )
        handler = self._handler
        context = self._context
        if handler is None or context is None:
            response = aws_error(headers, 503, "ServiceUnavailable", "The server is starting or stopping.")
        else:
            if request.method == "GET":
                context = link_context(request, context)  # SubscribeURL / UnsubscribeURL visits
            try:
                response = await handler(request, context)
            except Exception:  # no traceback reaches the client: it gets what AWS sends for its own faults
                log.exception("unhandled error for %s %s", request.method, path)
                response = aws_error(headers, 500, "InternalFailure", "The request processing has failed.")
        start, end = _response_messages(response)
        await send(start)
        await send(end)

    # ---- life cycle ----

    async def startup(self) -> None:
        """Open the store, build the queue service and start its workers; then begin starting SNS.

        SNS starts in the background (see `start_sns`), at once, or once the port is bound when
        `start_sns_when_listening` is set.
        """
        store = self._store_factory(self.settings)
        await store.open()
        self._store = store
        queues = QueueService(
            store,
            SystemClock(),
            RandomIds(),
            QueueSettings(
                recreate_delay_ms=round(self.settings.queue_recreate_delay_s * 1000),
                in_flight_max=self.settings.queue_max_in_flight,
            ),
        )
        self._context = ServerContext(
            queues=queues,
            default_account_id=self.settings.account_id,
            default_region=self.settings.region,
            public_url=self.settings.public_url,
        )
        self._sns_pending = _serves_sns(store)
        services = ["sqs", "sns"] if self._sns_pending else ["sqs"]
        self._health = orjson.dumps({"status": "ok", "version": __version__, "services": services})
        if self._handler is None:
            from loosely.protocols.dispatch import handle

            self._handler = handle
        if self._background:
            owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self._tasks = [
                asyncio.create_task(_expiry_worker(queues), name="loosely-expiry"),
                asyncio.create_task(_move_worker(queues, owner), name="loosely-move-tasks"),
            ]
        log.info("store open: %s", _redact(self.settings.store_url))
        if not self.start_sns_when_listening:
            self.start_sns()

    def start_sns(self) -> asyncio.Task[None] | None:
        """Begin starting SNS (once); the task doing it, or None when this node serves no SNS.

        On a thread, so that the event loop keeps answering: import the SNS protocol table, the
        topic service and the delivery modules, and load (or make) the signing key. Then, on the
        loop: the topic service and the delivery endpoints, and SNS requests are served. Last, with
        background workers, the node's certificate is published in the store and the delivery
        workers start, resuming the deliveries pending from before a restart (`_start_delivery`,
        retried while the store fails: only what SNS needs of its own, such as a usable signing
        key, makes SNS fail to start).
        """
        if self._sns is None and self._sns_pending:
            self._sns = asyncio.create_task(self._start_sns(), name="loosely-sns-start")
        return self._sns

    async def sns_ready(self) -> None:
        """Wait until SNS is up; raise what stopped it from starting. Returns at once without SNS."""
        task = self.start_sns()
        if task is not None:
            await asyncio.shield(task)

    async def _start_sns(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            signer = await loop.run_in_executor(None, _prepare_sns, self.settings, self._background)
            from loosely.core.topics.service import TopicService
            from loosely.server.delivery import build_delivery

            store = self._store
            context = self._context
            assert store is not None and context is not None
            admission = None
            if self._background:
                delivery = build_delivery(self.settings, store, context.queues, signer)
                if delivery is not None:
                    self._delivery = delivery  # from now on `advertise` reaches it
                    if self._public_url is not None:
                        delivery.runtime.advertise(self._public_url)
                    admission = delivery.runtime.fanout.backlog  # Publish waits while fan-out is far behind
            topics = TopicService(
                cast(DocumentStore, store), cast(OutboxStore, store), SystemClock(), RandomIds(), admission=admission
            )
        except Exception:
            log.exception("SNS failed to start")  # SNS requests get 503 from now on; `serve` stops the server
            raise
        self._context = dataclasses.replace(context, topics=topics)
        self._sns_pending = False
        if self._delivery is not None:
            self._delivery_start = asyncio.create_task(_start_delivery(self._delivery), name="loosely-sns-workers")
        log.info("SNS started")

    async def _sns_up(self) -> bool:
        """Wait for SNS to start (see `start_sns`); False when it failed to."""
        try:
            await self.sns_ready()
        except Exception:
            return False
        return True

    def stop_waiting(self) -> None:
        """The server begins to stop: parked long polls answer now (`QueueService.stop_waiting`)."""
        if self._context is not None:
            self._context.queues.stop_waiting()

    async def shutdown(self) -> None:
        """Stop the workers, then close the store (which finishes its pending writes)."""
        if self._sns is not None:  # starting SNS is short: let it finish, so that its workers stop below
            await asyncio.gather(self._sns, return_exceptions=True)
        if self._delivery_start is not None:  # still waiting for the store, perhaps
            self._delivery_start.cancel()
            await asyncio.gather(self._delivery_start, return_exceptions=True)
            self._delivery_start = None
        if self._delivery is not None:
            await self._delivery.stop()
            self._delivery = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._context is not None:  # counts left running behind receives end before the store does
            await self._context.queues.settled()
        if self._store is not None:
            await self._store.close()
            self._store = None
            log.info("store closed")

    def advertise(self, public_url: str) -> None:
        """Tell the SNS workers where subscribers reach this server (once its port is bound)."""
        self._public_url = public_url
        if self._delivery is not None:
            self._delivery.runtime.advertise(public_url)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except StoreOpenError as exc:  # uvicorn logs the message; a traceback would only hide it
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- requests ----

    async def _serve_internal(self, scope: Scope, path: str, send: Send) -> bool:
        """Answer SNS delivery routes and ``/_loosely/`` paths; False when ``path`` is for the protocols."""
        if self._delivery is not None:
            routed = await self._delivery.serve(scope["method"], path, scope["query_string"])
            if routed is not None:
                await _respond_raw(send, *routed)
                return True
        if path.startswith(INTERNAL_PREFIX):
            await _respond_raw(send, *self._internal(path))
            return True
        return False

    def _internal(self, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if path == HEALTH_PATH:
            return 200, _JSON_HEADERS, self._health
        return 404, _JSON_HEADERS, b'{"message":"Not Found"}'


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers as text. ASGI servers send names in lowercase; a repeated name keeps its last value.

    A plain loop with names decoded through a small cache: the same dozen names arrive on every request.
    """
    names = _HEADER_NAMES
    headers: dict[str, str] = {}
    for name, value in raw:
        text = names.get(name)
        if text is None:
            text = name.decode("latin-1")
            if len(names) < _HEADER_CACHE_SIZE:
                names[name] = text
        headers[text] = value.decode("latin-1")
    return headers


async def _read_rest(receive: Receive, message: Message) -> bytes | None:
    """The body that began with ``message`` and comes in pieces, or None once it exceeds `MAX_BODY_BYTES`."""
    if message["type"] != "http.request":
        return b""
    first: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return first if len(first) <= MAX_BODY_BYTES else None
    chunks = [first]
    size = len(first)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(headers: dict[str, str]) -> WireResponse:
    return aws_error(
        headers, 413, "RequestEntityTooLarge", f"Request body must be at most {MAX_BODY_BYTES} bytes.", close=True
    )


def _encoded_name(name: str) -> bytes | None:
    """``name`` as bytes for ASGI, or None for Content-Length (always computed from the body actually sent).

    The protocol layer uses a handful of constant names, so each is encoded once and kept.
    """
    encoded = None if name.lower() == "content-length" else name.encode("latin-1")
    if len(_RESPONSE_NAMES) < _HEADER_CACHE_SIZE:
        _RESPONSE_NAMES[name] = encoded
    return encoded


async def _respond(send: Send, response: WireResponse) -> None:
    start, end = _response_messages(response)
    await send(start)
    await send(end)


def _response_messages(response: WireResponse) -> tuple[Message, Message]:
    """The ASGI messages that send ``response``: names encoded once (see `_encoded_name`), the length from the body."""
    body = response.body
    names = _RESPONSE_NAMES
    raw: list[tuple[bytes, bytes]] = []
    for name, value in response.headers:
        encoded = names[name] if name in names else _encoded_name(name)
        if encoded is not None:
            raw.append((encoded, value.encode("latin-1")))
    raw.append((b"content-length", str(len(body)).encode()))
    return (
        {"type": "http.response.start", "status": response.status, "headers": raw},
        {"type": "http.response.body", "body": body},
    )


async def _respond_raw(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---- background workers ----


async def _expiry_worker(queues: QueueService) -> None:
    """Delete messages whose retention ended, about once a second (sooner while there is a backlog)."""
    await _repeat("retention expiry", queues.expire_messages_once, lambda n: 0.0 if n else EXPIRY_INTERVAL_S)


async def _move_worker(queues: QueueService, owner: str) -> None:
    """Advance message move tasks (DLQ redrive); the service paces each step to the task's rate."""

    async def step() -> bool:
        return await queues.run_move_tasks_once(owner)

    await _repeat("message move tasks", step, lambda did: MOVE_BUSY_INTERVAL_S if did else MOVE_IDLE_INTERVAL_S)


async def _start_delivery(delivery: DeliveryEndpoints) -> None:
    """Publish the node's certificate and start the SNS delivery workers, retrying while the store fails.

    Why retried rather than fatal: this runs after the server answers, and a store that is away for a
    while (a database restarting) must not stop a node that serves everything else; requests meanwhile
    fail fast with the store's own retryable errors, and deliveries resume once the workers start.
    """
    failing = False
    pause = DELIVERY_START_FIRST_PAUSE_S
    while True:
        try:
            await delivery.start()
        except Exception:
            if not failing:
                log.exception("starting the SNS delivery workers failed; retrying")
            failing = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, DELIVERY_START_MAX_PAUSE_S)
            continue
        if failing:
            log.info("SNS delivery workers started")
        return


async def _repeat(name: str, step: Callable[[], Awaitable[Any]], pause: Callable[[Any], float]) -> None:
    """Run ``step`` forever; a failure is logged once (until the next success) and retried after a pause."""
    failing = False
    while True:
        try:
            result = await step()
        except Exception:
            if not failing:
                log.exception("%s failed; retrying", name)
            failing = True
            await asyncio.sleep(MOVE_IDLE_INTERVAL_S)
            continue
        if failing:
            log.info("%s recovered", name)
            failing = False
        await asyncio.sleep(pause(result))


def _redact(url: str) -> str:
    """The URL without a password, fit for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def _serves_sns(store: QueueStore) -> bool:
    """SNS runs over the same store when it keeps documents and an outbox (every shipped backend does)."""
    return isinstance(store, DocumentStore) and isinstance(store, OutboxStore)


def _prepare_sns(settings: Settings, with_signer: bool) -> Signer | None:
    """What starting SNS needs that takes time, for a thread: the modules, and the signing key.

    Imports hold the interpreter lock most of the time, but give it up every few milliseconds, so
    the event loop goes on answering meanwhile; making a key is OpenSSL work that releases it.
    """
    import loosely.core.topics.service  # noqa: F401  (the topic service, built on the loop afterwards)
    from loosely.protocols.dispatch import default_services
    from loosely.server.delivery import load_signer

    default_services()  # the SNS protocol table
    return load_signer(settings) if with_signer else None


def _may_be_sns(headers: dict[str, str]) -> bool:
    """Whether a request may be for SNS: anything but AWS JSON (a target, not a form), which SNS does not speak."""
    return "x-amz-target" not in headers or "x-www-form-urlencoded" in headers.get("content-type", "").lower()


def _sns_unavailable(headers: dict[str, str]) -> WireResponse:
    return aws_error(headers, 503, "ServiceUnavailable", "SNS is unavailable: it failed to start on this server.")
