"""Where the SNS delivery endpoints live, and what the server needs of them before SNS has started.

Why apart from `loosely.server.delivery`: that module brings in the delivery workers and
cryptography, which a node imports only once it is answering (see `App.start_sns`). The request path
needs these few names from the first request on, so they cost start-up nothing.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs

from loosely.protocols._wire import ServerContext, WireRequest

__all__ = [
    "CERTIFICATE_PREFIX",
    "DELIVERY_PATH",
    "OUTBOX_PATH",
    "advertised_url",
    "link_context",
    "reachable",
]

CERTIFICATE_PREFIX = "/SimpleNotificationService-"
OUTBOX_PATH = "/_loosely/outbox"
DELIVERY_PATH = "/_loosely/delivery"

_LINK_ARNS = {"ConfirmSubscription": "TopicArn", "Unsubscribe": "SubscriptionArn"}


def advertised_url(host: str, port: int) -> str:
    """The URL of a server bound to ``host``:``port``, as subscribers on this machine reach it."""
    shown = reachable(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def reachable(host: str) -> str:
    """``host`` as a client on this machine dials it: a wildcard address becomes the loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def link_context(request: WireRequest, context: ServerContext) -> ServerContext:
    """For an unsigned SubscribeURL/UnsubscribeURL visit, the context of the ARN's account and region."""
    if request.method != "GET" or request.path != "/" or not request.query_string:
        return context
    if "authorization" in request.headers or b"X-Amz-Credential" in request.query_string:
        return context
    query = parse_qs(request.query_string.decode("utf-8", "replace"))
    action = (query.get("Action") or [""])[-1]
    member = _LINK_ARNS.get(action)
    arn = (query.get(member) or [""])[-1] if member else ""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[3] or not parts[4]:
        return context
    return dataclasses.replace(context, default_account_id=parts[4], default_region=parts[3])
