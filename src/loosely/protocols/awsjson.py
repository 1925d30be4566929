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
from collections.abc import Callable, Mapping
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
    try:
        decoded: dict[str, Any] = _input_decoder(shape)(document)
    except _Slow:
        # Something is off: the walk with paths finds it and words the error exactly.
        return _structure(shape, document, "", check_required=True)
    return decoded


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


# ---- compiled codecs ----
#
# Why: walking the shape per request, building a path string per member, costs more than the rest of
# the protocol layer together. Each shape is compiled once into closures that check exact JSON types
# (orjson yields exact dict/list/str/int/float/bool) and build no paths. Any doubt raises `_Slow`,
# and `decode` re-runs the walk above, which finds the problem and words the error as before; the
# compiled decoders therefore never word errors and accept exactly what the walk accepts.

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]
Codec = Callable[[Any], Any]  # either of the two: both map a value to a value


class _Slow(Exception):
    """The compiled decoder met something it leaves to the walk with paths."""


_DECODERS: dict[Shape, Decoder] = {}
_INPUT_DECODERS: dict[Shape, Decoder] = {}
_ENCODERS: dict[Shape, Encoder] = {}


def _input_decoder(shape: Shape) -> Decoder:
    """An operation input: a structure whose own required members must be present."""
    found = _INPUT_DECODERS.get(shape)
    if found is None:
        found = _INPUT_DECODERS[shape] = _with_required(_decoder(shape), tuple(sorted(shape.required)))
    return found


def _with_required(structure: Decoder, required: tuple[str, ...]) -> Decoder:
    if not required:
        return structure

    def decode_input(value: Any) -> Any:
        out = structure(value)
        for name in required:
            if name not in out:
                raise _Slow
        return out

    return decode_input


def _decoder(shape: Shape) -> Decoder:
    """The compiled decoder of ``shape``; recursive shapes go through a forwarding stub while compiling."""
    return _compiled(_DECODERS, shape, _compile_decoder)


def _compile_decoder(shape: Shape) -> Decoder:
    kind = shape.type_name
    if kind == "structure":
        return _structure_decoder({name: _decoder(m.shape) for name, m in shape.members.items()})
    if kind == "list":
        return _list_decoder(_decoder(shape.member.shape)) if shape.member is not None else _always_slow
    if kind == "map":
        return _map_decoder(_decoder(shape.value.shape)) if shape.value is not None else _always_slow
    if kind in _INT_BOUNDS:
        return _integer_decoder(_INT_BOUNDS[kind])
    return _SCALAR_DECODERS.get(kind, _decode_string)


def _structure_decoder(members: dict[str, Decoder]) -> Decoder:
    def decode_structure(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _Slow
        out: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue
            member = members.get(name)
            if member is _decode_string:
                if type(item) is not str:
                    raise _Slow
                out[name] = item
            elif member is not None:
                out[name] = member(item)
        return out

    return decode_structure


def _list_decoder(item: Decoder) -> Decoder:
    def decode_list(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _Slow
        return [item(v) for v in value if v is not None]

    return decode_list


def _map_decoder(inner: Decoder) -> Decoder:
    def decode_map(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _Slow
        return {k: inner(v) for k, v in value.items() if v is not None}

    return decode_map


def _integer_decoder(bound: int) -> Decoder:
    def decode_integer(value: Any) -> int:
        if type(value) is not int or not -bound <= value < bound:
            raise _Slow
        return value

    return decode_integer


def _decode_string(value: Any) -> str:
    if type(value) is not str:
        raise _Slow
    return value


def _decode_boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Slow
    return value


def _decode_number(value: Any) -> float:
    if type(value) is not float and type(value) is not int:
        raise _Slow
    return float(value)


def _decode_blob(value: Any) -> bytes:
    if type(value) is not str:
        raise _Slow
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Slow from None


def _always_slow(value: Any) -> Any:
    raise _Slow


_SCALAR_DECODERS: dict[str, Decoder] = {
    "boolean": _decode_boolean,
    "double": _decode_number,
    "float": _decode_number,
    "blob": _decode_blob,
}


def _structure_encoder(shape: Shape) -> Encoder:
    """The compiled encoder of an output structure (see `_encode_structure` for what is left out)."""
    return _compiled(_ENCODERS, shape, _compile_structure_encoder)


def _compiled(cache: dict[Shape, Codec], shape: Shape, compile_shape: Callable[[Shape], Codec]) -> Codec:
    """``compile_shape(shape)``, once per shape; a recursive shape meets a forwarding stub while it compiles."""
    found = cache.get(shape)
    if found is None:
        cell: list[Codec] = []
        cache[shape] = lambda value: cell[0](value)
        found = compile_shape(shape)
        cell.append(found)
        cache[shape] = found
    return found


def _compile_structure_encoder(shape: Shape) -> Encoder:
    plan = tuple((name, _member_encoder(m.shape), m.shape.type_name == "list") for name, m in shape.members.items())

    def encode_structure(value: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = value.get
        for name, encode, is_list in plan:
            item = get(name)
            if item is None or (is_list and not item):
                continue
            if encode is None:
                out[name] = item if type(item) is str else _encode_scalar(item)
            else:
                out[name] = encode(item)
        return out

    return encode_structure


def _member_encoder(shape: Shape) -> Encoder | None:
    """None for scalars (copied, bytes as base64); a function for structures, lists and maps."""
    kind = shape.type_name
    if kind == "structure":
        return _structure_encoder(shape)
    if kind == "list" and shape.member is not None:
        item = _member_encoder(shape.member.shape)
        if item is None:
            return lambda value: [_encode_scalar(v) for v in value]
        return lambda value: [item(v) for v in value]
    if kind == "map" and shape.value is not None:
        inner = _member_encoder(shape.value.shape)
        if inner is None:
            return lambda value: {str(k): _encode_scalar(v) for k, v in value.items()}
        return lambda value: {str(k): inner(v) for k, v in value.items()}
    return None


def _encode_scalar(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
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
    return orjson.dumps(_structure_encoder(shape)(output))


def error_type(error: AwsError, namespace: str) -> str:
    """The ``__type`` value: the error's own namespaced name, or ``<namespace>#<code>``."""
    return error.json_code if "#" in error.json_code else f"{namespace}#{error.json_code}"


def encode_error(error: AwsError, message: str, namespace: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The JSON body and the extra headers of an error response."""
    body = orjson.dumps({"__type": error_type(error, namespace), "message": message})
    return body, [("x-amzn-query-error", f"{error.query_code};{error.fault}")]
