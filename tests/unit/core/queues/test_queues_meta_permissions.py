"""Message meta documents, system attribute views, attribute filters and permission policies."""

from __future__ import annotations

import json

import pytest

from loosely.core.errors import InvalidParameterValue, MissingParameter, OverLimit
from loosely.core.queues import meta, permissions
from loosely.core.queues.models import MessageAttributeValue as Attr
from loosely.core.queues.models import StoredMessage

ARN = "arn:aws:sqs:us-east-1:000000000000:q"


def stored(**changes: object) -> StoredMessage:
    values: dict[str, object] = {
        "row_id": 42,
        "message_id": "m-1",
        "body": "msg",
        "meta": "",
        "sent_ms": 1000,
        "receive_count": 2,
        "first_receive_ms": 2000,
    }
    values.update(changes)
    return StoredMessage(**values)  # type: ignore[arg-type]


def test_meta_round_trip_keeps_attributes_and_digests() -> None:
    original = meta.build_meta(
        "msg",
        "AIDA",
        {"Foo": Attr("String", string_value="Bar"), "Bin": Attr("Binary", binary_value=b"\x00\xff")},
        {"AWSTraceHeader": Attr("String", string_value="Root=1")},
        "dedup-1",
    )
    decoded = meta.decode_meta(meta.encode_meta(original), "msg")
    assert decoded == original
    assert decoded.md5_of_body == "6e2baaf3b97dbeef01c0043275f9a0e7"


def test_meta_unreadable_document_falls_back_to_body_digest() -> None:
    decoded = meta.decode_meta("not json", "msg")
    assert decoded.md5_of_body == "6e2baaf3b97dbeef01c0043275f9a0e7"
    assert decoded.message_attributes == {}


def test_sequence_number_is_twenty_digits_and_ordered() -> None:
    assert meta.sequence_number(1) == "00000000000000000001"
    assert meta.sequence_number(9) < meta.sequence_number(10)


def test_system_attributes_all_standard() -> None:
    info = meta.build_meta("msg", "AIDA", {}, {}, None)
    result = meta.system_attributes(stored(), info, ["All"], fifo=False)
    assert result == {
        "SenderId": "AIDA",
        "SentTimestamp": "1000",
        "ApproximateReceiveCount": "2",
        "ApproximateFirstReceiveTimestamp": "2000",
    }


def test_system_attributes_fifo_and_dead_letter() -> None:
    info = meta.build_meta("msg", "AIDA", {}, {"AWSTraceHeader": Attr("String", string_value="Root=1")}, "d-1")
    message = stored(group_id="g-1", dead_letter_source_arn=ARN)
    result = meta.system_attributes(message, info, ["All"], fifo=True)
    assert result["SequenceNumber"] == "00000000000000000042"
    assert result["MessageGroupId"] == "g-1"
    assert result["MessageDeduplicationId"] == "d-1"
    assert result["AWSTraceHeader"] == "Root=1"
    assert result["DeadLetterQueueSourceArn"] == ARN
    assert meta.system_attributes(message, info, ["SenderId", "Unknown"], fifo=True) == {"SenderId": "AIDA"}
    assert meta.system_attributes(message, info, [], fifo=True) == {}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], set()),
        (["All"], {"General", "Hello", "Help.Me"}),
        ([".*"], {"General", "Hello", "Help.Me"}),
        (["Help.*"], {"Help.Me"}),
        (["Hel.*"], {"Hello", "Help.Me"}),  # AWS: the prefix is what precedes ".*"
        (["*"], {"General", "Hello", "Help.Me"}),
        (["General", "Hello"], {"General", "Hello"}),
        (["Hello", "Missing"], {"Hello"}),
        (["Missing"], set()),
    ],
)
def test_select_message_attributes(names: list[str], expected: set[str]) -> None:
    attributes = {name: Attr("String", string_value="v") for name in ("General", "Hello", "Help.Me")}
    assert set(meta.select_message_attributes(attributes, names)) == expected


def test_add_statement_builds_aws_policy() -> None:
    policy = json.loads(permissions.add_statement(None, ARN, "label1", ["111111111111"], ["ReceiveMessage"]))
    assert policy == {
        "Version": "2008-10-17",
        "Id": f"{ARN}/SQSDefaultPolicy",
        "Statement": [
            {
                "Sid": "label1",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": "SQS:ReceiveMessage",
                "Resource": ARN,
            }
        ],
    }


def test_add_statement_lists_for_several_and_rejects_duplicate_label() -> None:
    text = permissions.add_statement(None, ARN, "a", ["111111111111", "222222222222"], ["SendMessage", "*"])
    statement = json.loads(text)["Statement"][0]
    assert statement["Principal"]["AWS"] == ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]
    assert statement["Action"] == ["SQS:SendMessage", "SQS:*"]
    with pytest.raises(InvalidParameterValue) as caught:
        permissions.add_statement(text, ARN, "a", ["111111111111"], ["SendMessage"])
    assert caught.value.message == "Value a for parameter Label is invalid. Reason: Already exists."


@pytest.mark.parametrize(
    ("label", "accounts", "actions", "error"),
    [
        ("bad label", ["111111111111"], ["SendMessage"], InvalidParameterValue),
        ("ok", [], ["SendMessage"], MissingParameter),
        ("ok", ["111111111111"], [], MissingParameter),
        ("ok", ["123"], ["SendMessage"], InvalidParameterValue),
        ("ok", ["111111111111"], ["CreateQueue"], InvalidParameterValue),
        ("ok", ["111111111111"], ["SendMessage"] * 8, OverLimit),
    ],
)
def test_add_statement_invalid_inputs(label: str, accounts: list[str], actions: list[str], error: type) -> None:
    with pytest.raises(error):
        permissions.add_statement(None, ARN, label, accounts, actions)


def test_remove_statement_keeps_others_then_removes_policy() -> None:
    text = permissions.add_statement(None, ARN, "a", ["111111111111"], ["SendMessage"])
    text = permissions.add_statement(text, ARN, "b", ["111111111111"], ["SendMessage"])
    remaining = permissions.remove_statement(text, ARN, "a")
    assert remaining is not None
    assert [s["Sid"] for s in json.loads(remaining)["Statement"]] == ["b"]
    assert permissions.remove_statement(remaining, ARN, "b") is None
    with pytest.raises(InvalidParameterValue) as caught:
        permissions.remove_statement(remaining, ARN, "zzz")
    assert caught.value.message == "Value zzz for parameter Label is invalid. Reason: can't find label."
