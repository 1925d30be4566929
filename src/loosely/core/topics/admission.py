"""Admission of new publications: the point where Publish may be held back before it is recorded.

Publish only writes an outbox publication; the fan-out to subscribers happens later, in the
delivery workers. A node that is asked to publish faster than its fan-out can keep up with would
otherwise acknowledge every publication at once and let the backlog (and the delay of every
delivery) grow without end. The topic service asks a `PublishAdmission` before it records
publications; the delivery workers provide one that holds Publish back while fan-out is too far
behind (`loosely.delivery.backlog`). Nothing is refused: a held Publish is answered later.

Only Publish and PublishBatch (to topics, phone numbers and platform endpoints) are admitted this
way; control-plane writes (subscription confirmations, say) never wait.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["AdmitAll", "PublishAdmission"]


class PublishAdmission(Protocol):
    async def admit(self, publications: int) -> None:
        """Return once ``publications`` new publications may be recorded."""


class AdmitAll:
    """Admission without delivery workers (or in tests of the topic service alone): never waits."""

    async def admit(self, publications: int) -> None:
        return None
