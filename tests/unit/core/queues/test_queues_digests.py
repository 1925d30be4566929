"""MD5 digests, checked against values AWS returned (recorded by SDK users and emulator suites)."""

from __future__ import annotations

import pytest

from loosely.core.queues.digests import md5_of_attributes, md5_of_body
from loosely.core.queues.models import MessageAttributeValue


def string(value: str, data_type: str = "String") -> MessageAttributeValue:
    return MessageAttributeValue(data_type=data_type, string_value=value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("msg", "6e2baaf3b97dbeef01c0043275f9a0e7"),
        ("test", "098f6bcd4621d373cade4e832627b4f6"),
        ("message-body-1", "19c9e282d65f9733bc6b35d50062c7ee"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
    ],
)
def test_md5_of_body_known_aws_values(body: str, expected: str) -> None:
    assert md5_of_body(body) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # AWS documentation sample (two String attributes, given out of order).
        (
            {
                "test_attribute_name_2": string("test_attribute_value_2"),
                "test_attribute_name_1": string("test_attribute_value_1"),
            },
            "d53f3b558fe951154770f25cb63dbba9",
        ),
        # AWS documentation sample with a Binary attribute.
        (
            {"test_attribute_name": MessageAttributeValue("Binary", binary_value=b"test_attribute_value")},
            "23f6bd27ea87aab7dfeadcc9aebee495",
        ),
        ({"SellerName": string("Example Store")}, "cd28f3b68aeee4b2eac9c66f2f694b58"),
        ({"ordinal": string("1", "Number"), "category": string("test")}, "d21ae90c49061e927f57df5f5d72be1f"),
        ({"Foo": string("Bar")}, "ae7155c6026991b6d54b11589678bf9c"),
        (
            {"General": string("Kenobi"), "Hello": string("There"), "Help.Me": string("Me")},
            "4c360f3fdafd970e05fae2f149d997f5",
        ),
        ({"General": string("Kenobi"), "Hello": string("There")}, "fca026605781cb4126a1e9044df24232"),
        ({"Hello": string("There")}, "a311262e065454b75da111d535b8dacd"),
        ({"Hello": string("There"), "Help.Me": string("Me")}, "83fee93c1bcd8b9a5a923ffacdc636c7"),
    ],
)
def test_md5_of_attributes_known_aws_values(attributes: dict[str, MessageAttributeValue], expected: str) -> None:
    assert md5_of_attributes(attributes) == expected


def test_md5_of_attributes_empty_is_none() -> None:
    assert md5_of_attributes({}) is None


def test_md5_of_attributes_custom_type_changes_digest() -> None:
    plain = md5_of_attributes({"n": string("1", "Number")})
    custom = md5_of_attributes({"n": string("1", "Number.int")})
    assert plain != custom


def test_md5_of_attributes_binary_custom_type_uses_binary_transport() -> None:
    binary = MessageAttributeValue("Binary.gif", binary_value=b"abc")
    as_string = MessageAttributeValue("String.gif", string_value="abc")
    assert md5_of_attributes({"x": binary}) != md5_of_attributes({"x": as_string})
