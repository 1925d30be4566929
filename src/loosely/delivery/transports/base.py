"""The one interface every delivery transport implements, and the three outcomes of an attempt.

A transport sends one rendered `PushDelivery` and says what happened; it never retries, never sleeps
and never decides about dead letters: the delivery worker does that, by the subscription's policy.

* ``DELIVERED``: the endpoint took it (HTTP 2xx, SMTP accepted, provider accepted).
* ``RETRY``: a server-side failure (timeout, refused connection, HTTP 5xx or 429, SMTP 4xx): try
  again later by the retry policy.
* ``REJECTED``: a client-side failure that retrying cannot fix (HTTP 4xx, SMTP 5xx, an endpoint that
  does not exist): as on AWS, no more retries; the message goes to the dead-letter queue if the
  subscription has one.
"""

from __future__ import annotations

import enum
from typing import Protocol

from loosely.core.frozen import record
from loosely.core.topics.models import PushDelivery

__all__ = ["Attempt", "AttemptStatus", "Transport"]


class AttemptStatus(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


@record
class Attempt:
    """The outcome of one attempt; ``error`` says why it failed, in words fit for logs."""

    status: AttemptStatus
    error: str | None = None

    @classmethod
    def delivered(cls) -> Attempt:
        return cls(AttemptStatus.DELIVERED)

    @classmethod
    def retry(cls, error: str) -> Attempt:
        return cls(AttemptStatus.RETRY, error)

    @classmethod
    def rejected(cls, error: str) -> Attempt:
        return cls(AttemptStatus.REJECTED, error)


class Transport(Protocol):
    """Sends rendered deliveries of one or more protocols."""

    def lane(self, push: PushDelivery) -> str:
        """The endpoint a delivery goes to, as a key: the worker bounds concurrency per key."""
        ...

    async def send(self, push: PushDelivery) -> Attempt:
        """Make one attempt. Must not raise for endpoint failures: they are `Attempt` values."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
