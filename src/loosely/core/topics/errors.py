"""Conditions only SNS reports, beside the shared ones in `loosely.core.errors`.

SNS names conditions that SQS does not have (an endpoint that is disabled, a phone number that
opted out, a verification code that does not match), and it keeps "not found" apart for topics,
subscriptions and platform resources (``NotFound``, 404) and for tagged resources and sandbox
numbers (``ResourceNotFound``, also 404). The SNS protocol table maps each class to its code.
"""

from __future__ import annotations

from loosely.core.errors import LooselyError

__all__ = [
    "AuthorizationError",
    "EndpointDisabled",
    "FilterPolicyLimitExceeded",
    "NotFound",
    "OptedOut",
    "PlatformApplicationDisabled",
    "SubscriptionLimitExceeded",
    "TagLimitExceeded",
    "Throttled",
    "UserError",
    "ValidationError",
    "VerificationFailed",
]


class NotFound(LooselyError):
    """A topic, subscription, platform application or endpoint that does not exist."""


class AuthorizationError(LooselyError):
    """The topic's access policy does not allow the caller this action."""


class TagLimitExceeded(LooselyError):
    """A resource would carry more than 50 tags."""


class SubscriptionLimitExceeded(LooselyError):
    """A topic that already has as many subscriptions as SNS allows (100 for a FIFO topic)."""


class FilterPolicyLimitExceeded(LooselyError):
    """A topic that already has as many subscriptions with a filter policy as SNS allows (200)."""


class EndpointDisabled(LooselyError):
    """A publish to a platform endpoint whose ``Enabled`` attribute is false."""


class PlatformApplicationDisabled(LooselyError):
    """A publish to an endpoint of a platform application whose ``Enabled`` attribute is false."""


class OptedOut(LooselyError):
    """A phone number that opted out of receiving SMS."""


class UserError(LooselyError):
    """A request the account's state does not allow (e.g. too many sandbox numbers)."""


class VerificationFailed(LooselyError):
    """A sandbox phone number verified with the wrong one-time password."""


class ValidationError(LooselyError):
    """A parameter outside its modelled constraint (the ``ValidationException`` of newer SNS actions)."""


class Throttled(LooselyError):
    """An action repeated sooner than SNS allows (e.g. OptInPhoneNumber within 30 days)."""
