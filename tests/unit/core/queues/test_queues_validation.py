"""Message, batch and receive parameter rules, with AWS's exact error messages."""

from __future__ import annotations

import pytest

from loosely.core.errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    TooManyEntriesInBatchRequest,
)
from loosely.core.queues import validation
from loosely.core.queues.models import MessageAttributeValue as Attr


def test_check_body_empty_is_missing_parameter() -> None:
    with pytest.raises(MissingParameter, match=r"^The request must contain the parameter MessageBody\.$"):
        validation.check_body("")


@pytest.mark.parametrize("body", ["\x00", "a\x08b", "\ud800", "\ufffe", "x\x1f"])
def test_check_body_forbidden_characters_rejected(body: str) -> None:
    with pytest.raises(InvalidMessageContents, match="Invalid characters found"):
        validation.check_body(body)


@pytest.mark.parametrize("body", ["\t\n\r", "plain", "\ud7ff\ue000\ufffd", "\U0001f600", "\U0010ffff"])
def test_check_body_allowed_characters_pass(body: str) -> None:
    validation.check_body(body)


def test_message_size_counts_body_names_types_and_values() -> None:
    attributes = {"ab": Attr("String", string_value="héllo"), "b": Attr("Binary", binary_value=b"\x00\x01")}
    assert validation.message_size("é", attributes) == 2 + (2 + 6 + 6) + (1 + 6 + 2)


def test_check_size_at_limit_passes_and_over_fails() -> None:
    validation.check_size(1024, 1024)
    with pytest.raises(InvalidParameterValue) as caught:
        validation.check_size(1025, 1024)
    assert (
        caught.value.message == "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
    )


def test_check_message_attributes_eleven_rejected_with_count() -> None:
    attributes = {f"a{i}": Attr("String", string_value="v") for i in range(11)}
    with pytest.raises(InvalidParameterValue) as caught:
        validation.check_message_attributes(attributes)
    assert caught.value.message == "Number of message attributes [11] exceeds the allowed maximum [10]."


def test_check_message_attributes_ten_accepted() -> None:
    validation.check_message_attributes({f"a{i}": Attr("String", string_value="v") for i in range(10)})


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("AWS.trace", "reserved for internal use"),
        ("aws.trace", "reserved for internal use"),
        ("Amazon.x", "reserved for internal use"),
        (".lead", "cannot start or end with '.'"),
        ("trail.", "cannot start or end with '.'"),
        ("a..b", "successive '.'"),
        ("with space", "can only contain upper and lower score characters"),
        ("colon:x", "can only contain"),
        ("Invalid-§-attr", "can only contain"),
        ("Invalid-?-attr", "can only contain"),
        ("a" * 256, "shorter than 256 Bytes"),
    ],
)
def test_check_attribute_name_invalid(name: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment):
        validation.check_attribute_name(name)


@pytest.mark.parametrize("name", ["AWSfoo", "aws-foo", "trace.id", "Foo_Bar-1.2", "a" * 255, "attr.1øßä"])
def test_check_attribute_name_valid(name: str) -> None:
    validation.check_attribute_name(name)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (Attr("Str", string_value="v"), "invalid message attribute type"),
        (Attr("string", string_value="v"), "invalid message attribute type"),
        (Attr("String.", string_value="v"), "invalid message attribute type"),
        (Attr("", string_value="v"), "non-empty attribute type"),
        (Attr("String." + "a" * 249, string_value="v"), "types must be shorter than 256 Bytes"),
        (Attr("String"), "must contain a non-empty value of type 'String'"),
        (Attr("String", string_value=""), "must contain a non-empty value of type 'String'"),
        (Attr("Number"), "must contain a non-empty value of type 'Number'"),
        (Attr("Binary"), "must contain a non-empty value of type 'Binary'"),
        (Attr("String", binary_value=b"x"), "non-empty value of type 'String'"),
        (Attr("String", string_value="\x00"), "Invalid characters found"),
        (Attr("Number", string_value="abc"), r"Can't cast the value of message \(user\) attribute 'x' to a number\."),
        (Attr("Number", string_value="1,000"), "to a number"),
        (Attr("Number", string_value="0x1f"), "to a number"),
        (Attr("Number", string_value="NaN"), "to a number"),
        (Attr("Number", string_value="1e"), "to a number"),
        (Attr("Number", string_value="2" + "0" * 126), r"should be in range \(-10\*\*128\.\.10\*\*126\)"),
        (Attr("Number.long", string_value="1e999999999"), "should be in range"),
    ],
)
def test_check_attribute_value_invalid(value: Attr, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment):
        validation.check_attribute_value("x", value)


@pytest.mark.parametrize(
    "value",
    [
        Attr("String", string_value="v"),
        Attr("String.json", string_value="{}"),
        Attr("Number", string_value="-42"),
        Attr("Number", string_value="+3.14"),
        Attr("Number", string_value=".5"),
        Attr("Number", string_value="42."),
        Attr("Number", string_value="1.5e-10"),
        Attr("Number", string_value="1" + "0" * 126),
        Attr("Number.java.lang.Long", string_value="7"),
        Attr("Binary", binary_value=b"\x00"),
        Attr("Binary.gif", binary_value=b"GIF"),
    ],
)
def test_check_attribute_value_valid(value: Attr) -> None:
    validation.check_attribute_value("x", value)


def test_check_system_attributes_only_trace_header() -> None:
    validation.check_system_attributes({"AWSTraceHeader": Attr("String", string_value="Root=1-5")})
    with pytest.raises(InvalidParameterValue, match="Message system attribute name 'Other' is invalid"):
        validation.check_system_attributes({"Other": Attr("String", string_value="x")})
    with pytest.raises(InvalidParameterValue, match="non-empty value of type 'String'"):
        validation.check_system_attributes({"AWSTraceHeader": Attr("Binary", binary_value=b"x")})


def test_check_delay_fifo_rejects_non_zero_with_aws_message() -> None:
    validation.check_delay(0, fifo=True)
    validation.check_delay(None, fifo=True)
    with pytest.raises(InvalidParameterValue) as caught:
        validation.check_delay(2, fifo=True)
    assert caught.value.message == (
        "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid "
        "for this queue type."
    )


@pytest.mark.parametrize(("delay", "ok"), [(0, True), (900, True), (901, False), (-1, False)])
def test_check_delay_standard_range(delay: int, ok: bool) -> None:
    if ok:
        validation.check_delay(delay, fifo=False)
    else:
        with pytest.raises(InvalidParameterValue, match="parameter DelaySeconds is invalid"):
            validation.check_delay(delay, fifo=False)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("g-1", True),
        ("a" * 128, True),
        ("!#$%&'()*+,-./:;<=>?@[]^_`{|}~", True),
        ("a" * 129, False),
        ("", False),
        ("with space", False),
        ("é", False),
    ],
)
def test_check_fifo_id(value: str, ok: bool) -> None:
    if ok:
        validation.check_fifo_id(value, "MessageGroupId")
    else:
        with pytest.raises(InvalidParameterValue, match="MessageGroupId can only include alphanumeric and punctuation"):
            validation.check_fifo_id(value, "MessageGroupId")


@pytest.mark.parametrize(
    ("check", "bad", "message"),
    [
        (
            validation.check_max_messages,
            11,
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            validation.check_max_messages,
            0,
            "Value 0 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            validation.check_wait_time,
            21,
            "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        ),
        (
            validation.check_visibility_timeout,
            43201,
            "Value 43201 for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.",
        ),
        (
            validation.check_visibility_timeout,
            -1,
            "Value -1 for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.",
        ),
    ],
)
def test_receive_parameter_out_of_range_messages(check, bad: int, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidParameterValue) as caught:
        check(bad)
    assert caught.value.message == message


def test_check_batch_ids_rules() -> None:
    validation.check_batch_ids(["a", "b-1", "C_2"], "SendMessageBatch")
    with pytest.raises(EmptyBatchRequest, match="at least one SendMessageBatchRequestEntry"):
        validation.check_batch_ids([], "SendMessageBatch")
    with pytest.raises(TooManyEntriesInBatchRequest) as caught:
        validation.check_batch_ids([str(i) for i in range(20)], "SendMessageBatch")
    assert caught.value.message == "Maximum number of entries per request are 10. You have sent 20."
    with pytest.raises(BatchEntryIdsNotDistinct, match="Id a repeated"):
        validation.check_batch_ids(["a", "a"], "DeleteMessageBatch")


@pytest.mark.parametrize("entry_id", ["", "invalid:id", "x" * 81, "é"])
def test_check_batch_ids_invalid_id(entry_id: str) -> None:
    with pytest.raises(InvalidBatchEntryId) as caught:
        validation.check_batch_ids([entry_id], "DeleteMessageBatch")
    assert caught.value.message == (
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long."
    )


def test_check_tags_limits() -> None:
    validation.check_tags({"k" * 128: "v" * 256}, "q", 50)
    with pytest.raises(InvalidParameterValue, match="Tag keys"):
        validation.check_tags({"": "v"}, "q", 1)
    with pytest.raises(InvalidParameterValue, match="Tag values"):
        validation.check_tags({"k": "v" * 257}, "q", 1)
    with pytest.raises(InvalidParameterValue, match="Too many tags added for queue q"):
        validation.check_tags({"k": "v"}, "q", 51)


def _valid_by_xml_rule(text: str) -> bool:
    """SQS's rule spelled out: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF."""
    return all(
        c in (0x9, 0xA, 0xD) or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD or 0x10000 <= c <= 0x10FFFF
        for c in map(ord, text)
    )


@pytest.mark.parametrize("code", range(0x80))
def test_ascii_fast_path_agrees_with_the_rule_for_every_ascii_character(code: int) -> None:
    for text in (chr(code), f"body {chr(code)} text", chr(code) * 3):
        assert validation.has_only_valid_chars(text) is _valid_by_xml_rule(text)


@pytest.mark.parametrize("text", ["ascii then \x00", "é\x00", "é\x7f\t", "\ud800 lone", "\U0001f600\x1f", "\ufffe"])
def test_non_ascii_text_takes_the_exact_pattern(text: str) -> None:
    assert validation.has_only_valid_chars(text) is _valid_by_xml_rule(text)
