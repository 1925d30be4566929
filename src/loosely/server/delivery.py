"""The server's side of SNS delivery: its workers, and the endpoints subscribers and operators use.

Endpoints:

* ``GET /SimpleNotificationService-<md5>.pem``: the certificate of the key that signs envelopes
  (every envelope's ``SigningCertURL``), so receivers verify signatures as they do against AWS.
  Nodes that do not share a data directory have keys of their own; each publishes its certificate
  as a document at start, so whichever node a load balancer picks can serve any node's certificate.
* ``GET /?Action=ConfirmSubscription&TopicArn=...&Token=...`` (``SubscribeURL``) and
  ``GET /?Action=Unsubscribe&SubscriptionArn=...`` (``UnsubscribeURL``): visited by endpoints and
  people, unsigned. They go through the SNS API like any request, as the account and region the ARN
  names (an unsigned request would otherwise act as the server's default account), unauthenticated.
* ``GET /_loosely/outbox``: what the outbox provider kept (SMS, mobile push, and mail when no SMTP
  relay is configured), oldest first, as ``{"messages": [...]}``; filters ``type`` (sms, application,
  email, email-json), ``destination``, ``after`` (an entry's ``id``) and ``limit``.
  ``DELETE /_loosely/outbox`` forgets them.
* ``GET /_loosely/delivery``: this node's delivery counters since start.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from urllib.parse import parse_qs

import orjson

from loosely.config import OUTBOX_PROVIDER, Settings
from loosely.core.clock import SystemClock
from loosely.core.ports import ArchiveStore, DocumentStore, OutboxStore, QueueStore
from loosely.core.queues.service import QueueService
from loosely.delivery.runtime import DeliveryRuntime, build_transports
from loosely.delivery.signing import Signer
from loosely.delivery.transports.email import SmtpConfig
from loosely.delivery.transports.outbox import clear_outbox, read_outbox
from loosely.server.links import CERTIFICATE_PREFIX, DELIVERY_PATH, OUTBOX_PATH, advertised_url, link_context, reachable

__all__ = [
    "CERTIFICATE_PREFIX",
    "DELIVERY_PATH",
    "OUTBOX_PATH",
    "DeliveryEndpoints",
    "advertised_url",
    "build_delivery",
    "link_context",
]

log = logging.getLogger(__name__)

CERTIFICATE_KIND = "loosely-signing-certificate"
MAX_OUTBOX_LIMIT = 10_000

RawResponse = tuple[int, list[tuple[bytes, bytes]], bytes]
_JSON = [(b"content-type", b"application/json")]
_PEM = [(b"content-type", b"application/x-pem-file")]


def load_signer(settings: Settings) -> Signer:
    """The node's SNS signing key, made on first start (see `Signer.load_or_create`).

    Making an RSA key takes tens of milliseconds of OpenSSL work that releases the GIL, so start-up
    runs this on a thread while it opens the store.
    """
    return Signer.load_or_create(settings.data_dir)


def build_delivery(
    settings: Settings, store: QueueStore, queues: QueueService, signer: Signer | None = None
) -> DeliveryEndpoints | None:
    """The node's delivery workers and endpoints, when the store keeps documents and an outbox (else SNS is off)."""
    if not (isinstance(store, DocumentStore) and isinstance(store, OutboxStore)):
        return None
    if signer is None:
        signer = load_signer(settings)
    clock = SystemClock()
    smtp = None
    if settings.smtp_host:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
        )
    transports = build_transports(
        store,
        clock,
        smtp=smtp,
        sms_provider=settings.sms_provider or OUTBOX_PROVIDER,
        push_provider=settings.push_provider or OUTBOX_PROVIDER,
    )
    owner = f"{socket.gethostname()}:{os.getpid()}:sns:{uuid.uuid4().hex[:8]}"
    public_url = settings.public_url
    if public_url is None and settings.port != 0:
        public_url = f"http://{reachable(settings.host)}:{settings.port}"
    runtime = DeliveryRuntime(
        outbox=store,
        documents=store,
        queues=queues,
        signer=signer,
        transports=transports,
        clock=clock,
        owner=owner,
        public_url=public_url,
        archive=store if isinstance(store, ArchiveStore) else None,
    )
    return DeliveryEndpoints(runtime, signer.certificate_pem, signer.certificate_name, store)


class DeliveryEndpoints:
    """Serves the delivery endpoints of one running node."""

    def __init__(self, runtime: DeliveryRuntime, signer_pem: bytes, certificate_name: str, store: DocumentStore):
        self.runtime = runtime
        self._pem = signer_pem
        self._certificate_name = certificate_name
        self._store = store

    async def start(self) -> None:
        """Publish this node's certificate for the other nodes, then start the workers."""
        document = orjson.dumps({"pem": self._pem.decode("ascii")}).decode()
        await self._store.put_document(CERTIFICATE_KIND, self._certificate_name, document, SystemClock().now_ms())
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

    async def serve(self, method: str, path: str, query_string: bytes) -> RawResponse | None:
        """The response for a delivery endpoint, or None when the request is not for one."""
        if path.startswith(CERTIFICATE_PREFIX):
            pem = await self._certificate(path[1:]) if method == "GET" else None
            if pem is None:
                return 404, _JSON, b'{"message":"Not Found"}'
            return 200, _PEM, pem
        if path == OUTBOX_PATH:
            return await self._outbox(method, query_string)
        if path == DELIVERY_PATH and method == "GET":
            return 200, _JSON, orjson.dumps(self.runtime.stats.as_dict())
        return None

    async def _certificate(self, name: str) -> bytes | None:
        if name == self._certificate_name:
            return self._pem
        if not name.endswith(".pem") or "/" in name:
            return None
        doc = await self._store.get_document(CERTIFICATE_KIND, name)
        return None if doc is None else str(orjson.loads(doc.body)["pem"]).encode("ascii")

    async def _outbox(self, method: str, query_string: bytes) -> RawResponse:
        if method == "DELETE":
            deleted = await clear_outbox(self._store)
            return 200, _JSON, orjson.dumps({"deleted": deleted})
        if method != "GET":
            return 405, _JSON, b'{"message":"Method Not Allowed"}'
        query = {k: v[-1] for k, v in parse_qs(query_string.decode("utf-8", "replace")).items()}
        limit_text = query.get("limit", "1000")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_OUTBOX_LIMIT:
            return 400, _JSON, orjson.dumps({"message": f"limit must be 1..{MAX_OUTBOX_LIMIT}"})
        messages = await read_outbox(
            self._store,
            protocol=query.get("type"),
            destination=query.get("destination"),
            after=query.get("after", ""),
            limit=int(limit_text),
        )
        return 200, _JSON, orjson.dumps({"messages": messages})
