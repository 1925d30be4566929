"""Filter policy matching, table-driven from the AWS documentation's examples, plus edge cases.

Micro-benchmark (not a timed test; shared 2-core box, CPython 3.11, noisy): the docs' four-key
policy parses in ~0.1-0.4 ms (a 150-value key in ~1 ms), and matching a prepared message costs
~4-6 us per subscription; preparing a small JSON body costs ~7 us, once per message:

    python -m timeit -s "from loosely.core.topics import *; import json; \
        p = parse_filter_policy(json.dumps({'store': ['example_corp'], 'event': [{'anything-but': 'x'}], \
        'customer_interests': ['rugby'], 'price_usd': [{'numeric': ['>=', 100]}]})); \
        f = MessageFields.from_attributes({'store': ('String', 'example_corp'), 'event': ('String', 'a'), \
        'customer_interests': ('String.Array', '[\\"soccer\\", \\"rugby\\"]'), 'price_usd': ('Number', '210.75')})" \
        "p.matches(f)"
"""

from __future__ import annotations

import json

import pytest

from loosely.core.queues.models import MessageAttributeValue
from loosely.core.topics import FilterPolicy, MessageFields, parse_filter_policy
from loosely.core.topics.filter_policy import PublishedAttribute

# The docs' example message, once as attributes and once as a body.
DOC_ATTRIBUTES: dict[str, PublishedAttribute] = {
    "customer_interests": ("String.Array", '["soccer", "rugby", "hockey"]'),
    "store": ("String", "example_corp"),
    "event": ("String", "order_placed"),
    "price_usd": ("Number", "210.75"),
}
DOC_BODY = json.dumps(
    {
        "customer_interests": ["soccer", "rugby", "hockey"],
        "store": "example_corp",
        "event": "order_placed",
        "price_usd": 210.75,
    }
)

DOC_POLICIES = [
    (
        {
            "store": ["example_corp"],
            "event": [{"anything-but": "order_cancelled"}],
            "customer_interests": ["rugby", "football", "baseball"],
            "price_usd": [{"numeric": [">=", 100]}],
        },
        True,
    ),
    ({"customer_interests": ["rugby", "tennis"]}, True),
    ({"customer_interests": ["baseball"]}, False),
    ({"store": ["example_corp"], "event": ["order_cancelled"]}, False),
    ({"event": [{"prefix": "order-"}]}, False),
    ({"event": [{"prefix": "order_"}]}, True),
    ({"event": [{"suffix": "_placed"}]}, True),
    ({"event": [{"equals-ignore-case": "ORDER_PLACED"}]}, True),
    ({"store": [{"anything-but": ["example_corp", "other"]}]}, False),
    ({"store": [{"anything-but": {"prefix": "example"}}]}, False),
    ({"store": [{"anything-but": {"suffix": "_corp"}}]}, False),
    ({"store": [{"anything-but": {"equals-ignore-case": ["EXAMPLE_CORP"]}}]}, False),
    ({"customer_interests": [{"anything-but": ["rugby", "tennis"]}]}, True),  # soccer is neither
    ({"price_usd": [{"numeric": [">", 0, "<=", 210.75]}]}, True),
    ({"price_usd": [{"numeric": [">", 210.75]}]}, False),
    ({"price_usd": [{"numeric": ["=", 2.1075e2]}]}, True),
    ({"price_usd": [210.75]}, True),
    ({"price_usd": ["210.75"]}, False),  # a string pattern never matches a number
    ({"store": [{"exists": True}]}, True),
    ({"store": [{"exists": False}]}, False),
    ({"coupon": [{"exists": False}]}, True),
    ({"coupon": [{"exists": True}]}, False),
    (
        {"store": ["example_corp"], "$or": [{"event": ["order_cancelled"]}, {"price_usd": [{"numeric": [">", 200]}]}]},
        True,
    ),
    ({"store": ["other"], "$or": [{"event": ["order_placed"]}, {"price_usd": [{"numeric": [">", 200]}]}]}, False),
    ({"$or": [{"event": ["nope"]}, {"$or": [{"store": ["nope"]}, {"customer_interests": ["hockey"]}]}]}, True),
]


@pytest.mark.parametrize(("policy", "expected"), DOC_POLICIES)
def test_docs_policies_on_message_attributes(policy: object, expected: bool) -> None:
    compiled = parse_filter_policy(json.dumps(policy), "MessageAttributes")
    assert compiled.matches_attributes(DOC_ATTRIBUTES) is expected


@pytest.mark.parametrize(("policy", "expected"), DOC_POLICIES)
def test_docs_policies_on_message_body(policy: object, expected: bool) -> None:
    compiled = parse_filter_policy(json.dumps(policy), "MessageBody")
    assert compiled.matches_body(DOC_BODY) is expected


def _attrs(policy: object, attributes: dict[str, PublishedAttribute]) -> bool:
    return parse_filter_policy(json.dumps(policy)).matches_attributes(attributes)


def _body(policy: object, body: object) -> bool:
    text = body if isinstance(body, str) else json.dumps(body)
    return parse_filter_policy(json.dumps(policy), "MessageBody").matches_body(text)


ATTRIBUTE_CASES = [
    # numeric matching (docs): equal values in other notation, anything-but over arrays
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, {"price_usd": ("Number", "3.015e2")}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": ("Number", "101")}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": ("Number", "100.1")}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": ("Number", "100")}, False),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": ("Number.Array", "[100, 50]")}, True),
    ({"price": [{"numeric": ["<", 0]}]}, {"price": ("Number", "-0.5")}, True),
    ({"price": [{"numeric": ["<", 0]}]}, {"price": ("Number", "0")}, False),
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, {"price": ("Number", "150")}, True),
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, {"price": ("Number", "150.00001")}, False),
    ({"price": [{"numeric": [">=", 0, "<", 150]}]}, {"price": ("Number", "0")}, True),
    ({"price": [{"numeric": [">=", 0, "<", 150]}]}, {"price": ("Number", "150")}, False),
    ({"price": [{"numeric": ["<=", 5]}]}, {"price": ("Number", "5")}, True),
    # five decimals of accuracy: differences below 1e-5 are equal
    ({"price": [{"numeric": ["=", 1.000001]}]}, {"price": ("Number", "1")}, True),
    ({"price": [{"numeric": ["=", 1.00001]}]}, {"price": ("Number", "1")}, False),
    ({"price": [300]}, {"price": ("Number", "3.0e2")}, True),
    ({"price": [300]}, {"price": ("String", "300")}, False),
    ({"price": ["300"]}, {"price": ("Number", "300")}, False),
    ({"price": [{"numeric": [">", 0]}]}, {"price": ("Number", "2e9")}, False),  # beyond ±1e9
    ({"big": [5000000000]}, {"big": ("Number", "5e9")}, True),  # the literal still matches
    ({"price": [{"numeric": [">", 0]}]}, {"price": ("String", "5")}, False),
    # custom type labels keep their base type; String.Array elements match one by one
    ({"store": ["a"]}, {"store": ("String.custom", "a")}, True),
    ({"n": [{"numeric": [">", 1]}]}, {"n": ("Number.float", "1.5")}, True),
    ({"store": ["value1"]}, {"store": ("String.Array", '["value1", "value2"]')}, True),
    ({"store": ["value1"]}, {"store": ("String.Array", '["value2", "value3"]')}, False),
    ({"flags": [True, 7, None]}, {"flags": ("String.Array", "[false, 7]")}, True),
    ({"flags": [True]}, {"flags": ("String", "true")}, False),
    ({"flags": [None]}, {"flags": ("String.Array", "[null]")}, True),
    ({"store": ["value1"]}, {"store": ("String.Array", "not json")}, False),
    ({"store": [{"exists": True}]}, {"store": ("String.Array", "[]")}, False),
    # Binary attributes are never compared, not even for exists
    ({"blob": [{"exists": True}]}, {"blob": ("Binary", b"\x00")}, False),
    ({"blob": [{"exists": False}]}, {"blob": ("Binary", b"\x00"), "x": ("String", "y")}, True),
    # exists false needs at least one attribute; anything-but needs the attribute
    ({"store": [{"exists": False}]}, {"def": ("Number", "99")}, True),
    ({"store": [{"exists": False}]}, {}, False),
    ({"store": [{"exists": False}]}, {"blob": ("Binary", b"\x01")}, False),
    ({"attr1": [None, {"anything-but": "whatever"}]}, {}, False),
    ({"attr1": [None, {"anything-but": "whatever"}]}, {"attr1": ("String", "other")}, True),
    ({"store": [{"anything-but": "a"}, {"exists": False}]}, {"x": ("String", "1")}, True),
    # case sensitivity, prefixes, suffixes, ignore-case
    ({"s": ["Rugby"]}, {"s": ("String", "rugby")}, False),
    ({"s": [{"prefix": "bas"}]}, {"s": ("String", "basketball")}, True),
    ({"s": [{"prefix": "bas"}]}, {"s": ("String", "rugby")}, False),
    ({"s": [{"prefix": ""}]}, {"s": ("String", "anything")}, True),
    ({"s": [{"suffix": "ball"}]}, {"s": ("String", "baseball")}, True),
    ({"s": [{"equals-ignore-case": "ÉCOLE"}]}, {"s": ("String", "école")}, True),
    ({"s": [{"anything-but": {"prefix": "bas"}}]}, {"s": ("String", "rugby")}, True),
    ({"s": [{"anything-but": {"prefix": "bas"}}]}, {"s": ("String", "baseball")}, False),
    ({"s": [{"anything-but": {"suffix": "ball"}}]}, {"s": ("String", "tennis")}, True),
    ({"s": [{"anything-but": {"equals-ignore-case": "RUGBY"}}]}, {"s": ("String", "Rugby")}, False),
    ({"s": [{"anything-but": {"prefix": "bas"}}]}, {"s": ("Number", "5")}, True),
    # IP addresses: cidr ranges start at the given address; plain IP patterns compare as addresses
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": ("String", "10.0.0.255")}, True),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": ("String", "10.0.1.0")}, False),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": ("String", "not an ip")}, False),
    ({"ip": [{"cidr": "10.0.0.5/24"}]}, {"ip": ("String", "10.0.0.4")}, False),
    ({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": ("String", "2001:db8:ffff::1")}, True),
    ({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": ("String", "10.0.0.1")}, False),
    ({"ip": [{"cidr": "0.0.0.0/0"}]}, {"ip": ("String", "::ffff:192.0.2.1")}, True),
    ({"ip": ["::1"]}, {"ip": ("String", "0:0:0:0:0:0:0:1")}, True),
    ({"ip": ["10.0.0.1"]}, {"ip": ("String", "10.0.0.1")}, True),
    ({"ip": ["10.0.0.1"]}, {"ip": ("String", "10.0.0.2")}, False),
    # "$or" that SNS does not recognise is an attribute named "$or"
    ({"$or": ["a", "b"]}, {"$or": ("String", "b")}, True),
]


@pytest.mark.parametrize(("policy", "attributes", "expected"), ATTRIBUTE_CASES)
def test_matches_attributes_cases(policy: object, attributes: dict[str, PublishedAttribute], expected: bool) -> None:
    assert _attrs(policy, attributes) is expected


BODY_CASES = [
    # AWS-validated payload filtering (nested keys, prefix, exists false on leaves)
    (
        {
            "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
            "test": [{"exists": False}],
        },
        {"object": {"key": "auto-test"}},
        True,
    ),
    (
        {
            "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
            "test": [{"exists": False}],
        },
        {"object": {"key": "hardcodedvalue"}},
        True,
    ),
    (
        {
            "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
            "test": [{"exists": False}],
        },
        {"object": {"key": "test-auto"}},
        False,
    ),
    (
        {
            "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
            "test": [{"exists": False}],
        },
        {"object": {"key": "auto-test"}, "test": "just-exists"},
        False,
    ),
    (
        {
            "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
            "test": [{"exists": False}],
        },
        {"object": {"key": "auto-test", "nested_key": "just-exists"}},
        False,
    ),
    ({"object": {"key": [{"prefix": "auto-"}]}}, {"object": {"test": "auto-test"}}, False),
    ({"object": {"key": [{"prefix": "auto-"}]}}, "Regular string message", False),
    ({"object": {"key": [{"prefix": "auto-"}]}}, json.dumps("a JSON string, not an object"), False),
    # dots in keys and bodies are the same path as nesting
    ({"object.nested": ["string.value"]}, {"object": {"nested": "string.value"}}, True),
    ({"object.nested": ["string.value"]}, {"object.nested": "string.value"}, True),
    ({"object.nested": ["string.value"]}, {"object": {"nested": "test-auto"}}, False),
    ({"object.nested.test": ["string.value"]}, {"object.nested": {"test": "string.value"}}, True),
    ({"object.nested.test": ["string.value"]}, {"object": {"nested.test": "string.value"}}, True),
    ({"object": {"nested": {"test": ["string.value"]}}}, {"object.nested.test": "string.value"}, True),
    # arrays: any element; arrays of objects; arrays of arrays
    ({"headers": {"route-to": ["queue1"]}}, {"headers": {"route-to": ["queue1", "queue2"]}}, True),
    ({"headers": {"route-to": ["queue1"]}}, {"headers": {"route-to": ["queue3"]}}, False),
    (
        {"Records": {"s3": {"object": {"key": [{"prefix": "auto-"}]}}, "eventName": [{"prefix": "ObjectCreated:"}]}},
        {
            "Records": [
                {"eventName": "ObjectCreated:Put", "s3": {"object": [[{"key": "auto-insurance-2314.xml"}]]}},
                {"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "home-insurance-2314.xml"}}},
            ]
        },
        True,
    ),
    (
        {"Records": {"s3": {"object": {"key": [{"prefix": "auto-"}]}}, "eventName": [{"prefix": "ObjectCreated:"}]}},
        {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "auto-insurance-2314.xml"}}}]},
        False,
    ),
    (
        {"Records": {"s3": {"object": {"key": [{"prefix": "auto-"}]}}, "eventName": [{"prefix": "ObjectCreated:"}]}},
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "home-insurance-2314.xml"}}}]},
        False,
    ),
    # literals and null
    ({"encrypted": [False]}, {"encrypted": False}, True),
    ({"encrypted": [False]}, {"encrypted": 0}, False),
    ({"count": [1]}, {"count": True}, False),
    ({"error": [None]}, {"error": None}, True),
    ({"error": [None]}, {}, False),
    ({"error": [{"exists": True}]}, {"error": None}, False),
    ({"error": [{"exists": False}]}, {"error": None}, True),
    ({"a": [{"exists": True}]}, {"a": []}, False),
    ({"a": [{"exists": True}]}, {"a": {}}, False),
    ({"a": [{"exists": True}]}, {"a": ""}, True),
    # numbers in bodies
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, {"price_usd": 3.015e2}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": [100, 50]}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": 100}, False),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": "100"}, True),
    ({"price": [{"numeric": [">", 0]}]}, {"price": 10**400}, False),
    # OR operator: "source" && ("metricName" || "namespace")
    (
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "metricName": "CPUUtilization"},
        True,
    ),
    (
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
        True,
    ),
    (
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        False,
    ),
    (
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
        {"metricName": "CPUUtilization"},
        False,
    ),
    # nested OR inside a nested key
    (
        {"detail": {"scope": ["Service"], "$or": [{"source": ["aws.cloudwatch"]}, {"type": ["Alarm"]}]}},
        {"detail": {"scope": "Service", "type": "Alarm"}},
        True,
    ),
    (
        {"detail": {"scope": ["Service"], "$or": [{"source": ["aws.cloudwatch"]}, {"type": ["Alarm"]}]}},
        {"detail": {"scope": "Service"}, "type": "Alarm"},
        False,
    ),
    (
        {"detail": {"scope": ["Service"], "$or": [{"source": ["aws.cloudwatch"]}, {"type": ["Alarm"]}]}},
        {"detail": {"type": "Alarm"}},
        False,
    ),
]


@pytest.mark.parametrize(("policy", "body", "expected"), BODY_CASES)
def test_matches_body_cases(policy: object, body: object, expected: bool) -> None:
    assert _body(policy, body) is expected


def test_matches_body_never_matches_invalid_or_non_object_json() -> None:
    policy = parse_filter_policy(json.dumps({"a": [{"exists": False}]}), "MessageBody")
    for body in ["", "{", "[1, 2]", "null", '{"a": NaN}', "[" * 5000 + "]" * 5000]:
        assert not policy.matches_body(body)
    assert policy.matches_body("{}")


def test_matches_later_duplicate_path_wins_like_the_rule_compiler() -> None:
    policy = parse_filter_policy('{"a.b": ["first"], "a": {"b": ["second"]}}', "MessageBody")
    assert policy.matches_body('{"a": {"b": "second"}}')
    assert not policy.matches_body('{"a": {"b": "first"}}')


def test_matches_message_dispatches_on_scope() -> None:
    by_body = parse_filter_policy('{"k": ["v"]}', "MessageBody")
    by_attributes = parse_filter_policy('{"k": ["v"]}', "MessageAttributes")
    attributes: dict[str, PublishedAttribute] = {"k": ("String", "other")}
    assert by_body.matches_message(attributes, '{"k": "v"}')
    assert not by_attributes.matches_message(attributes, '{"k": "v"}')


def test_prepared_fields_serve_many_policies() -> None:
    fields = MessageFields.from_envelope_attributes(
        {"store": {"Type": "String", "Value": "example_corp"}, "price_usd": {"Type": "Number", "Value": "210.75"}}
    )
    policies: list[FilterPolicy] = [
        parse_filter_policy(json.dumps({"store": [name]})) for name in ("a", "example_corp", "b")
    ]
    assert [policy.matches(fields) for policy in policies] == [False, True, False]


def test_parse_compiles_one_rule_per_or_expansion() -> None:
    policy = parse_filter_policy(
        json.dumps({"a": ["1"], "$or": [{"b": ["1"]}, {"c": ["1"], "$or": [{"d": ["1"]}, {"e": ["1"]}]}]})
    )
    assert sorted(sorted(path for path, _ in rule) for rule in policy.rules) == [
        ["a", "b"],
        ["a", "c", "d"],
        ["a", "c", "e"],
    ]


def test_prepared_fields_from_attribute_records() -> None:
    fields = MessageFields.from_attribute_values(
        {
            "store": MessageAttributeValue("String", string_value="example_corp"),
            "blob": MessageAttributeValue("Binary", binary_value=b"\x00"),
        }
    )
    assert parse_filter_policy('{"store": ["example_corp"]}').matches(fields)
    assert not parse_filter_policy('{"blob": [{"exists": true}]}').matches(fields)
