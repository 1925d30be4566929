"""Jackson's syntax-error wording, which SNS quotes for FilterPolicy and RedrivePolicy values that are not JSON.

The first two cases are recorded AWS responses (localstack's test_sns.snapshot.json:
test_validate_set_sub_attributes and TestSNSSubscriptionCrudV2::test_subscribe_invalid_filter_policy);
the others follow the same reader: an unexpected character is located at itself, a bare word after it.
"""

from __future__ import annotations

import pytest

from loosely.core.topics._policy_json import jackson_syntax_error, unparsable_json

_AT = "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {}, column: {}]"
_VALUES = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"

CASES = [
    (
        "{invalid json}",
        "Unexpected character ('i' (code 105)): was expecting double-quote to start field name" + _AT.format(1, 2),
    ),
    ("invalid-json", f"Unrecognized token 'invalid': was expecting {_VALUES}" + _AT.format(1, 8)),
    ('{"a": tru}', f"Unrecognized token 'tru': was expecting {_VALUES}" + _AT.format(1, 10)),
    ('{"a": truex}', f"Unrecognized token 'truex': was expecting {_VALUES}" + _AT.format(1, 12)),
    (
        '{"a": 1,}',
        "Unexpected character ('}' (code 125)): was expecting double-quote to start field name" + _AT.format(1, 9),
    ),
    ("[1,]", f"Unexpected character (']' (code 93)): expected a valid value {_VALUES}" + _AT.format(1, 4)),
    (
        '{"a" 1}',
        "Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value"
        + _AT.format(1, 6),
    ),
    (
        '{"a": 1 "b": 2}',
        "Unexpected character ('\"' (code 34)): was expecting comma to separate Object entries" + _AT.format(1, 9),
    ),
    ("[1 2]", "Unexpected character ('2' (code 50)): was expecting comma to separate Array entries" + _AT.format(1, 4)),
    (
        "{\n  x: 1}",
        "Unexpected character ('x' (code 120)): was expecting double-quote to start field name" + _AT.format(2, 3),
    ),
    (
        '{"a":',
        "Unexpected end-of-input: expected close marker for Object (start marker at "
        + _AT.format(1, 1).removeprefix("\n at ")
        + ")"
        + _AT.format(1, 6),
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_syntax_errors_are_worded_and_located_as_jackson_does(text: str, message: str) -> None:
    assert jackson_syntax_error(text) == message


@pytest.mark.parametrize("text", ['{"a": [1, 2.5e3, -0.5, "x\\"y", true, false, null, {}]}', "[]", " 7 "])
def test_valid_json_has_no_error(text: str) -> None:
    assert jackson_syntax_error(text) is None


@pytest.mark.parametrize("text", ["", "   ", '{"a": 01}', '{"a": 1.}', '{"a": -x}', '"open', '["a\nb"]'])
def test_errors_it_does_not_model_give_none(text: str) -> None:
    assert jackson_syntax_error(text) is None


def test_unparsable_json_reason_carries_jacksons_detail_when_known() -> None:
    assert unparsable_json("RedrivePolicy", "{x}").startswith(
        "RedrivePolicy: failed to parse JSON. Unexpected character"
    )
    assert unparsable_json("RedrivePolicy", '{"a": 01}') == "RedrivePolicy: failed to parse JSON."
