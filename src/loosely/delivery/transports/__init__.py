"""Delivery transports: HTTP/S, SMTP mail, and SMS / mobile push providers (webhook or outbox)."""

from loosely.delivery.transports.base import Attempt, AttemptStatus, Transport

__all__ = ["Attempt", "AttemptStatus", "Transport"]
