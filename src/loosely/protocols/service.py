"""What a service adapter plugs into dispatch: its model, its operations table and its errors.

Why: the wire families (``awsjson``, ``awsquery``) and the dispatcher know nothing about SQS or
SNS. A service is a `ServiceSpec`; its handlers are small async functions registered in an
`OperationTable` under the exact AWS action names. Handlers receive decoded `Params` (AWS member
names, already typed by the codec) and an `OperationContext` (who is calling, from where), and
return a plain dict in AWS member names. They never see XML or JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

from loosely.core.errors import InvalidParameterValue, MissingParameter
from loosely.core.frozen import record
from loosely.protocols._wire import ServerContext, WireRequest
from loosely.protocols.errors import ErrorTable
from loosely.protocols.model import ServiceModel

__all__ = [
    "Caller",
    "Handler",
    "OperationContext",
    "OperationSpec",
    "OperationTable",
    "Params",
    "ServiceSpec",
    "caller_from_request",
    "credential_scope",
]

Output = Mapping[str, Any] | None
Handler = Callable[["OperationContext", "Params"], Awaitable[Output]]

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/[^/,\s]+/([^/,\s]+)/([^/,\s]+)/aws4_request")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")


@record
class OperationSpec:
    """One action: its handler and what the compatibility page says about it."""

    name: str
    handler: Handler
    support: str = "supported"  # supported | partial | unsupported
    notes: str = ""


class OperationTable:
    """The actions of one service, registered by decorator under their exact AWS names."""

    def __init__(self) -> None:
        self._ops: dict[str, OperationSpec] = {}

    def operation(self, name: str, *, support: str = "supported", notes: str = "") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if name in self._ops:
                raise ValueError(f"operation {name} registered twice")
            self._ops[name] = OperationSpec(name, handler, support, notes)
            return handler

        return register

    def get(self, name: str) -> OperationSpec | None:
        return self._ops.get(name)

    def __iter__(self) -> Iterator[OperationSpec]:
        return iter(sorted(self._ops.values(), key=lambda op: op.name))

    def __len__(self) -> int:
        return len(self._ops)


@record
class ServiceSpec:
    """A service as dispatch sees it.

    ``signing_name`` is the service in SigV4 credential scopes (``sqs``); ``json_target_prefix``
    is the ``X-Amz-Target`` prefix (``AmazonSQS``), None for Query-only services; ``protocols``
    lists the wire families served, for the compatibility page; ``query_error_detail`` says whether
    the service's XML errors carry an empty ``<Detail/>`` (SQS's do, SNS's do not).
    """

    signing_name: str
    model: ServiceModel
    operations: OperationTable
    errors: ErrorTable
    json_target_prefix: str | None = None
    json_error_namespace: str = ""
    protocols: tuple[str, ...] = ("query",)
    query_error_detail: bool = True

    @property
    def query_version(self) -> str:
        return self.model.api_version


@record
class Caller:
    """Who sent a request, from its SigV4 credential: access key id, account and region."""

    access_key_id: str | None
    account_id: str
    region: str
    signing_service: str | None = None


Scope = tuple[str, str, str]

# Scopes by the Authorization header's text before its signature, and callers by scope and defaults.
# Every request of a client repeats that text, so the credential pattern runs once per client and day.
_SCOPES: dict[str, Scope] = {}
_CALLERS: dict[tuple[Scope | None, str, str], Caller] = {}
_CACHE_MAX = 4_096


def credential_scope(request: WireRequest) -> Scope | None:
    """``(access key id, region, service)`` of the SigV4 credential (header or presigned query), if any."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        prefix = _unsigned_prefix(authorization)
        cached = _SCOPES.get(prefix) if prefix else None
        if cached is not None:
            return cached
        found = _CREDENTIAL_RE.search(authorization)
        if found is not None:
            scope = (found.group(1), found.group(2), found.group(3))
            if prefix and found.end() <= len(prefix):
                _remember(_SCOPES, prefix, scope)
            return scope
    if b"X-Amz-Credential" in request.query_string:
        values = parse_qs(request.query_string.decode("utf-8", "replace")).get("X-Amz-Credential", [])
        found = _CREDENTIAL_RE.search(f"Credential={values[0]}") if values else None
        return (found.group(1), found.group(2), found.group(3)) if found else None
    return None


def _unsigned_prefix(authorization: str) -> str:
    """The header up to ``Signature=``, when it ends in a separator (else "": not cacheable).

    Why the separator: the credential pattern matches no space or comma, so a match inside a prefix
    that ends in one is the first match of every header that starts with that prefix.
    """
    cut = authorization.find("Signature=")
    if cut <= 0 or authorization[cut - 1] not in " ,\t":
        return ""
    return authorization[:cut]


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def caller_from_request(request: WireRequest, ctx: ServerContext) -> Caller:
    """The caller: an access key id of exactly 12 digits names the account, as local tools expect."""
    scope = credential_scope(request)
    cache_key = (scope, ctx.default_account_id, ctx.default_region)
    caller = _CALLERS.get(cache_key)
    if caller is None:
        caller = _caller(scope, ctx.default_account_id, ctx.default_region)
        _remember(_CALLERS, cache_key, caller)
    return caller


def _caller(scope: Scope | None, default_account: str, default_region: str) -> Caller:
    if scope is None:
        return Caller(None, default_account, default_region)
    key, region, service = scope
    account = key if _ACCOUNT_RE.fullmatch(key) else default_account
    return Caller(key, account, region or default_region, service)


@record(frozen=False)
class OperationContext:
    """Everything a handler may need besides its parameters."""

    server: ServerContext
    request: WireRequest
    request_id: str
    caller: Caller

    @property
    def account_id(self) -> str:
        return self.caller.account_id

    @property
    def region(self) -> str:
        return self.caller.region

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` that clients reach this server at: configured, else the Host header."""
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.request.headers.get("host") or "localhost"
        return f"{self.request.scheme}://{host}"


class Params:
    """Decoded parameters with typed accessors; the codec already checked types and required members."""

    __slots__ = ("_data", "_prefix")

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    def __contains__(self, name: str) -> bool:
        return self._data.get(name) is not None

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._data

    def _get(self, name: str, kind: type | tuple[type, ...], required: bool) -> Any:
        value = self._data.get(name)
        if value is None:
            if required:
                raise MissingParameter(f"The request must contain the parameter {self._prefix}{name}.")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidParameterValue(f"Value {value!r} for parameter {self._prefix}{name} is invalid.")
        return value

    def string(self, name: str) -> str:
        value: str = self._get(name, str, True)
        return value

    def opt_string(self, name: str) -> str | None:
        value: str | None = self._get(name, str, False)
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, int, True)
        return value

    def opt_integer(self, name: str) -> int | None:
        value: int | None = self._get(name, int, False)
        return value

    def strings(self, name: str) -> list[str]:
        """A list of strings; absent means empty."""
        value: list[Any] = self._get(name, list, False) or []
        return [str(v) for v in value]

    def string_map(self, name: str) -> dict[str, str]:
        """A map of strings; absent means empty."""
        value: dict[Any, Any] = self._get(name, dict, False) or {}
        return {str(k): str(v) for k, v in value.items()}

    def struct_map(self, name: str) -> dict[str, Params]:
        """A map of structures, each wrapped in `Params`."""
        value: dict[str, Any] = self._get(name, dict, False) or {}
        return {k: Params(v, f"{self._prefix}{name}.{k}.") for k, v in value.items()}

    def structs(self, name: str) -> list[Params]:
        """A list of structures (batch entries), each wrapped in `Params`."""
        value: list[Any] = self._get(name, list, False) or []
        return [Params(v, f"{self._prefix}{name}.{i}.") for i, v in enumerate(value, 1)]
