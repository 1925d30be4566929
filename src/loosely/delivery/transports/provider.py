"""SMS and mobile push (and, without an SMTP relay, email): a webhook provider or the built-in outbox.

loosely does not talk to carriers or to APNs/FCM itself. What would be sent is handed to a
*provider*, described by one JSON document (`provider_message`, the contract in docs/delivery.md):

* `WebhookProvider` POSTs it to a URL the operator runs (a bridge to Twilio, FCM, ...). 2xx = sent;
  429, 5xx, timeouts and connection failures are retried by the protocol's policy; any other status
  is a permanent refusal.
* `OutboxProvider` keeps it as a document (kind ``loosely-outbox``) in the store, where
  ``GET /_loosely/outbox`` reads it: tests and development see every SMS, push and mail that would
  have gone out (the SMS sandbox's one-time passwords too), on whichever node sent it. Entries
  older than the retention are trimmed as new ones arrive.
"""

from __future__ import annotations

import json

import aiohttp

from loosely.core.ports import DocumentStore
from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import Attempt
from loosely.delivery.transports.http import DEFAULT_TIMEOUT_S, new_session, post, tls_context
from loosely.delivery.transports.outbox import OUTBOX_KIND, OutboxProvider, clear_outbox, provider_message, read_outbox

__all__ = [
    "OUTBOX_KIND",
    "OutboxProvider",
    "WebhookProvider",
    "clear_outbox",
    "provider_message",
    "read_outbox",
]

_RETRIED_STATUSES = frozenset({408, 429})
_JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}


class WebhookProvider:
    """Hands each message to the operator's HTTP endpoint as JSON."""

    def __init__(self, url: str, documents: DocumentStore | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self._documents = documents
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def lane(self, push: PushDelivery) -> str:
        return self.url

    async def send(self, push: PushDelivery) -> Attempt:
        document = await provider_message(push, self._documents)
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        if self._session is None:  # made on first use: it belongs to the event loop the deliveries run on
            self._session = new_session(self._timeout_s, tls_context(verify=True))
        try:
            status = await post(self._session, self.url, _JSON_HEADERS, body)
        except TimeoutError:
            return Attempt.retry("provider timed out")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Attempt.retry(f"provider unreachable: {type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return Attempt.delivered()
        if status >= 500 or status in _RETRIED_STATUSES:
            return Attempt.retry(f"provider answered HTTP {status}")
        return Attempt.rejected(f"provider refused the message: HTTP {status}")

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
