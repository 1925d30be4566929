"""The one entry point from the server into the AWS protocols: `handle`.

Order of work for every request:

1. pick the wire family: ``X-Amz-Target`` names a JSON operation; otherwise the request is Query
   (form body and/or query string with ``Action=``);
2. pick the service: the target's prefix (``AmazonSQS``) for JSON; for Query the ``Version``
   parameter, else the SigV4 credential's service, else the first service that has the action;
3. decode the parameters against the operation's input shape, call the handler, encode the output;
4. turn any error into the AWS shape of that wire family. Unknown actions get AWS's error, never a
   guess; an unexpected exception is logged and becomes a 500 ``InternalFailure`` without details.

Services plug in through `ServiceSpec`; `SERVICES` lists the default ones. SQS is imported with this
module; SNS, which a node needs only once SNS requests come, when first asked for (`default_services`),
so that a server starts without building its tables: AWS JSON requests route among SQS alone until SNS
is loaded (SNS speaks Query only), and Query requests, which may be for either, load it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loosely.core.errors import LooselyError
from loosely.core.frozen import record
from loosely.core.ids import RandomIds
from loosely.protocols import awsjson, awsquery
from loosely.protocols._wire import ServerContext, WireRequest, WireResponse
from loosely.protocols.errors import (
    INTERNAL_FAILURE,
    INVALID_ACTION,
    MISSING_ACTION,
    UNKNOWN_OPERATION,
    AwsError,
    WireError,
)
from loosely.protocols.model import OperationModel, Shape
from loosely.protocols.service import (
    Handler,
    OperationContext,
    Params,
    ServiceSpec,
    caller_from_request,
    credential_scope,
)
from loosely.protocols.sqs import SQS
from loosely.protocols.sqs.urls import queue_path

__all__ = ["SERVICES", "default_services", "handle"]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    SERVICES: tuple[ServiceSpec, ...]  # the default services, SQS then SNS: see `__getattr__`

# The default services once SNS is loaded; until then AWS JSON requests route among these alone.
_DEFAULTS: tuple[ServiceSpec, ...] | None = None
_SQS_ONLY: tuple[ServiceSpec, ...] = (SQS,)


def default_services() -> tuple[ServiceSpec, ...]:
    """SQS and SNS, loading SNS's tables on the first call."""
    global _DEFAULTS
    if _DEFAULTS is None:
        from loosely.protocols.sns import SNS

        _DEFAULTS = (SQS, SNS)
    return _DEFAULTS


def __getattr__(name: str) -> Any:
    """``SERVICES``, the default services, loaded when first named."""
    if name == "SERVICES":
        return default_services()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FORM_TYPE = "application/x-www-form-urlencoded"
# Request ids are random UUIDs like AWS's; drawn from a pooled urandom source, not a syscall each.
_REQUEST_IDS = RandomIds()


@record
class _Call:
    """A routed request: which service, which wire family, which action, and the Query form if any.

    The operation's model and handler are looked up once, when the call is routed (and JSON routes are
    kept), so that executing it reads fields instead of repeating the lookups per request.
    """

    service: ServiceSpec
    protocol: str  # "json" | "query"
    action: str
    form: dict[str, str]
    operation: OperationModel
    handler: Handler


def _routed(service: ServiceSpec, protocol: str, action: str, form: dict[str, str]) -> _Call:
    spec = service.operations.get(action)
    assert spec is not None  # routing only returns registered actions
    return _Call(service, protocol, action, form, service.model.operations[action], spec.handler)


# Whether a Content-Type names a form, by its exact text: clients repeat one or two values on every request.
_FORM_CONTENT_TYPES: dict[str, bool] = {}
_CONTENT_TYPES_MAX = 256


def _is_form(content_type: str) -> bool:
    known = _FORM_CONTENT_TYPES.get(content_type)
    if known is None:
        known = content_type.partition(";")[0].strip().lower() == _FORM_TYPE
        if len(_FORM_CONTENT_TYPES) < _CONTENT_TYPES_MAX:
            _FORM_CONTENT_TYPES[content_type] = known
    return known


def _is_json(request: WireRequest) -> bool:
    headers = request.headers
    return "x-amz-target" in headers and not _is_form(headers.get("content-type", ""))


# X-Amz-Target values seen on the default services, routed once: a target names one operation for good.
_JSON_ROUTES: dict[str, _Call] = {}
_JSON_ROUTES_MAX = 1_024


def _route_json(request: WireRequest, services: Sequence[ServiceSpec] | None) -> _Call:
    """The JSON call ``X-Amz-Target`` names; ``services`` None means the defaults (routes kept)."""
    target = request.headers["x-amz-target"]
    if services is None:
        cached = _JSON_ROUTES.get(target)
        if cached is not None:
            return cached
    prefix, _, action = target.partition(".")
    call = _json_call(services if services is not None else (_DEFAULTS or _SQS_ONLY), prefix, action)
    if call is None and services is None and _DEFAULTS is None:  # not SQS's: SNS, once loaded, may know it
        call = _json_call(default_services(), prefix, action)
    if call is None:
        raise WireError(UNKNOWN_OPERATION, f"Unknown operation {target}.")
    if services is None and len(_JSON_ROUTES) < _JSON_ROUTES_MAX:
        _JSON_ROUTES[target] = call
    return call


def _json_call(services: Sequence[ServiceSpec], prefix: str, action: str) -> _Call | None:
    for service in services:
        if service.json_target_prefix == prefix and service.operations.get(action) is not None:
            return _routed(service, "json", action, {})
    return None


def _query_service(request: WireRequest, form: dict[str, str], services: Sequence[ServiceSpec] | None) -> ServiceSpec:
    version = form.get("Version")
    scope = credential_scope(request)
    signing = scope[2] if scope else None
    action = form.get("Action", "")
    if services is not None:
        return _pick_query_service(version, signing, action, services)
    key = (version, signing, action)
    service = _QUERY_SERVICES.get(key)
    if service is None:
        service = _pick_query_service(version, signing, action, default_services())
        if len(_QUERY_SERVICES) < _QUERY_SERVICES_MAX:
            _QUERY_SERVICES[key] = service
    return service


# The Query service of each (Version, signing service, Action) seen on the default services: clients
# repeat a handful of them, and the answer depends on nothing else.
_QUERY_SERVICES: dict[tuple[str | None, str | None, str], ServiceSpec] = {}
_QUERY_SERVICES_MAX = 1_024


def _pick_query_service(
    version: str | None, signing: str | None, action: str, services: Sequence[ServiceSpec]
) -> ServiceSpec:
    """The API version names the service; else the credential's signing service; else the first with the action."""
    query_services = [s for s in services if "query" in s.protocols]
    for matches in (
        lambda s: version is not None and s.query_version == version,
        lambda s: signing is not None and s.signing_name == signing,
        lambda s: s.operations.get(action) is not None,
    ):
        for service in query_services:
            if matches(service):
                return service
    return query_services[0]


def _route_query(request: WireRequest, services: Sequence[ServiceSpec] | None) -> _Call:
    content_type = request.headers.get("content-type", "")
    is_form = _is_form(content_type) or (request.method == "POST" and not content_type.partition(";")[0].strip())
    form = awsquery.parse_form(request.body if is_form else b"", request.query_string)
    service = _query_service(request, form, services)
    action = form.get("Action")
    if not action:
        raise WireError(MISSING_ACTION, "The request must contain the parameter Action.")
    if service.operations.get(action) is None or action not in service.model.operations:
        raise _UnknownAction(service, _invalid_action_message(service, action, form))
    if not _valid_on_path(service, action, request.path):
        raise WireError(INVALID_ACTION, f"The action {action} is not valid for this endpoint.")
    return _routed(service, "query", action, form)


# The XML namespace of SNS's answer to an action it does not know (AWS's generic fault document).
_AWS_FAULT_NAMESPACE = "http://webservices.amazon.com/AWSFault/2005-15-09"


class _UnknownAction(WireError):
    """An action the request's service does not have: answered as that service answers it."""

    def __init__(self, service: ServiceSpec, message: str) -> None:
        super().__init__(INVALID_ACTION, message)
        self.service = service
        self.namespace = _AWS_FAULT_NAMESPACE if service.signing_name == "sns" else None


def _invalid_action_message(service: ServiceSpec, action: str, form: dict[str, str]) -> str:
    """SQS and SNS word an unknown action differently (SNS's wording as AWS answers it)."""
    if service.signing_name == "sns":
        return f"Could not find operation {action} for version {form.get('Version') or service.query_version}"
    return f"The action {action} is not valid for this endpoint."


def _valid_on_path(service: ServiceSpec, action: str, path: str) -> bool:
    """A queue's URL takes only that queue's actions (and GetQueueUrl); AWS rejects CreateQueue or ListQueues there."""
    if service.signing_name != "sqs" or queue_path(path) is None or action == "GetQueueUrl":
        return True
    shape = service.model.operations[action].input
    return shape is not None and "QueueUrl" in shape.members


def _bare_queue_request(request: WireRequest) -> WireResponse | None:
    """A request to a queue's URL naming no action at all: AWS answers 404 ``UnknownOperationException``."""
    if "x-amz-target" in request.headers or queue_path(request.path) is None:
        return None
    if b"Action=" in request.query_string or b"Action=" in request.body:
        return None
    body = b'<?xml version="1.0"?><UnknownOperationException/>'
    return WireResponse(status=404, headers=[("content-type", awsquery.CONTENT_TYPE)], body=body)


def _with_path_queue_url(form: dict[str, str], shape: Shape | None, octx: OperationContext) -> dict[str, str]:
    """Older SDKs POST Query requests to the queue URL itself and leave QueueUrl out of the form."""
    path = octx.request.path
    if shape is None or "QueueUrl" not in shape.members or "QueueUrl" in form or queue_path(path) is None:
        return form
    return {**form, "QueueUrl": octx.base_url + path}


async def _execute(call: _Call, octx: OperationContext) -> WireResponse:
    operation = call.operation
    if call.protocol == "json":
        output = await call.handler(octx, Params(awsjson.decode(operation.input, octx.request.body)))
        body = awsjson.encode_response(operation.output, output)
        return WireResponse(200, [_JSON_CONTENT_TYPE, ("x-amzn-RequestId", octx.request_id)], body)
    params = awsquery.decode(operation.input, _with_path_queue_url(call.form, operation.input, octx))
    output = await call.handler(octx, Params(params))
    body = awsquery.encode_response(operation, output, octx.request_id, call.service.model.xml_namespace)
    return WireResponse(200, [_XML_CONTENT_TYPE, ("x-amzn-RequestId", octx.request_id)], body)


_JSON_CONTENT_TYPE = ("content-type", awsjson.CONTENT_TYPE)
_XML_CONTENT_TYPE = ("content-type", awsquery.CONTENT_TYPE)


def _response(
    status: int, content_type: str, body: bytes, request_id: str, extra: list[tuple[str, str]] | None = None
) -> WireResponse:
    headers = [("content-type", content_type), ("x-amzn-RequestId", request_id), *(extra or [])]
    return WireResponse(status=status, headers=headers, body=body)


def _error_response(
    error: AwsError, message: str, protocol: str, service: ServiceSpec, request_id: str, namespace: str | None = None
) -> WireResponse:
    if protocol == "json":
        body, extra = awsjson.encode_error(error, message, service.json_error_namespace)
        return _response(error.status, awsjson.CONTENT_TYPE, body, request_id, extra)
    xml_namespace = namespace or service.model.xml_namespace
    detail = service.query_error_detail
    body = awsquery.encode_error(error, error.query_message or message, request_id, xml_namespace, detail)
    return _response(error.status, awsquery.CONTENT_TYPE, body, request_id)


async def handle(
    request: WireRequest, ctx: ServerContext, services: Sequence[ServiceSpec] | None = None
) -> WireResponse:
    """Serve one AWS API request. Never raises: every failure becomes an AWS-shaped error response.

    ``services`` defaults to `SERVICES` (SQS, then SNS once a request may be for it).
    """
    request_id = _REQUEST_IDS.uuid()
    protocol = "json" if _is_json(request) else "query"
    service = services[0] if services else SQS
    bare = _bare_queue_request(request)
    if bare is not None:
        return bare
    try:
        call = _route_json(request, services) if protocol == "json" else _route_query(request, services)
        service = call.service
        octx = OperationContext(ctx, request, request_id, caller_from_request(request, ctx))
        return await _execute(call, octx)
    except (LooselyError, WireError) as exc:
        namespace = None
        if isinstance(exc, _UnknownAction):
            service, namespace = exc.service, exc.namespace
        return _error_response(service.errors.lookup(exc), exc.message, protocol, service, request_id, namespace)
    except Exception:
        logger.exception("internal failure serving request %s", request_id)
        message = "We encountered an internal error. Please try again."
        return _error_response(INTERNAL_FAILURE, message, protocol, service, request_id)
