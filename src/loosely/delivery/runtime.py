"""Assembling and running SNS delivery on one node: transports, the fan-out worker, the delivery worker.

`DeliveryRuntime` is what the server's lifespan starts and stops. Fan-out renders SubscribeURL,
UnsubscribeURL and SigningCertURL from the server's public URL, so it starts once that URL is known
(`advertise`): at once when configured, else when the server has bound its port. Deliveries are
already rendered and start straight away.

Transports by protocol (`build_transports`): http/https over HTTP; email/email-json through the
SMTP relay when one is configured, else into the outbox; sms and application through their
provider (a webhook URL, or the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from loosely.core.clock import Clock
from loosely.core.ports import ArchiveStore, DocumentStore, OutboxStore
from loosely.core.queues.service import QueueService
from loosely.core.topics.delivery_policy import RandomSource
from loosely.core.topics.models import PushDelivery
from loosely.delivery.directory import Directory
from loosely.delivery.fanout import FanOut
from loosely.delivery.options import DeliveryOptions, DeliveryStats
from loosely.delivery.rendering import Renderer, SigningKey
from loosely.delivery.replay import Replayer
from loosely.delivery.sqs import QueueDirectory
from loosely.delivery.transports.base import Attempt, Transport
from loosely.delivery.transports.email import SmtpConfig, SmtpTransport
from loosely.delivery.transports.outbox import OutboxProvider
from loosely.delivery.worker import DeliveryWorker

__all__ = ["OUTBOX", "DeliveryRuntime", "build_transports"]

log = logging.getLogger(__name__)

OUTBOX = "outbox"


def build_transports(
    documents: DocumentStore,
    clock: Clock,
    *,
    smtp: SmtpConfig | None = None,
    sms_provider: str = OUTBOX,
    push_provider: str = OUTBOX,
    http_timeout_s: float = 15.0,
) -> dict[str, Transport]:
    """One transport per protocol; protocols sharing a transport share its connections and limits."""
    outbox = OutboxProvider(documents, clock)
    http: Transport = OnFirstUse(lambda: _http_transport(http_timeout_s))
    mail: Transport = SmtpTransport(smtp) if smtp is not None else outbox

    def provider(setting: str) -> Transport:
        if setting == OUTBOX:
            return outbox
        return OnFirstUse(lambda: _webhook_provider(setting, documents, http_timeout_s))

    return {
        "http": http,
        "https": http,
        "email": mail,
        "email-json": mail,
        "sms": provider(sms_provider),
        "application": provider(push_provider),
    }


class OnFirstUse:
    """A transport built the first time it is used.

    The HTTP client library takes about 0.2 s to import, which start-up (ready in well under half a
    second) must not pay on a node that may never make an HTTP delivery.
    """

    def __init__(self, build: Callable[[], Transport]) -> None:
        self._build = build
        self._transport: Transport | None = None

    def _get(self) -> Transport:
        if self._transport is None:
            self._transport = self._build()
        return self._transport

    def lane(self, push: PushDelivery) -> str:
        return self._get().lane(push)

    async def send(self, push: PushDelivery) -> Attempt:
        return await self._get().send(push)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def _http_transport(timeout_s: float) -> Transport:
    from loosely.delivery.transports.http import HttpTransport

    return HttpTransport(timeout_s)


def _webhook_provider(url: str, documents: DocumentStore, timeout_s: float) -> Transport:
    from loosely.delivery.transports.provider import WebhookProvider

    return WebhookProvider(url, documents, timeout_s)


class DeliveryRuntime:
    """The two workers of one node, sharing caches and counters."""

    def __init__(
        self,
        *,
        outbox: OutboxStore,
        documents: DocumentStore,
        queues: QueueService,
        signer: SigningKey,
        transports: Mapping[str, Transport],
        clock: Clock,
        owner: str,
        public_url: str | None = None,
        options: DeliveryOptions | None = None,
        rng: RandomSource | None = None,
        archive: ArchiveStore | None = None,
    ) -> None:
        self.options = options or DeliveryOptions()
        self.stats = DeliveryStats()
        self.renderer = Renderer(signer, public_url or "http://localhost")
        self._url_known = asyncio.Event()
        if public_url:
            self._url_known.set()
        directory = Directory(documents)
        queue_directory = QueueDirectory(queues)
        self.fanout = FanOut(outbox, directory, queue_directory, self.renderer, clock, owner, self.options, self.stats)
        self.worker = DeliveryWorker(
            outbox, directory, queue_directory, transports, clock, owner, self.options, self.stats, rng
        )
        self._transports = transports
        self._tasks: list[asyncio.Task[None]] = []
        self.replayer = None if archive is None else Replayer(documents, outbox, archive, clock, owner)

    def advertise(self, public_url: str) -> None:
        """Set the URL subscribers reach this server at, unless one was configured."""
        if not self._url_known.is_set():
            self.renderer.set_public_url(public_url)
            self._url_known.set()
            log.info("SNS links point at %s", self.renderer.public_url)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._fan_out(), name="loosely-sns-fanout"),
            asyncio.create_task(self.worker.run(), name="loosely-sns-delivery"),
        ]
        if self.replayer is not None:
            self._tasks.append(asyncio.create_task(self.replayer.run(), name="loosely-sns-replay"))

    async def _fan_out(self) -> None:
        await self._url_known.wait()
        await self.fanout.run()

    async def stop(self) -> None:
        """Stop claiming, let attempts in progress finish (briefly), hand back the rest, close transports."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.worker.stop()
        for transport in {id(t): t for t in self._transports.values()}.values():
            with contextlib.suppress(Exception):
                await transport.aclose()
        self.renderer.close()
