"""The values that cross the boundary between the HTTP server and the protocol adapters.

The server turns an ASGI request into a `WireRequest`, calls `loosely.protocols.dispatch.handle`
and writes the `WireResponse` back. Nothing here knows ASGI, and nothing in the server knows AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING

from loosely.core.frozen import record

if TYPE_CHECKING:  # the services are imported by those who build them (SNS's only once it starts)
    from loosely.core.queues.service import QueueService
    from loosely.core.topics.service import TopicService


@record
class WireRequest:
    """One HTTP request. Header names are lowercase; ``path`` is percent-decoded."""

    method: str
    path: str
    query_string: bytes
    headers: Mapping[str, str]
    body: bytes
    client_host: str | None = None
    scheme: str = "http"


@record(frozen=False)
class WireResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@record
class ServerContext:
    """What the adapters need from the running server: the services and the deployment's identity."""

    queues: QueueService
    default_account_id: str = "000000000000"
    default_region: str = "us-east-1"
    public_url: str | None = None  # scheme://host:port for queue URLs; None = from the request's Host
    topics: TopicService | None = None  # SNS; None when the store keeps no documents
