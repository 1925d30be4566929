"""The compiled JSON codecs give exactly what the shape walk gives, on every SQS and SNS shape.

`awsjson.decode` first runs a decoder compiled per shape and falls back to the walk with paths on
any doubt; `encode_response` runs a compiled encoder. These properties pin that the fast path never
changes a result: same value, or the same error with the same wording.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loosely.core.errors import LooselyError
from loosely.protocols import awsjson
from loosely.protocols.errors import WireError
from loosely.protocols.model import Shape, build_service_model, load_service_model

SQS = load_service_model("sqs-2012-11-05")
SNS = load_service_model("sns-2010-03-31")
INPUTS = [(f"{m.api_version}:{name}", op.input) for m in (SQS, SNS) for name, op in m.operations.items() if op.input]
OUTPUTS = [(f"{m.api_version}:{name}", op.output) for m in (SQS, SNS) for name, op in m.operations.items() if op.output]

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.sampled_from(["AAE=", "*", "", "bm8="]),
    st.just([]),
    st.just({}),
)


def _document(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly well-typed values for ``shape``, sometimes a value of another JSON type or null."""
    return st.one_of(_typed(shape, depth), _JUNK) if depth else _typed(shape, depth)


def _typed(shape: Shape, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if depth > 4:
        return st.just({} if kind in ("structure", "map") else [] if kind == "list" else None)
    if kind == "structure":
        members = {name: _document(m.shape, depth + 1) for name, m in shape.members.items()}
        optional = {**members, "Unknown": _JUNK}
        return st.fixed_dictionaries({}, optional=optional)
    if kind == "list" and shape.member is not None:
        return st.lists(_document(shape.member.shape, depth + 1), max_size=3)
    if kind == "map" and shape.value is not None:
        return st.dictionaries(st.text(max_size=3), _document(shape.value.shape, depth + 1), max_size=3)
    if kind in ("integer", "long"):
        return st.one_of(
            st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from([2**31, 2**63, -(2**63)])
        )
    if kind == "boolean":
        return st.booleans()
    if kind in ("double", "float"):
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10, 10))
    if kind == "blob":
        return st.sampled_from(["AAE=", "", "/w==", "not base64", "QQ"])
    return st.text(max_size=6)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except (WireError, LooselyError) as exc:
        return type(exc).__name__, (getattr(exc, "error", None), str(exc))


def _walk(shape: Shape, document: Any) -> Any:
    return awsjson._structure(shape, document, "", check_required=True)


@pytest.mark.parametrize(("name", "shape"), INPUTS, ids=[name for name, _ in INPUTS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_equals_the_walk(name: str, shape: Shape, data: st.DataObject) -> None:
    document = data.draw(_typed(shape, 0))
    fast = _outcome(lambda: awsjson.decode(shape, orjson.dumps(document)))
    assert fast == _outcome(lambda: _walk(shape, document))


def test_valid_hot_inputs_take_the_compiled_path() -> None:
    """A regression guard for speed: well-formed hot requests never fall back to the walk."""
    send = {
        "QueueUrl": "u",
        "MessageBody": "b",
        "DelaySeconds": 0,
        "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": "AAE="}, "s": {"DataType": "String"}},
    }
    receive = {"QueueUrl": "u", "MaxNumberOfMessages": 10, "AttributeNames": ["All"], "WaitTimeSeconds": 20}
    batch = {"QueueUrl": "u", "Entries": [{"Id": "1", "ReceiptHandle": "h"}]}
    for operation, document in (("SendMessage", send), ("ReceiveMessage", receive), ("DeleteMessageBatch", batch)):
        shape = SQS.operations[operation].input
        assert shape is not None
        assert awsjson._input_decoder(shape)(document) == _walk(shape, document)


def test_compiled_decoder_defers_errors_to_the_walk() -> None:
    shape = SQS.operations["ReceiveMessage"].input
    assert shape is not None
    with pytest.raises(awsjson._Slow):
        awsjson._input_decoder(shape)({"QueueUrl": "u", "MaxNumberOfMessages": True})
    with pytest.raises(awsjson._Slow):
        awsjson._input_decoder(shape)({"MaxNumberOfMessages": 1})  # QueueUrl is required


def test_recursive_shapes_compile() -> None:
    raw = {
        "metadata": {"apiVersion": "2020-01-01"},
        "operations": {"Op": {"name": "Op", "input": {"shape": "Node"}, "output": {"shape": "Node"}}},
        "shapes": {
            "Node": {"type": "structure", "members": {"Name": {"shape": "S"}, "Children": {"shape": "Nodes"}}},
            "Nodes": {"type": "list", "member": {"shape": "Node"}},
            "S": {"type": "string"},
        },
    }
    node = build_service_model(raw).shapes["Node"]
    tree = {"Name": "a", "Children": [{"Name": "b", "Children": [{"Name": "c"}]}, {"Children": []}]}
    assert awsjson.decode(node, orjson.dumps(tree)) == _walk(node, tree)
    assert orjson.loads(awsjson.encode_response(node, tree)) == awsjson._encode_structure(node, tree)
    with pytest.raises(WireError, match=r"Children\.1\.Children\.1\.Name"):
        awsjson.decode(node, orjson.dumps({"Children": [{"Children": [{"Name": 1}]}]}))


def _output_value(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """What a handler may return for ``shape``: members possibly None, lists possibly empty, bytes for blobs."""
    kind = shape.type_name
    if depth > 4:
        return st.none()
    if kind == "structure":
        members = {name: st.one_of(st.none(), _output_value(m.shape, depth + 1)) for name, m in shape.members.items()}
        return st.fixed_dictionaries({}, optional=members)
    if kind == "list" and shape.member is not None:
        return st.lists(_output_value(shape.member.shape, depth + 1).filter(lambda v: v is not None), max_size=2)
    if kind == "map" and shape.value is not None:
        inner = _output_value(shape.value.shape, depth + 1).filter(lambda v: v is not None)
        return st.dictionaries(st.text(max_size=3), inner, max_size=2)
    if kind in ("integer", "long"):
        return st.integers(-5, 5)
    if kind == "boolean":
        return st.booleans()
    if kind == "blob":
        return st.binary(max_size=4)
    return st.one_of(st.text(max_size=4), st.binary(max_size=3))  # bytes anywhere are written as base64


@pytest.mark.parametrize(("name", "shape"), OUTPUTS, ids=[name for name, _ in OUTPUTS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_equals_the_walk(name: str, shape: Shape, data: st.DataObject) -> None:
    output = data.draw(_output_value(shape))
    expected = orjson.dumps(awsjson._encode_structure(shape, output))
    assert awsjson.encode_response(shape, output) == expected
