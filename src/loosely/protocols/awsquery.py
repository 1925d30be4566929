"""The AWS Query wire family: form-encoded requests in, XML responses out.

Decoding is driven by the operation's input shape. The flat keys (``Attribute.1.Name``,
``SendMessageBatchRequestEntry.2.Id``, ``Entries.member.1.Id``) are first folded into a tree by
their dots, so decoding is linear in the request size whatever the number of lists. Lists accept
the flattened form and the ``.member.N`` form, maps the flattened form and the ``.entry.N`` form,
because SDKs of different ages send different ones.

Encoding writes the output structure with the same Query names that botocore's parser reads. Text
is escaped so that any string round-trips: ``\\r`` becomes ``&#13;`` (a raw CR would be read back
as LF), and characters XML 1.0 cannot carry at all are replaced by U+FFFD.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any
from urllib.parse import unquote

from loosely.core.errors import InvalidParameterValue, MissingParameter
from loosely.protocols.errors import MALFORMED_QUERY_STRING, AwsError, WireError
from loosely.protocols.model import Member, OperationModel, Shape

__all__ = ["decode", "encode_error", "encode_response", "parse_form", "xml_escape"]

CONTENT_TYPE = "text/xml"
MAX_FIELDS = 10_000
_INT_RE = re.compile(r"-?[0-9]+")
_INT_BOUNDS = {"integer": 2**31, "long": 2**63}


class _Node:
    """A dotted key's position: the value sent for exactly this key and the keys that continue it."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


# ---- requests ----


def parse_form(body: bytes, query_string: bytes = b"") -> dict[str, str]:
    """The parameters of a Query request: the query string's, then the body's (which win on conflict)."""
    params: dict[str, str] = {}
    for raw in (query_string, body):
        if not raw:
            continue
        try:
            _add_pairs(raw.decode("utf-8"), params)
        except (UnicodeDecodeError, ValueError) as exc:
            raise WireError(MALFORMED_QUERY_STRING, "The query string is malformed.") from exc
    return params


def _add_pairs(text: str, params: dict[str, str]) -> None:
    """``urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict")`` into ``params``, faster.

    Why not parse_qsl itself: it costs about 6 µs for a four-field SendMessage, most of it generic
    per-field work. This does the same steps (fields split on ``&``, empty fields skipped, a field
    without ``=`` is a name with an empty value, ``+`` is a space, percent escapes decoded as strict
    UTF-8) and decodes a component only when it holds a ``+`` or ``%``; the components that repeat on
    every request (names, queue URLs) are decoded once (`_unquote_component`).
    """
    if text.count("&") + 1 > MAX_FIELDS:
        raise ValueError("too many fields")
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name or "%" in name:
            name = _unquote_component(name)
        if "+" in value or "%" in value:
            value = _unquote_component(value) if len(value) <= _CACHED_COMPONENT_MAX else _unquote(value)
        params[name] = value


_CACHED_COMPONENT_MAX = 256


def _unquote(component: str) -> str:
    return unquote(component.replace("+", " "), errors="strict")


_unquote_component = lru_cache(maxsize=1024)(_unquote)


def _tree(params: Mapping[str, str]) -> _Node:
    root = _Node()
    for key, value in params.items():
        node = root
        for part in key.split("."):
            node = node.children.setdefault(part, _Node())
        node.value = value
    return root


def decode(shape: Shape | None, params: Mapping[str, str]) -> dict[str, Any]:
    """The operation input as a dict in AWS member names, typed by ``shape``.

    Raises `MissingParameter` for absent required members of the input itself and
    `InvalidParameterValue` for values that do not convert to their member's type. Required members
    of nested structures (a batch entry's Id, an attribute's DataType) are left to the service,
    which reports them with the messages AWS uses for each.
    """
    if shape is None:
        return {}
    return _structure(shape, _tree(params), "", check_required=True)


def _structure(shape: Shape, node: _Node, path: str, check_required: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    children = node.children
    if children:
        for name, query_names, member_shape, serialized_name in _members(shape):
            for query_name in query_names:  # the subtree under the first of its names that the request uses
                child = children.get(query_name)
                if child is not None:
                    out[name] = _value(member_shape, child, f"{path}{serialized_name}")
                    break
    missing = sorted(shape.required - out.keys()) if check_required else []
    if missing:
        raise MissingParameter(f"The request must contain the parameter {shape.members[missing[0]].serialized_name}.")
    return out


@cache
def _query_names(member: Member) -> tuple[str, ...]:
    """Where ``member`` may appear: a flattened list's item name, its Query name, its member name."""
    names = [member.serialized_name, member.name]
    item = member.shape.member
    if member.shape.type_name == "list" and item is not None and item.location_name and member.is_flattened:
        names.insert(0, item.location_name)
    return tuple(dict.fromkeys(names))


# Per structure shape, what decoding needs of each member, worked out once: its name, the Query names it
# may appear under, its shape and its name in error messages (shapes hash by identity, members do not).
_MemberPlan = tuple[str, tuple[str, ...], Shape, str]
_PLANS: dict[Shape, tuple[_MemberPlan, ...]] = {}


def _members(shape: Shape) -> tuple[_MemberPlan, ...]:
    plan = _PLANS.get(shape)
    if plan is None:
        plan = tuple((name, _query_names(m), m.shape, m.serialized_name) for name, m in shape.members.items())
        _PLANS[shape] = plan
    return plan


def _value(shape: Shape, node: _Node, path: str) -> Any:
    if shape.type_name == "structure":
        return _structure(shape, node, f"{path}.")
    if shape.type_name == "list":
        return _list(shape, node, path)
    if shape.type_name == "map":
        return _map(shape, node, path)
    if node.value is None:
        raise InvalidParameterValue(f"Value for parameter {path} is invalid.")
    return _scalar(shape, node.value, path)


def _indexed(node: _Node, wrappers: tuple[str | None, ...]) -> list[tuple[int, _Node]]:
    """The numbered children of ``node`` (or of its ``member``/``entry`` wrapper), in index order."""
    for wrapper in wrappers:
        if wrapper and wrapper in node.children:
            node = node.children[wrapper]
            break
    items = [(int(k), child) for k, child in node.children.items() if k.isascii() and k.isdigit()]
    items.sort(key=lambda pair: pair[0])
    return items


def _list(shape: Shape, node: _Node, path: str) -> list[Any]:
    item = shape.member
    if item is None:  # pragma: no cover - every list shape has a member
        return []
    wrappers = ("member", item.location_name)
    return [_value(item.shape, child, f"{path}.{i}") for i, child in _indexed(node, wrappers)]


def _map(shape: Shape, node: _Node, path: str) -> dict[str, Any]:
    if shape.key is None or shape.value is None:  # pragma: no cover - every map shape has both
        return {}
    key_name = shape.key.location_name or "key"
    value_name = shape.value.location_name or "value"
    out: dict[str, Any] = {}
    for i, entry in _indexed(node, ("entry",)):
        key_node = entry.children.get(key_name) or entry.children.get("key")
        value_node = entry.children.get(value_name) or entry.children.get("value")
        if key_node is None or key_node.value is None:
            raise MissingParameter(f"The request must contain the parameter {path}.{i}.{key_name}.")
        if value_node is None:
            raise MissingParameter(f"The request must contain the parameter {path}.{i}.{value_name}.")
        key = _scalar(shape.key.shape, key_node.value, f"{path}.{i}.{key_name}")
        out[key] = _value(shape.value.shape, value_node, f"{path}.{i}.{value_name}")
    return out


def _scalar(shape: Shape, text: str, path: str) -> Any:
    kind = shape.type_name
    if kind in _INT_BOUNDS:
        bound = _INT_BOUNDS[kind]
        if _INT_RE.fullmatch(text) and -bound <= int(text) < bound:
            return int(text)
    elif kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    elif kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            pass
    elif kind in ("double", "float"):
        try:
            return float(text)
        except ValueError:
            pass
    else:
        return text
    raise InvalidParameterValue(f"Value {text} for parameter {path} is invalid.")


# ---- responses ----

_NEEDS_ESCAPE = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_ESCAPES: dict[int, str] = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", 13: "&#13;"}
_ESCAPES.update({c: "\ufffd" for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)})
_ESCAPES.update({c: "\ufffd" for c in range(0xD800, 0xE000)})


def xml_escape(text: str) -> str:
    """``text`` as XML character data that parses back to the same string (or U+FFFD where XML cannot)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return text.translate(_ESCAPES)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return xml_escape(str(value))


def _write_member(member: Member, value: Any, out: list[str]) -> None:
    shape = member.shape
    if shape.type_name == "list" and shape.member is not None:
        _write_list(member, shape.member, value, out)
    elif shape.type_name == "map" and shape.key is not None and shape.value is not None:
        _write_map(member, shape.key, shape.value, value, out)
    else:
        _write_element(member.serialized_name, shape, value, out)


def _write_list(member: Member, item: Member, values: Any, out: list[str]) -> None:
    if member.is_flattened:
        tag = item.location_name or member.serialized_name
        for value in values:
            _write_element(tag, item.shape, value, out)
        return
    out.append(f"<{member.serialized_name}>")
    for value in values:
        _write_element(item.location_name or "member", item.shape, value, out)
    out.append(f"</{member.serialized_name}>")


def _write_map(member: Member, key: Member, val: Member, values: Mapping[str, Any], out: list[str]) -> None:
    key_tag, value_tag = key.location_name or "key", val.location_name or "value"
    name = member.serialized_name
    if not member.is_flattened:
        out.append(f"<{name}>")
    for k, v in values.items():
        out.append(f"<{name}>" if member.is_flattened else "<entry>")
        out.append(f"<{key_tag}>{_scalar_text(k)}</{key_tag}>")
        _write_element(value_tag, val.shape, v, out)
        out.append(f"</{name}>" if member.is_flattened else "</entry>")
    if not member.is_flattened:
        out.append(f"</{name}>")


def _write_element(tag: str, shape: Shape, value: Any, out: list[str]) -> None:
    if shape.type_name == "structure":
        out.append(f"<{tag}>")
        _write_structure(shape, value, out)
        out.append(f"</{tag}>")
    elif shape.type_name in ("list", "map"):
        _write_member(Member(name=tag, shape=shape, location_name=tag, flattened=False), value, out)
    else:
        out.append(f"<{tag}>{_scalar_text(value)}</{tag}>")


def _write_structure(shape: Shape, value: Mapping[str, Any], out: list[str]) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _write_member(member, item, out)


def encode_response(
    operation: OperationModel, output: Mapping[str, Any] | None, request_id: str, namespace: str
) -> bytes:
    """The XML body of a successful response (``<XResponse><XResult>…</XResult><ResponseMetadata>…``)."""
    out = [f'<?xml version="1.0"?><{operation.name}Response xmlns="{namespace}">']
    if operation.output is not None:
        wrapper = operation.result_wrapper or f"{operation.name}Result"
        inner: list[str] = []
        _write_structure(operation.output, output or {}, inner)
        # An empty result is a self-closed element, as AWS writes it (``<ReceiveMessageResult/>``).
        out.extend((f"<{wrapper}>", *inner, f"</{wrapper}>") if inner else (f"<{wrapper}/>",))
    out.append(f"<ResponseMetadata><RequestId>{xml_escape(request_id)}</RequestId></ResponseMetadata>")
    out.append(f"</{operation.name}Response>")
    return "".join(out).encode("utf-8")


def encode_error(error: AwsError, message: str, request_id: str, namespace: str, detail: bool = True) -> bytes:
    """The XML body of an error response, as AWS Query services return it (``detail``: with ``<Detail/>``)."""
    return (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{namespace}"><Error><Type>{error.fault}</Type>'
        f"<Code>{xml_escape(error.query_code)}</Code><Message>{xml_escape(message)}</Message>"
        f"{'<Detail/>' if detail else ''}</Error><RequestId>{xml_escape(request_id)}</RequestId></ErrorResponse>"
    ).encode()
