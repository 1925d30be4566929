"""Queue URLs: ``{base}/{account}/{name}`` out, any host with that path in.

Why any host: SDKs send requests to the host of the QueueUrl they were given, and a URL minted
behind a proxy or for ``localhost`` must keep working when the same server is reached by another
name. The region comes from an AWS-style host (``sqs.<region>.amazonaws.com``) when there is one,
else from the caller's credential.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from loosely.core.errors import QueueDoesNotExist
from loosely.core.queues.models import QueueKey

__all__ = ["key_from_url", "parse_queue_url", "queue_path", "queue_url"]

_AWS_HOST_RE = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_PATH_RE = re.compile(r"/+([^/]+)/([^/]+)/*")
_BARE_NAME_RE = re.compile(r"[A-Za-z0-9_\-]{1,80}(?:\.fifo)?")


def queue_url(base_url: str, key: QueueKey) -> str:
    return f"{base_url.rstrip('/')}/{key.account_id}/{key.name}"


def queue_path(path: str) -> tuple[str, str] | None:
    """``(account, name)`` when ``path`` has the shape of a queue's path, else None."""
    found = _PATH_RE.fullmatch(path)
    return (found.group(1), found.group(2)) if found else None


# Keys by (QueueUrl, region, account): clients repeat the same few URLs on every call.
_KEYS: dict[tuple[str, str, str | None], QueueKey] = {}
_KEYS_MAX = 4_096


def key_from_url(url: str, default_region: str, default_account: str | None = None) -> QueueKey:
    """`parse_queue_url`, remembered: a URL names the same queue every time (QueueKey is immutable)."""
    cache_key = (url, default_region, default_account)
    key = _KEYS.get(cache_key)
    if key is None:
        key = parse_queue_url(url, default_region, default_account)
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        _KEYS[cache_key] = key
    return key


def parse_queue_url(url: str, default_region: str, default_account: str | None = None) -> QueueKey:
    """The queue a QueueUrl names.

    AWS also accepts a bare queue name as the QueueUrl, meaning the caller's own queue of that name
    (``default_account``). Any other URL without an ``/{account}/{name}`` path names no queue: AWS
    answers NonExistentQueue for it (InvalidAddress is about the endpoint a request was sent to, not
    about the QueueUrl).
    """
    if default_account is not None and _BARE_NAME_RE.fullmatch(url):
        return QueueKey(account_id=default_account, region=default_region, name=url)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    named = queue_path(parts.path) if parts is not None else None
    if parts is None or named is None:
        raise QueueDoesNotExist()
    host = _AWS_HOST_RE.fullmatch(parts.hostname or "")
    region = host.group(1) if host else default_region
    return QueueKey(account_id=named[0], region=region, name=named[1])
