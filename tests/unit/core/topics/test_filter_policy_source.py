"""The compact re-serialisation and Jackson cursor behind filter-policy error locations, and fuzzing.

Property tests: any JSON document either compiles or is refused with `InvalidFilterPolicy` (never
another exception), and a compiled policy matches any message without raising.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from loosely.core.topics import InvalidFilterPolicy, MessageFields, parse_filter_policy
from loosely.core.topics._policy_source import STRING, Cursor, java_double

JAVA_DOUBLES = [
    (1.0, "1.0"),
    (-0.0, "-0.0"),
    (0.0, "0.0"),
    (301.5, "301.5"),
    (100.0, "100.0"),
    (1e7, "1.0E7"),
    (9999999.0, "9999999.0"),
    (0.001, "0.001"),
    (0.0001, "1.0E-4"),
    (1.5e-10, "1.5E-10"),
    (-2.5e9, "-2.5E9"),
    (123456789012.0, "1.23456789012E11"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
    (math.nan, "NaN"),
]


def test_java_double_formats_like_double_to_string() -> None:
    for value, expected in JAVA_DOUBLES:
        assert java_double(value) == expected, value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_java_double_round_trips(value: float) -> None:
    assert float(java_double(value)) == value


def test_cursor_reads_strings_lazily_and_values_with_their_field() -> None:
    cursor = Cursor({"ab": ["xy", 12], "c": "d"})
    assert cursor.source == '{"ab":["xy",12],"c":"d"}'
    cursor.next_token()  # {
    cursor.next_token()  # "ab": and the "[" of its value
    assert cursor.location().endswith("column: 8]")
    cursor.next_token()  # [ (already read)
    token = cursor.next_token()  # "xy": only the opening quote so far
    assert token.kind == STRING
    assert cursor.location().endswith("column: 9]")
    assert cursor.text() == "xy"
    assert cursor.location().endswith("column: 12]")
    cursor.next_token()  # 12, read whole
    assert cursor.location().endswith("column: 15]")
    cursor.next_token()  # ]
    cursor.next_token()  # "c": and the opening quote of "d"
    assert cursor.location().endswith("column: 22]")


def test_cursor_escapes_controls_in_upper_case_hex() -> None:
    assert Cursor({"k": ['\x01\t"\\/é']}).source == '{"k":["\\u0001\\t\\"\\\\/é"]}'


JSON_SCALARS = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(-1e12, 1e12) | st.text(max_size=8)
OPERATORS = st.sampled_from(
    ["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr", "wildcard", "bogus"]
)
OPERANDS = (
    JSON_SCALARS
    | st.lists(JSON_SCALARS | st.sampled_from(["=", "<", "<=", ">", ">="]), max_size=5)
    | st.dictionaries(st.sampled_from(["prefix", "suffix", "equals-ignore-case", "x"]), JSON_SCALARS, max_size=2)
    | st.sampled_from(["10.0.0.0/8", "::1/64", "1.2.3.4/33", "a/b"])
)
PATTERNS = (
    JSON_SCALARS | st.dictionaries(OPERATORS, OPERANDS, min_size=0, max_size=2) | st.lists(JSON_SCALARS, max_size=2)
)
KEYS = st.sampled_from(["a", "b", "c.d", "$or", "prefix"])
POLICIES = st.recursive(
    st.lists(PATTERNS, max_size=4),
    lambda children: (
        st.dictionaries(KEYS, children, max_size=4) | st.lists(st.dictionaries(KEYS, children), max_size=3)
    ),
    max_leaves=12,
)
BODY_VALUES = st.recursive(
    JSON_SCALARS | st.sampled_from(["10.0.0.1", "::1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(policy=st.dictionaries(KEYS, POLICIES, max_size=4), body=st.dictionaries(KEYS, BODY_VALUES, max_size=4))
def test_fuzz_parse_refuses_cleanly_and_matching_never_raises(policy: dict[str, object], body: object) -> None:
    text = json.dumps(policy)
    for scope in ("MessageAttributes", "MessageBody"):
        try:
            compiled = parse_filter_policy(text, scope)
        except InvalidFilterPolicy as error:
            assert error.message.startswith("Invalid parameter: ")
            continue
        compiled.matches_body(json.dumps(body))
        compiled.matches(MessageFields.from_attributes({"a": ("String", "x"), "b": ("Number", "1")}))
