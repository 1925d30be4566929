"""The Query codec: form decoding driven by shapes, and the XML writer.

Round trips use botocore's own Query serializer and XML parser with the Query-era SQS model, so
"decode(encode(x)) == x" means "we read exactly what the SDK wrote, and the SDK reads what we write".
"""

from __future__ import annotations

import string
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlencode

import botocore.session
import pytest
from botocore.parsers import QueryParser
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loosely.core.errors import InvalidParameterValue, MissingParameter
from loosely.protocols import awsquery
from loosely.protocols.errors import AwsError, WireError
from loosely.protocols.model import load_service_model

from ._support import DATA

MODEL = load_service_model("sqs-2012-11-05")
NS = MODEL.xml_namespace


def _old_model() -> Any:
    session = botocore.session.get_session()
    session.set_config_variable("data_path", str(DATA))
    return session.get_service_model("sqs")


OLD = _old_model()
SERIALIZER = create_serializer("query", include_validation=False)


def sdk_form(operation: str, params: dict[str, Any]) -> dict[str, str]:
    """The form fields botocore (Query era) sends for ``params``."""
    body = SERIALIZER.serialize_to_request(params, OLD.operation_model(operation))["body"]
    return awsquery.parse_form(urlencode(body).encode())


def decode(operation: str, form: dict[str, str]) -> dict[str, Any]:
    return awsquery.decode(MODEL.operations[operation].input, form)


def sdk_parse(operation: str, body: bytes) -> dict[str, Any]:
    parsed = QueryParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, OLD.operation_model(operation).output_shape
    )
    parsed.pop("ResponseMetadata", None)
    return dict(parsed)


# ---- decoding ----


def test_decode_flattened_map_and_tags() -> None:
    form = {
        "QueueName": "q",
        "Attribute.1.Name": "DelaySeconds",
        "Attribute.1.Value": "5",
        "Attribute.2.Name": "Policy",
        "Attribute.2.Value": "",
        "Tag.1.Key": "team",
        "Tag.1.Value": "a",
    }
    assert decode("CreateQueue", form) == {
        "QueueName": "q",
        "Attributes": {"DelaySeconds": "5", "Policy": ""},
        "tags": {"team": "a"},
    }


def test_decode_batch_entries_in_flattened_and_member_forms_alike() -> None:
    flattened = {
        "QueueUrl": "u",
        "SendMessageBatchRequestEntry.1.Id": "a",
        "SendMessageBatchRequestEntry.1.MessageBody": "x",
        "SendMessageBatchRequestEntry.2.Id": "b",
        "SendMessageBatchRequestEntry.2.MessageBody": "y",
        "SendMessageBatchRequestEntry.2.MessageAttribute.1.Name": "n",
        "SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType": "Binary",
        "SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.BinaryValue": "AAE=",
    }
    member = {k.replace("SendMessageBatchRequestEntry.", "Entries.member."): v for k, v in flattened.items()}
    expected = {
        "QueueUrl": "u",
        "Entries": [
            {"Id": "a", "MessageBody": "x"},
            {"Id": "b", "MessageBody": "y", "MessageAttributes": {"n": {"DataType": "Binary", "BinaryValue": b"\0\1"}}},
        ],
    }
    assert decode("SendMessageBatch", flattened) == expected
    assert decode("SendMessageBatch", member) == expected


def test_decode_list_orders_by_numeric_index() -> None:
    form = {"QueueUrl": "u", "AttributeName.10": "c", "AttributeName.2": "b", "AttributeName.1": "a"}
    assert decode("GetQueueAttributes", form)["AttributeNames"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "item",
    ["MessageSystemAttributeNames.1", "MessageSystemAttributeNames.member.1", "MessageSystemAttributeName.1"],
    ids=["member name", "member form", "singular item (kombu)"],
)
def test_decode_system_attribute_names_under_the_member_name_or_the_singular_item(item: str) -> None:
    form = {"QueueUrl": "u", item: "All", "MaxNumberOfMessages": "3"}
    assert decode("ReceiveMessage", form) == {
        "QueueUrl": "u",
        "MessageSystemAttributeNames": ["All"],
        "MaxNumberOfMessages": 3,
    }


def test_decode_empty_list_marker_is_empty_list() -> None:
    assert decode("DeleteMessageBatch", {"QueueUrl": "u", "Entries": ""})["Entries"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MaxNumberOfMessages", "ten"),
        ("MaxNumberOfMessages", "1.5"),
        ("MaxNumberOfMessages", " 1"),
        ("MaxNumberOfMessages", "1_0"),
        ("MaxNumberOfMessages", "99999999999999999999999"),
        ("VisibilityTimeout", ""),
    ],
)
def test_decode_bad_integer_is_invalid_parameter_value(field: str, value: str) -> None:
    with pytest.raises(InvalidParameterValue, match=field):
        decode("ReceiveMessage", {"QueueUrl": "u", field: value})


def test_decode_bad_base64_is_invalid_parameter_value() -> None:
    form = {
        "QueueUrl": "u",
        "MessageBody": "b",
        "MessageAttribute.1.Name": "n",
        "MessageAttribute.1.Value.DataType": "Binary",
        "MessageAttribute.1.Value.BinaryValue": "not base64!",
    }
    with pytest.raises(InvalidParameterValue):
        decode("SendMessage", form)


def test_decode_missing_required_names_the_parameter() -> None:
    with pytest.raises(MissingParameter, match="MessageBody"):
        decode("SendMessage", {"QueueUrl": "u"})
    with pytest.raises(MissingParameter, match=r"Attribute\.1\.Value"):
        decode("CreateQueue", {"QueueName": "q", "Attribute.1.Name": "DelaySeconds"})

    # A nested structure's required members (DataType here) are the service's to report.
    form = {
        "QueueUrl": "u",
        "MessageBody": "b",
        "MessageAttribute.1.Name": "n",
        "MessageAttribute.1.Value.StringValue": "v",
    }
    assert decode("SendMessage", form)["MessageAttributes"] == {"n": {"StringValue": "v"}}


def test_decode_boolean_and_ignores_unknown_keys() -> None:
    shape = load_service_model("sns-2010-03-31").operations["Subscribe"].input
    out = awsquery.decode(shape, {"TopicArn": "t", "Protocol": "sqs", "ReturnSubscriptionArn": "TRUE", "Junk.1": "x"})
    assert out == {"TopicArn": "t", "Protocol": "sqs", "ReturnSubscriptionArn": True}


def test_parse_form_rejects_bad_utf8_and_merges_query_string() -> None:
    with pytest.raises(WireError):
        awsquery.parse_form(b"Action=%ff%fe")
    assert awsquery.parse_form(b"A=body", b"A=qs&B=2") == {"A": "body", "B": "2"}


# ---- round trips through botocore's serializer ----

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
NAME = st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=12)
ATTRIBUTE = st.one_of(
    st.builds(lambda s: {"DataType": "String", "StringValue": s}, TEXT),
    st.builds(lambda b: {"DataType": "Binary", "BinaryValue": b}, st.binary(max_size=16)),
)
ENTRY = st.fixed_dictionaries(
    {"Id": NAME, "MessageBody": TEXT},
    optional={
        "DelaySeconds": st.integers(0, 2**31 - 1),
        "MessageAttributes": st.dictionaries(NAME, ATTRIBUTE, max_size=3),
        "MessageGroupId": TEXT,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ENTRY, max_size=4), TEXT)
def test_query_send_batch_round_trips_through_botocore(entries: list[dict[str, Any]], url: str) -> None:
    params = {"QueueUrl": url, "Entries": entries}
    # An empty map has no Query form at all: it comes back absent.
    expected = {"QueueUrl": url, "Entries": [{k: v for k, v in e.items() if v != {}} for e in entries]}
    assert decode("SendMessageBatch", sdk_form("SendMessageBatch", params)) == expected


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(NAME, TEXT, max_size=4), st.dictionaries(TEXT.filter(bool), TEXT, max_size=4), TEXT.filter(bool))
def test_query_maps_round_trip_through_botocore(attributes: dict[str, str], tags: dict[str, str], name: str) -> None:
    params: dict[str, Any] = {"QueueName": name, "Attributes": attributes, "tags": tags}
    decoded = decode("CreateQueue", sdk_form("CreateQueue", params))
    assert decoded == {k: v for k, v in params.items() if v or k == "QueueName"}


# ---- the XML writer ----

XML_TEXT = st.text(
    st.characters(
        exclude_categories=("Cs",),
        exclude_characters="".join(chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)),
    ),
    max_size=30,
)
MESSAGE = st.fixed_dictionaries(
    {"MessageId": XML_TEXT, "ReceiptHandle": XML_TEXT, "MD5OfBody": XML_TEXT, "Body": XML_TEXT},
    optional={
        "Attributes": st.dictionaries(st.sampled_from(["SentTimestamp", "SenderId"]), XML_TEXT, max_size=2),
        "MessageAttributes": st.dictionaries(
            NAME,
            st.one_of(
                st.builds(lambda s: {"DataType": "String", "StringValue": s}, XML_TEXT),
                st.builds(lambda b: {"DataType": "Binary", "BinaryValue": b}, st.binary(max_size=8)),
            ),
            max_size=3,
        ),
    },
)


@settings(max_examples=80, deadline=None)
@given(st.lists(MESSAGE, max_size=4))
def test_xml_receive_output_parses_back_in_botocore(messages: list[dict[str, Any]]) -> None:
    op = MODEL.operations["ReceiveMessage"]
    body = awsquery.encode_response(op, {"Messages": messages}, "req-1", NS)
    parsed = sdk_parse("ReceiveMessage", body)
    expected = [{k: v for k, v in m.items() if v != {}} for m in messages]
    assert parsed.get("Messages", []) == expected


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_xml_escape_always_parses_and_keeps_every_xml_character(text: str) -> None:
    element = ET.fromstring(f"<a>{awsquery.xml_escape(text)}</a>".encode("utf-8", "surrogatepass"))
    expected = "".join(c if _xml_char(c) else "\ufffd" for c in text)
    assert (element.text or "") == expected


def _xml_char(c: str) -> bool:
    n = ord(c)
    return n in (0x9, 0xA, 0xD) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


def test_xml_escape_carriage_return_and_markup() -> None:
    assert awsquery.xml_escape('a\r<b>&"') == "a&#13;&lt;b&gt;&amp;&quot;"


def test_xml_response_without_output_has_only_metadata() -> None:
    body = awsquery.encode_response(MODEL.operations["DeleteQueue"], None, "rid", NS)
    root = ET.fromstring(body)
    assert root.tag == f"{{{NS}}}DeleteQueueResponse"
    assert root.findtext(f"{{{NS}}}ResponseMetadata/{{{NS}}}RequestId") == "rid"


def test_xml_error_shape() -> None:
    body = awsquery.encode_error(AwsError("X", "AWS.SimpleQueueService.X"), "bad <thing>", "rid", NS)
    root = ET.fromstring(body)
    assert root.tag == f"{{{NS}}}ErrorResponse"
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Type") == "Sender"
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Code") == "AWS.SimpleQueueService.X"
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Message") == "bad <thing>"
    assert root.find(f"{{{NS}}}Error/{{{NS}}}Detail") is not None
    assert root.findtext(f"{{{NS}}}RequestId") == "rid"


def test_xml_error_without_detail_as_sns_writes_it() -> None:
    body = awsquery.encode_error(AwsError("X", "NotFound", 404), "gone", "rid", NS, detail=False)
    error = ET.fromstring(body).find(f"{{{NS}}}Error")
    assert error is not None
    assert [child.tag for child in error] == [f"{{{NS}}}{tag}" for tag in ("Type", "Code", "Message")]


def test_xml_non_flattened_list_and_map_as_sns_uses_them() -> None:
    sns = load_service_model("sns-2010-03-31")
    op = sns.operations["ListTopics"]
    body = awsquery.encode_response(op, {"Topics": [{"TopicArn": "a"}, {"TopicArn": "b"}]}, "r", sns.xml_namespace)
    assert b"<Topics><member><TopicArn>a</TopicArn></member><member><TopicArn>b</TopicArn></member></Topics>" in body
    op = sns.operations["GetTopicAttributes"]
    body = awsquery.encode_response(op, {"Attributes": {"k": "v"}}, "r", sns.xml_namespace)
    assert b"<Attributes><entry><key>k</key><value>v</value></entry></Attributes>" in body


_FORM_PIECES = st.sampled_from(
    ["a", "b", "=", "&", "+", "%", "%2", "%25", "%41", "%C3%A9", "%FF", "é", "\x00", " ", ";"]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_FORM_PIECES, max_size=24).map("".join))
def test_parse_form_reads_exactly_what_parse_qsl_reads(text: str) -> None:
    """The hand-written form parser is a faster parse_qsl(keep_blank_values=True, errors="strict")."""
    try:
        expected: dict[str, str] | None = dict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        expected = None
    try:
        parsed: dict[str, str] | None = awsquery.parse_form(text.encode())
    except WireError:
        parsed = None
    assert parsed == expected
    if parsed is not None:  # a second read goes through the cache of decoded components
        assert awsquery.parse_form(text.encode()) == parsed


def test_parse_form_refuses_more_fields_than_the_limit() -> None:
    with pytest.raises(WireError):
        awsquery.parse_form(b"&".join([b"a=1"] * (awsquery.MAX_FIELDS + 1)))
    assert len(awsquery.parse_form(b"&".join(b"a%d=1" % i for i in range(awsquery.MAX_FIELDS)))) == awsquery.MAX_FIELDS
