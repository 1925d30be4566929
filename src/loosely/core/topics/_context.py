"""What the parts of the TopicService share: stores, clock, ids, settings and document helpers.

Topics are read-mostly documents; updates go through `update_document`, a compare-and-set loop,
so two nodes changing one topic at once never lose each other's change.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import field
from typing import Any, TypeVar

from loosely.core.clock import Clock
from loosely.core.documents import Document, NewPublication
from loosely.core.errors import ConcurrentUpdate
from loosely.core.frozen import record
from loosely.core.ids import IdGenerator
from loosely.core.ports import DocumentStore, OutboxStore
from loosely.core.topics.admission import PublishAdmission
from loosely.core.topics.errors import NotFound
from loosely.core.topics.models import TOPIC_KIND, PushDelivery, Topic, TopicKey
from loosely.core.topics.validation import invalid, split_arn
from loosely.core.topics.values import AccountScope, Page, TopicSettings

T = TypeVar("T")
PAGE_SIZE = 100
_CAS_ATTEMPTS = 8
_PARSED_TOPICS = 4096


@record
class TopicContext:
    documents: DocumentStore
    outbox: OutboxStore
    clock: Clock
    ids: IdGenerator
    settings: TopicSettings
    # Asked before Publish records its publications: may hold it back while fan-out is far behind.
    admission: PublishAdmission
    # Topic ARN -> (the document body parsed, the topic): every Publish reads its topic, and parsing
    # the same JSON again each time cost more than the store read. Keyed by the exact body, so any
    # change to the stored topic (a new version, or a topic deleted and created again) is parsed anew.
    _parsed: dict[str, tuple[str, Topic]] = field(default_factory=dict, repr=False, compare=False)
    # Topic ARN -> its document as last read for a Publish. A Publish decides on it without reading
    # the store and has its outbox write guarded by the document's body (see `publication_topic`).
    _seen: dict[str, Document] = field(default_factory=dict, repr=False, compare=False)

    def now(self) -> int:
        return self.clock.now_ms()

    # ---- topics ----

    async def require_topic(self, arn: str, scope: AccountScope, parameter: str = "TopicArn") -> Topic:
        """The topic an ARN names in the caller's region, or AWS's InvalidParameter / NotFound."""
        topic_key(arn, scope, parameter)
        doc = await self.documents.get_document(TOPIC_KIND, arn)
        if doc is None:
            raise NotFound("Topic does not exist")
        return self.parsed_topic(doc)

    async def publication_topic(
        self, arn: str, scope: AccountScope, parameter: str = "TopicArn", *, fresh: bool = False
    ) -> Document:
        """The topic document a Publish decides on: the one last seen, unless ``fresh`` (then the store's).

        The caller must guard its write with the document's body (`DocumentGuard`): a document
        changed or deleted since it was seen then fails the write, and the caller asks again with
        ``fresh``. So a Publish costs no topic read, yet never acts on a topic that is no longer so.
        """
        topic_key(arn, scope, parameter)
        doc = None if fresh else self._seen.get(arn)
        if doc is None:
            doc = await self.documents.get_document(TOPIC_KIND, arn)
            if doc is None:
                self._seen.pop(arn, None)
                raise NotFound("Topic does not exist")
            if len(self._seen) >= _PARSED_TOPICS:
                self._seen.clear()
            self._seen[arn] = doc
        return doc

    def parsed_topic(self, doc: Document) -> Topic:
        """The topic a stored document holds, parsed once per distinct body."""
        cached = self._parsed.get(doc.key)
        if cached is not None and cached[0] == doc.body:
            return cached[1]
        topic = Topic.from_json(doc.body)
        if len(self._parsed) >= _PARSED_TOPICS:
            self._parsed.clear()
        self._parsed[doc.key] = (doc.body, topic)
        return topic

    async def update_topic(self, arn: str, scope: AccountScope, change: Callable[[Topic], Topic | None]) -> Topic:
        """Apply ``change`` to the stored topic (None: no write), retrying when another writer wins."""
        topic_key(arn, scope, "TopicArn")

        async def load() -> tuple[Document, Topic]:
            doc = await self.documents.get_document(TOPIC_KIND, arn)
            if doc is None:
                raise NotFound("Topic does not exist")
            return doc, Topic.from_json(doc.body)

        async def store(doc: Document, topic: Topic) -> None:
            await self.documents.put_document(
                TOPIC_KIND, arn, topic.to_json(), self.now(), expected_version=doc.version
            )

        return await update_document(load, change, store)

    # ---- outbox ----

    async def send_push(self, delivery: PushDelivery) -> None:
        """Record one push (a confirmation, a direct SMS, ...) as a publication of its own."""
        publication = NewPublication(
            topic_arn=delivery.topic_arn, message_id=delivery.message_id, payload=delivery.to_json()
        )
        await self.outbox.add_publications([publication], self.now(), self.settings.dedup_window_ms)

    # ---- paging ----

    async def page(
        self, kind: str, next_token: str | None, parent: str | None = None, prefix: str = ""
    ) -> Page[Document]:
        """One page of documents, 100 at most, with AWS-style opaque NextToken."""
        after = decode_token(next_token)
        docs = await self.documents.list_documents(kind, parent=parent, prefix=prefix, after=after, limit=PAGE_SIZE + 1)
        if len(docs) <= PAGE_SIZE:
            return Page(docs)
        docs = docs[:PAGE_SIZE]
        return Page(docs, encode_token(docs[-1].key))


async def update_document(
    load: Callable[[], Awaitable[tuple[Document, T]]],
    change: Callable[[T], T | None],
    store: Callable[[Document, T], Awaitable[None]],
) -> T:
    """Read, change and compare-and-set write a document until no concurrent writer interferes."""
    for _ in range(_CAS_ATTEMPTS):
        doc, value = await load()
        changed = change(value)
        if changed is None:
            return value
        try:
            await store(doc, changed)
        except ConcurrentUpdate:
            continue
        return changed
    raise ConcurrentUpdate("The resource is being changed by another request; try again.")


def topic_key(arn: str, scope: AccountScope, parameter: str = "TopicArn") -> TopicKey:
    """Parse a topic ARN; AWS refuses ARNs of another region with ``Invalid parameter: TopicArn``."""
    parts = split_arn(arn, parameter)
    key = TopicKey.from_arn(arn)
    if key is None or parts[1] != "aws" or ":" in key.name or key.region != scope.region:
        raise invalid(parameter)
    return key


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        raise invalid("NextToken") from None


def loads(body: str) -> dict[str, Any]:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value
