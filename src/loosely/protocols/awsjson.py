"""The AWS JSON 1.0 wire family: ``X-Amz-Target`` names the operation, bodies are JSON.

Why a type check: the service behind expects the types the model promises (an int for
``MaxNumberOfMessages``, bytes for a ``BinaryValue``). AWS rejects a body that is not JSON or whose
values have the wrong JSON type with a ``SerializationException`` before any validation, and so
does this codec; unknown members are ignored, and ``null`` counts as absent, as AWS does.

Errors carry ``__type`` (the error shape, namespaced) and ``message`` in the body and the Query
code in ``x-amzn-query-error: <Code>;Sender|Receiver``: SDKs of query-compatible services (SQS)
use that header to raise the same error codes as over Query.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from loosely.core.errors import MissingParameter
from loosely.protocols.errors import SERIALIZATION, AwsError, WireError
from loosely.protocols.model import Shape

__all__ = ["CONTENT_TYPE", "decode", "encode_error", "encode_response"]

CONTENT_TYPE = "application/x-amz-json-1.0"
_INT_BOUNDS = {"integer": 2**31, "long": 2**63}
_JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def _serialization_error(expected: str, value: Any, path: str) -> WireError:
    found = _JSON_TYPE_NAMES.get(type(value), "value")
    where = f" for {path}" if path else ""
    return WireError(SERIALIZATION, f"Expected {expected}{where}, found {found}.")


def decode(shape: Shape | None, body: bytes) -> dict[str, Any]:
    """The operation input as a dict in AWS member names, type-checked against ``shape``.

    Only the input's own required members are checked here; nested ones are the service's to
    report, as in the Query codec.
    """
    try:
        document = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise WireError(SERIALIZATION, "The request body is not valid JSON.") from exc
    if not isinstance(document, dict):
        raise _serialization_error("an object", document, "")
    if shape is None:
        return {}
    return _structure(shape, document, "", check_required=True)


def _structure(shape: Shape, value: Any, path: str, check_required: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _serialization_error("an object", value, path)
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            out[name] = _value(member.shape, item, f"{path}{name}")
    missing = sorted(shape.required - out.keys()) if check_required else []
    if missing:
        raise MissingParameter(f"The request must contain the parameter {missing[0]}.")
    return out


def _value(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, f"{path}.")
    if kind == "list":
        if not isinstance(value, list) or shape.member is None:
            raise _serialization_error("an array", value, path)
        item = shape.member.shape
        return [_value(item, v, f"{path}.{i}") for i, v in enumerate(value, 1) if v is not None]
    if kind == "map":
        if not isinstance(value, dict) or shape.value is None:
            raise _serialization_error("an object", value, path)
        inner = shape.value.shape
        return {k: _value(inner, v, f"{path}.{k}") for k, v in value.items() if v is not None}
    return _scalar(kind, value, path)


def _scalar(kind: str, value: Any, path: str) -> Any:
    if kind in _INT_BOUNDS:
        if isinstance(value, int) and not isinstance(value, bool) and -_INT_BOUNDS[kind] <= value < _INT_BOUNDS[kind]:
            return value
        raise _serialization_error("an integer", value, path)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise _serialization_error("a boolean", value, path)
    if kind in ("double", "float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _serialization_error("a number", value, path)
    if not isinstance(value, str):
        raise _serialization_error("a string", value, path)
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WireError(SERIALIZATION, f"Expected base64 data for {path}.") from exc
    return value


# ---- responses ----


def _encode(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _encode_structure(shape, value)
    if kind == "list" and shape.member is not None:
        item = shape.member.shape
        return [_encode(item, v) for v in value]
    if kind == "map" and shape.value is not None:
        inner = shape.value.shape
        return {str(k): _encode(inner, v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def _encode_structure(shape: Shape, value: Mapping[str, Any]) -> dict[str, Any]:
    """Members that have a value. Empty lists are left out even where the model marks them required:
    AWS's JSON services do so (a batch without failures has no ``Failed``), and SDKs such as the Java
    SDK's ``hasFailed()`` tell "absent" from "empty". A map is written whenever the handler gives one
    (``"Tags": {}``, ``"Attributes": {}``), as AWS does; handlers pass None to leave one out."""
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        if member.shape.type_name == "list" and not item:
            continue
        out[name] = _encode(member.shape, item)
    return out


def encode_response(shape: Shape | None, output: Mapping[str, Any] | None) -> bytes:
    """The JSON body of a successful response (``{}`` for operations without output)."""
    if shape is None or not output:
        return orjson.dumps(_encode_structure(shape, {}) if shape is not None else {})
    return orjson.dumps(_encode_structure(shape, output))


def error_type(error: AwsError, namespace: str) -> str:
    """The ``__type`` value: the error's own namespaced name, or ``<namespace>#<code>``."""
    return error.json_code if "#" in error.json_code else f"{namespace}#{error.json_code}"


def encode_error(error: AwsError, message: str, namespace: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The JSON body and the extra headers of an error response."""
    body = orjson.dumps({"__type": error_type(error, namespace), "message": message})
    return body, [("x-amzn-query-error", f"{error.query_code};{error.fault}")]
