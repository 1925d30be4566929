"""The built-in provider: what would have been sent, kept as documents in the store.

SMS, mobile push (and, without an SMTP relay, email) are handed to a *provider*, described by one
JSON document (`provider_message`, the contract in docs/delivery.md). `OutboxProvider` keeps it as a
document (kind ``loosely-outbox``) in the store, where ``GET /_loosely/outbox`` reads it: tests and
development see every SMS, push and mail that would have gone out (the SMS sandbox's one-time
passwords too), on whichever node sent it. Entries older than the retention are trimmed as new ones
arrive. The webhook provider (`loosely.delivery.transports.provider`) sends the same document to a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loosely.core.clock import Clock
from loosely.core.ports import DocumentStore
from loosely.core.topics.envelope import iso_timestamp
from loosely.core.topics.models import PushDelivery
from loosely.core.topics.values import ENDPOINT_KIND
from loosely.delivery.rendering import DISPLAY_NAME_HEADER, platform_of
from loosely.delivery.transports.base import Attempt

__all__ = ["OUTBOX_KIND", "OutboxProvider", "clear_outbox", "provider_message", "read_outbox"]

OUTBOX_KIND = "loosely-outbox"
DEFAULT_RETENTION_MS = 24 * 3600 * 1000
_TRIM_EVERY = 64
_TRIM_BATCH = 256


async def provider_message(push: PushDelivery, documents: DocumentStore | None) -> dict[str, Any]:
    """The provider's JSON document for one delivery (see docs/delivery.md for every field)."""
    message: dict[str, Any] = {
        "type": push.protocol,
        "kind": push.kind,
        "destination": push.endpoint,
        "messageId": push.message_id,
        "topicArn": push.topic_arn or None,
        "subscriptionArn": push.subscription_arn,
        "subject": push.subject,
        "message": push.body,
        "timestamp": iso_timestamp(push.timestamp_ms) if push.timestamp_ms is not None else None,
    }
    if push.protocol == "application":
        message["platform"] = platform_of(push.endpoint)
        message.update(await _endpoint_details(push.endpoint, documents))
    headers = {k: v for k, v in push.headers.items() if k != DISPLAY_NAME_HEADER}
    if headers:
        message["headers"] = headers
    if push.headers.get(DISPLAY_NAME_HEADER):
        message["displayName"] = push.headers[DISPLAY_NAME_HEADER]
    return message


async def _endpoint_details(endpoint_arn: str, documents: DocumentStore | None) -> dict[str, Any]:
    """The device token and custom user data of a platform endpoint, which a push provider needs."""
    if documents is None:
        return {}
    doc = await documents.get_document(ENDPOINT_KIND, endpoint_arn)
    if doc is None:
        return {}
    body = json.loads(doc.body)
    attributes: Mapping[str, Any] = body.get("attributes", body) if isinstance(body, dict) else {}
    return {"token": attributes.get("Token"), "customUserData": attributes.get("CustomUserData")}


class OutboxProvider:
    """Keeps what would have been sent, as documents readable at ``GET /_loosely/outbox``."""

    def __init__(self, documents: DocumentStore, clock: Clock, retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        self._documents = documents
        self._clock = clock
        self._retention_ms = retention_ms
        self._writes = 0

    def lane(self, push: PushDelivery) -> str:
        return "outbox"

    async def send(self, push: PushDelivery) -> Attempt:
        now = self._clock.now_ms()
        document = await provider_message(push, self._documents)
        document["recordedAt"] = iso_timestamp(now)
        key = f"{now:015d}/{push.message_id}/{push.protocol}/{push.endpoint}"
        document["id"] = key
        await self._documents.put_document(OUTBOX_KIND, key, json.dumps(document, ensure_ascii=False), now)
        self._writes += 1
        if self._writes % _TRIM_EVERY == 0:
            await self.trim(now)
        return Attempt.delivered()

    async def trim(self, now_ms: int) -> int:
        """Delete the entries older than the retention (the oldest come first in key order)."""
        cutoff = f"{max(now_ms - self._retention_ms, 0):015d}"
        deleted = 0
        for doc in await self._documents.list_documents(OUTBOX_KIND, limit=_TRIM_BATCH):
            if doc.key >= cutoff:
                break
            deleted += await self._documents.delete_document(OUTBOX_KIND, doc.key)
        return deleted

    async def aclose(self) -> None:
        return None


async def read_outbox(
    documents: DocumentStore,
    *,
    protocol: str | None = None,
    destination: str | None = None,
    after: str = "",
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Recorded messages, oldest first, optionally of one protocol and/or destination, after an ``id``."""
    found: list[dict[str, Any]] = []
    cursor = after
    while len(found) < limit:
        docs = await documents.list_documents(OUTBOX_KIND, after=cursor, limit=_TRIM_BATCH)
        for doc in docs:
            entry = json.loads(doc.body)
            if (protocol is None or entry.get("type") == protocol) and (
                destination is None or entry.get("destination") == destination
            ):
                found.append(entry)
                if len(found) >= limit:
                    break
        if len(docs) < _TRIM_BATCH:
            break
        cursor = docs[-1].key
    return found


async def clear_outbox(documents: DocumentStore) -> int:
    """Delete every recorded message; return how many."""
    deleted = 0
    while True:
        docs = await documents.list_documents(OUTBOX_KIND, limit=_TRIM_BATCH)
        if not docs:
            return deleted
        for doc in docs:
            deleted += await documents.delete_document(OUTBOX_KIND, doc.key)
