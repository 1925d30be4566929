"""Both codecs on a small synthetic model: the types and nestings SQS itself does not use."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
import pytest

from loosely.core.errors import InvalidParameterValue
from loosely.protocols import awsjson, awsquery
from loosely.protocols.errors import ErrorTable, WireError
from loosely.protocols.model import build_service_model
from loosely.protocols.service import OperationTable, Params

RAW: dict[str, Any] = {
    "metadata": {"apiVersion": "2020-01-01", "xmlNamespace": "urn:t"},
    "operations": {
        "Op": {
            "name": "Op",
            "input": {"shape": "Input"},
            "output": {"shape": "Input", "resultWrapper": "OpResult"},
        }
    },
    "shapes": {
        "Input": {
            "type": "structure",
            "members": {
                "Flag": {"shape": "Bool"},
                "Ratio": {"shape": "Double"},
                "Nested": {"shape": "Lists"},
                "Groups": {"shape": "Groups"},
                "Inner": {"shape": "Inner"},
            },
        },
        "Inner": {"type": "structure", "members": {"Count": {"shape": "Int"}}},
        "Lists": {"type": "list", "member": {"shape": "Strings"}},
        "Strings": {"type": "list", "member": {"shape": "Str"}},
        "Groups": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Strings"}},
        "Bool": {"type": "boolean"},
        "Double": {"type": "double"},
        "Int": {"type": "integer"},
        "Str": {"type": "string"},
    },
}
MODEL = build_service_model(RAW)
OP = MODEL.operations["Op"]
VALUE = {
    "Flag": True,
    "Ratio": 0.5,
    "Nested": [["a", "b"], ["c"]],
    "Groups": {"g": ["x", "y"]},
    "Inner": {"Count": 3},
}


def test_json_round_trips_nested_lists_maps_and_numbers() -> None:
    body = awsjson.encode_response(OP.output, VALUE)
    assert awsjson.decode(OP.input, body) == VALUE


@pytest.mark.parametrize(
    "document",
    [{"Flag": "yes"}, {"Ratio": "1"}, {"Ratio": False}, {"Inner": []}, {"Groups": []}, {"Inner": {"Count": "1"}}],
)
def test_json_wrong_types_are_rejected(document: dict[str, Any]) -> None:
    with pytest.raises(WireError):
        awsjson.decode(OP.input, orjson.dumps(document))


def test_json_no_input_shape_accepts_any_object() -> None:
    assert awsjson.decode(None, b'{"x": 1}') == {}


def test_query_decodes_member_lists_booleans_and_doubles() -> None:
    form = {
        "Flag": "false",
        "Ratio": "2.5",
        "Nested.member.1.member.1": "a",
        "Nested.member.2.member.1": "c",
        "Groups.entry.1.key": "g",
        "Groups.entry.1.value.member.1": "x",
        "Inner.Count": "4",
    }
    assert awsquery.decode(OP.input, form) == {
        "Flag": False,
        "Ratio": 2.5,
        "Nested": [["a"], ["c"]],
        "Groups": {"g": ["x"]},
        "Inner": {"Count": 4},
    }
    assert awsquery.decode(None, form) == {}


@pytest.mark.parametrize(("field", "value"), [("Flag", "maybe"), ("Ratio", "half"), ("Inner.Count", "x")])
def test_query_bad_scalars_are_invalid_parameter_value(field: str, value: str) -> None:
    with pytest.raises(InvalidParameterValue):
        awsquery.decode(OP.input, {field: value})


def test_query_scalar_given_only_as_a_prefix_is_invalid() -> None:
    with pytest.raises(InvalidParameterValue):
        awsquery.decode(OP.input, {"Flag.1": "true"})


def test_xml_writes_nested_lists_and_maps() -> None:
    body = awsquery.encode_response(OP, VALUE, "r", "urn:t")
    result = ET.fromstring(body).find("{urn:t}OpResult")
    assert result is not None
    assert result.findtext("{urn:t}Flag") == "true"
    inner_lists = result.findall("{urn:t}Nested/{urn:t}member")
    assert [[e.text for e in lst] for lst in inner_lists] == [["a", "b"], ["c"]]
    assert result.findtext("{urn:t}Groups/{urn:t}entry/{urn:t}key") == "g"


def test_operation_table_rejects_duplicates_and_params_check_types() -> None:
    table = OperationTable()

    async def handler(ctx: Any, p: Params) -> None:
        return None

    table.operation("A")(handler)
    with pytest.raises(ValueError, match="twice"):
        table.operation("A")(handler)
    assert len(table) == 1
    params = Params({"n": "1", "s": 2, "flag": True})
    assert "n" in params and "missing" not in params
    with pytest.raises(InvalidParameterValue):
        params.integer("n")
    with pytest.raises(InvalidParameterValue):
        params.string("s")
    with pytest.raises(InvalidParameterValue):
        params.opt_integer("flag")


def test_error_table_membership() -> None:
    table = ErrorTable({KeyError: ErrorTable({}).lookup(KeyError())})
    assert KeyError in table
    assert ValueError not in table
