"""Filter policy validation: every error AWS returns, with AWS's exact wording and location.

The ``AWS_RECORDED`` table holds error messages recorded from real SNS (Subscribe with a
FilterPolicy attribute, May 2024), including the Jackson location of the compact policy. The
other tables cover the remaining compiler errors and SNS's limits.
"""

from __future__ import annotations

import json

import pytest

from loosely.core.errors import InvalidParameter, InvalidParameterValue
from loosely.core.topics import InvalidFilterPolicy, check_scope, parse_filter_policy
from loosely.core.topics.filter_policy import MAX_POLICY_BYTES

AWS_RECORDED = [
    ({"key": [["value"]]}, "Match value must be String, number, true, false, or null", 10),
    ({"key": [{"wrong-operator": True}]}, "Unrecognized match type wrong-operator", 31),
    ({"key": [{"suffix": "value", "prefix": "value2"}]}, "Only one key allowed in match expression", 37),
    ({"key": [{"suffix": 100}]}, "suffix match pattern must be a string", 22),
    ({"key": [{"suffix": None}]}, "suffix match pattern must be a string", 23),
    ({"key": {"suffix": "value"}}, '"suffix" must be an object or an array', 19),
    ({"key": [{"suffix": []}]}, "suffix match pattern must be a string", 20),
    ({"key": [{"suffix": ["test", "test2"]}]}, "suffix match pattern must be a string", 20),
    ({"key": {"suffix": "value", "prefix": "value"}}, '"suffix" must be an object or an array', 19),
    ({"key": {"not-an-operator": "value"}}, '"not-an-operator" must be an object or an array', 28),
    ({"key": [{"numeric": []}]}, "Invalid member in numeric match: ]", 22),
    ({"key": [{"numeric": ["operator"]}]}, "Unrecognized numeric range operator: operator", 32),
    ({"key": [{"numeric": [1, "<="]}]}, "Invalid member in numeric match: 1", 22),
    ({"key": [{"numeric": ["=", "000"]}]}, "Value of equals must be numeric", 26),
    ({"key": [{"numeric": [">="]}]}, "Value of >= must be numeric", 26),
    ({"key": [{"numeric": ["<", 100, ">", 10]}]}, "Too many elements in numeric expression", 30),
    ({"key": [{"numeric": [">=", 1, ">", 2]}]}, "Bad numeric range operator: >", 31),
    ({"key": [{"numeric": [">", 3, "<", 1]}]}, "Bottom must be less than top", 33),
    ({"key": [{"numeric": [">", 20, "<="]}]}, "Value of <= must be numeric", 33),
    ({"key": [{"numeric": [">", 20, 30]}]}, "Bad value in numeric range: 30", 30),
    ({"key": [{"numeric": [">", 20, "test"]}]}, "Bad numeric range operator: test", 34),
    ({"key": [{"numeric": [">", "20", "<", "30"]}]}, "Value of > must be numeric", 26),
    ({"key": [{"numeric": [">", 20, "<", "30"]}]}, "Value of < must be numeric", 33),
    ({"key": [{"numeric": [">", 20, "<", 30, "<", 50]}]}, "Too many terms in numeric range expression", 36),
    ({"key": [{"exists": None}]}, "exists match pattern must be either true or false.", 23),
    ({"key": [{"exists": "no"}]}, "exists match pattern must be either true or false.", 20),
    ({"key": [{"anything-but": {"wrong-operator": None}}]}, "Unsupported anything-but pattern: wrong-operator", 47),
    ({"key": [{"anything-but": {"exists": False}}]}, "Unsupported anything-but pattern: exists", 40),
    ({"key": [{"anything-but": {"prefix": False}}]}, "prefix match pattern must be a string", 40),
    ({"key_a": "value_one"}, '"key_a" must be an object or an array', 11),
]


def _located(policy: object, reason: str, column: int) -> str:
    compact = json.dumps(policy, separators=(",", ":"))
    return f'Invalid parameter: FilterPolicy: {reason}\n at [Source: (String)"{compact}"; line: 1, column: {column}]'


def _error(text: str, scope: str = "MessageBody") -> InvalidFilterPolicy:
    with pytest.raises(InvalidFilterPolicy) as caught:
        parse_filter_policy(text, scope)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(("policy", "reason", "column"), AWS_RECORDED)
def test_parse_aws_recorded_errors_match_message_and_location(policy: object, reason: str, column: int) -> None:
    error = _error(json.dumps(policy))  # boto3 sends spaced JSON; SNS reports on the compact form
    assert error.message == _located(policy, reason, column)


@pytest.mark.parametrize(("policy", "reason", "column"), AWS_RECORDED[:3])
def test_parse_error_location_ignores_the_clients_whitespace(policy: object, reason: str, column: int) -> None:
    pretty = json.dumps(policy, indent=4)
    assert _error(pretty).message == _located(policy, reason, column)


MORE_LOCATED = [
    ({"key": []}, "Empty arrays are not allowed", 10),
    ({"key": {}}, "Empty objects are not allowed", 10),
    ({"key": [{}]}, "Match expression name not found", 11),
    ({"key": [{"prefix": "a", "x": 1}]}, "Only one key allowed in match expression", 28),
    ({"key": [{"exists": True, "x": 1}]}, "Only one key allowed in match expression", 29),
    ({"key": [{"equals-ignore-case": 5}]}, "equals-ignore-case match pattern must be a string", 32),
    ({"key": [{"cidr": 5}]}, "prefix match pattern must be a string", 18),
    ({"key": [{"numeric": 5}]}, "Value of numeric must be an array.", 21),
    ({"key": [{"numeric": ["=", 5, 6]}]}, "Too many elements in numeric expression", 28),
    ({"key": [{"numeric": ["<", 5], "x": 1}]}, "Too many elements in numeric expression", 33),
    ({"key": [{"numeric": ["=", 2000000000]}]}, "Value must be between -1.0E9 and 1.0E9, inclusive", 36),
    ({"key": [{"numeric": [">", -2000000000]}]}, "Value must be between -1.0E9 and 1.0E9, inclusive", 37),
    ({"key": [{"numeric": [">", 0, "<", 10000000000]}]}, "Value must be between -1.0E9 and 1.0E9, inclusive", 43),
    ({"key": [{"anything-but": None}]}, "Value of anything-but must be an array or single string/number value.", 29),
    ({"key": [{"anything-but": [True]}]}, "Inside anything but list, start|null|boolean is not supported.", 30),
    (
        {"key": [{"anything-but": ["a", 1]}]},
        "Inside anything but list, either all values are number or string, mixed type is not supported",
        32,
    ),
    (
        {"key": [{"anything-but": []}]},
        "Inside anything but list, either all values are number or string, mixed type is not supported",
        27,
    ),
    ({"key": [{"anything-but": {}}]}, "Anything-But expression name not found", 27),
    ({"key": [{"anything-but": {"prefix": ""}}]}, "Null prefix not allowed", 37),
    ({"key": [{"anything-but": {"suffix": 1}}]}, "suffix match pattern must be a string", 36),
    ({"key": [{"anything-but": {"prefix": "a", "x": 1}}]}, "Only one key allowed in match expression", 44),
    (
        {"key": [{"anything-but": {"equals-ignore-case": [1]}}]},
        "Inside anything-but/equals-ignore-case list, numberic|start|null|boolean is not supported.",
        49,
    ),
    (
        {"key": [{"anything-but": {"equals-ignore-case": 1}}]},
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        48,
    ),
    ({"key": [{"anything-but": "a", "x": 1}]}, "Too many elements in numeric expression", 34),
    ({"key": [{"wildcard": "a*"}]}, "Unrecognized match type wildcard", 22),
    (
        {"$or": [{"a": {"prefix": ["x"]}}, {"b": ["y"]}]},
        "prefix is Ruler reserved fieldName which cannot be used inside $or.",
        25,
    ),
    ([1, 2], "Filter is not an object", 2),
    ("text", "Filter is not an object", 2),
]


@pytest.mark.parametrize(("policy", "reason", "column"), MORE_LOCATED)
def test_parse_compiler_errors_carry_the_location(policy: object, reason: str, column: int) -> None:
    assert _error(json.dumps(policy)).message == _located(policy, reason, column)


UNLOCATED = [
    ({"ip": [{"cidr": "10.0.0.0"}]}, "FilterPolicy: Malformed CIDR, one '/' required"),
    ({"ip": [{"cidr": "10.0.0.0/"}]}, "FilterPolicy: Malformed CIDR, one '/' required"),
    ({"ip": [{"cidr": "10.0.0.0/8/8"}]}, "FilterPolicy: Malformed CIDR, one '/' required"),
    ({"ip": [{"cidr": "10.0.0.0/x"}]}, "FilterPolicy: Malformed CIDR, mask bits must be an integer"),
    ({"ip": [{"cidr": "10.0.0.0/-1"}]}, "FilterPolicy: Malformed CIDR, mask bits must not be negative"),
    ({"ip": [{"cidr": "10.0.0.300/8"}]}, "FilterPolicy: Nonstandard IP address: 10.0.0.300"),
    ({"ip": [{"cidr": "example.com/8"}]}, "FilterPolicy: Nonstandard IP address: example.com"),
    ({"ip": [{"cidr": "10.0.0.0/32"}]}, "FilterPolicy: IPv4 mask bits must be < 32"),
    ({"ip": [{"cidr": "::1/128"}]}, "FilterPolicy: IPv6 mask bits must be < 128"),
    ({"n": [{"anything-but": 2e9}]}, "FilterPolicy: Value must be between -1.0E9 and 1.0E9, inclusive"),
]


@pytest.mark.parametrize(("policy", "reason"), UNLOCATED)
def test_parse_pattern_errors_without_location(policy: object, reason: str) -> None:
    assert _error(json.dumps(policy)).message == f"Invalid parameter: {reason}"


@pytest.mark.parametrize("text", ["{", "{invalidjson}", '{"a": [1,]}', '{"a": [NaN]}', '{"a": 01}', "{} x"])
def test_parse_malformed_json_fails_to_parse(text: str) -> None:
    assert _error(text).message.startswith("Invalid parameter: FilterPolicy: failed to parse JSON.")


def test_parse_malformed_json_quotes_jackson() -> None:
    """Recorded AWS response: test_sns.snapshot.json, test_validate_set_sub_attributes (invalid-json-filter-policy)."""
    assert _error("{invalid json}").message == (
        "Invalid parameter: FilterPolicy: failed to parse JSON. Unexpected character ('i' (code 105)): was expecting "
        "double-quote to start field name\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` "
        "disabled); line: 1, column: 2]"
    )


def test_parse_nested_policy_in_attribute_scope_is_refused() -> None:
    error = _error(json.dumps({"object": {"key": [{"prefix": "auto-"}]}}), "MessageAttributes")
    assert error.message == (
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
    )


def test_parse_nested_policy_in_body_scope_is_accepted() -> None:
    policy = parse_filter_policy(json.dumps({"object": {"key": [{"prefix": "auto-"}]}}), "MessageBody")
    assert policy.matches_body('{"object": {"key": "auto-1"}}')


def test_parse_six_keys_are_too_many() -> None:
    policy = {f"key{i}": [f"value{i}"] for i in range(1, 7)}
    assert _error(json.dumps(policy), "MessageAttributes").message == (
        "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"
    )
    del policy["key6"]
    assert parse_filter_policy(json.dumps(policy)).rules


def test_parse_nested_keys_count_at_the_leaves() -> None:
    # AWS's example: "finding" holds an object, so the leaves state, severity, message and the three
    # under finding are six keys.
    policy = {
        "state": ["SUCCESS"],
        "severity": [{"exists": True}],
        "message": [{"exists": True}],
        "finding": {"standard_control": [{"exists": True}], "region": [{"exists": True}]},
    }
    assert parse_filter_policy(json.dumps(policy), "MessageBody").rules
    policy["finding"]["account"] = [{"exists": True}]  # type: ignore[index]
    assert "can not have more than 5 keys" in _error(json.dumps(policy)).message


def test_parse_or_counts_keys_per_expansion() -> None:
    policy = {
        "a": ["1"],
        "b": ["1"],
        "$or": [{"c": ["1"], "d": ["1"], "e": ["1"]}, {"f": ["1"], "g": ["1"], "h": ["1"]}],
    }
    assert parse_filter_policy(json.dumps(policy)).rules  # 5 keys in each expansion
    policy["i"] = ["1"]
    assert "can not have more than 5 keys" in _error(json.dumps(policy), "MessageAttributes").message


TOO_COMPLEX = "Invalid parameter: FilterPolicy: Filter policy is too complex"


@pytest.mark.parametrize(
    "policy",
    [
        {"key": [f"value{i}" for i in range(151)]},
        {"key1": [f"value{i}" for i in range(100)], "key2": [f"value{i}" for i in range(51)]},
        # AWS: (source x metricName) + (source x metricType x metricId) + (source x metricType x spaceId) = 152
        {
            "source": ["aws.cloudwatch", "aws.events", "aws.test", "aws.test2"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency", "t1", "t2", "t3", "t4"]},
                {
                    "metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
                    "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4]}],
                },
            ],
        },
    ],
)
def test_parse_over_150_combinations_is_too_complex(policy: object) -> None:
    assert _error(json.dumps(policy), "MessageAttributes").message == TOO_COMPLEX


def test_parse_exactly_150_combinations_with_or_is_accepted() -> None:
    policy = {
        "source": ["aws.cloudwatch", "aws.events", "aws.test"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency", "TestVal", "TestVal2", "TestVal3", "TestVal4"]},
            {
                "metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
                "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4, 5, 6, 7]}],
            },
        ],
    }
    assert len(parse_filter_policy(json.dumps(policy)).rules) == 3


def test_parse_body_combinations_multiply_by_nesting_depth() -> None:
    # AWS rejects this: 3x4 (key_c, depth 3) x 2x3 (key_e, depth 2) x 1x3 (key_f) = 216 > 150,
    # although its plain product of values is only 36.
    policy = {
        "key_a": {"key_b": {"key_c": ["value_one", "value_two", "value_three", "value_four"]}},
        "key_d": {"key_e": ["value_one", "value_two", "value_three"]},
        "key_f": ["value_one", "value_two", "value_three"],
    }
    assert _error(json.dumps(policy)).message == TOO_COMPLEX
    policy["key_f"] = ["value_one", "value_two"]  # 12 x 6 x 2 = 144
    assert parse_filter_policy(json.dumps(policy), "MessageBody").rules


def test_parse_nested_or_in_body_counts_depth_per_expansion() -> None:
    # AWS rejects: (3x4x2) + (3x4x6) + (2x4x2) + (2x4x6) = 160.
    policy = {
        "$or": [{"metricName": ["CPUUtilization", "ReadLatency", "TestValue"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}],
        "detail": {
            "scope": ["Service", "Test"],
            "$or": [
                {"source": ["aws.cloudwatch"]},
                {"type": ["CloudWatch Alarm State Change", "TestValue", "TestValue2"]},
            ],
        },
    }
    assert _error(json.dumps(policy)).message == TOO_COMPLEX


def test_parse_exploding_or_expansions_stop_early() -> None:
    branches = [{f"k{i}": ["a"]} for i in range(13)]
    policy = {"$or": branches, "x": {"$or": branches}}  # 169 expansions
    assert _error(json.dumps(policy)).message == TOO_COMPLEX


def test_parse_policy_over_256_kb_is_too_long() -> None:
    text = json.dumps({"key": ["x" * MAX_POLICY_BYTES]})
    assert _error(text).message == "Invalid parameter: FilterPolicy: Filter policy is too long"


def test_parse_long_policy_location_truncates_source_at_500_chars() -> None:
    policy = {"key": ["v" * 600, ["nested"]]}
    message = _error(json.dumps(policy)).message
    compact = json.dumps(policy, separators=(",", ":"))
    assert message.endswith(
        f'(String)"{compact[:500]}"[truncated {len(compact) - 500}' + " chars]; line: 1, column: 613]"
    )


def test_parse_location_counts_utf16_units_and_escapes_like_jackson() -> None:
    message = _error(json.dumps({"k\u00e9\U0001f600\n": [["x"]]}, ensure_ascii=False)).message
    assert message.endswith('[Source: (String)"{"k\u00e9\U0001f600\\n":[["x"]]}"; line: 1, column: 13]')


def test_parse_location_writes_floats_like_java() -> None:
    message = _error(json.dumps({"k": [1e9, 0.00001, 3.015e2, 1e7, 100.0, []]})).message
    assert '"{"k":[1.0E9,1.0E-5,301.5,1.0E7,100.0,[]]}"' in message


def test_invalid_filter_policy_is_sns_invalid_parameter_and_rewords_for_subscribe() -> None:
    error = _error(json.dumps({"key": [{"exists": "no"}]}))
    assert isinstance(error, InvalidParameter)
    assert isinstance(error, InvalidParameterValue)
    subscribe = error.in_attributes()
    assert subscribe.message.startswith(
        "Invalid parameter: Attributes Reason: FilterPolicy: exists match pattern must be either true or false.\n at "
    )
    assert subscribe.reason == error.reason


def test_check_scope_rejects_unknown_values() -> None:
    assert check_scope("MessageBody") == "MessageBody"
    with pytest.raises(InvalidFilterPolicy) as caught:
        check_scope("RandomValue")
    assert caught.value.message == (
        "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]."
        " Please use either MessageBody or MessageAttributes"
    )


@pytest.mark.parametrize("text", ["", "  ", "{}", " { } "])
def test_parse_empty_policy_matches_everything(text: str) -> None:
    policy = parse_filter_policy(text)
    assert policy.matches_everything
    assert policy.matches_attributes({})
    assert policy.matches_body("not json")


def test_parse_or_not_recognised_is_an_ordinary_key() -> None:
    # SNS: "$or" means OR only before an array of at least two objects without operator names.
    single = parse_filter_policy(json.dumps({"$or": ["a", "b"]}))
    assert single.matches_attributes({"$or": ("String", "a")})
    reserved = json.dumps({"$or": [{"numeric": 123}, {"prefix": "abc"}]})
    assert "Value of numeric must be an array." in _error(reserved).message
    one_object = json.dumps({"$or": [{"a": ["x"]}]})
    assert "Unrecognized match type a" in _error(one_object).message
