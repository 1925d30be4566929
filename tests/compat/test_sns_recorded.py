"""SNS answers checked against responses recorded from real AWS (boto3 against a live server).

Each expected code, message and status is a fact recorded from AWS by a public test suite; the
comment above each check names the recording it comes from (localstack's
``tests/aws/services/sns/test_sns.snapshot.json`` or ``test_sns_filter_policy.snapshot.json``, by
test name and snapshot key). docs/compatibility-audit.md lists what was compared.
"""

from __future__ import annotations

import http.server
import json
import queue
import threading
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat

_AT = "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: {}]"


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue_arn(sqs: Any) -> str:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


@pytest.fixture
def sqs(loosely: Any) -> Any:
    return loosely.boto3_client("sqs")


def test_attribute_that_is_not_json_quotes_jacksons_error(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs))["SubscriptionArn"]

    def set_attribute(name: str, value: str) -> tuple[str, str, int]:
        return raised(sns.set_subscription_attributes, SubscriptionArn=arn, AttributeName=name, AttributeValue=value)

    unquoted = "Unexpected character ('i' (code 105)): was expecting double-quote to start field name" + _AT.format(2)
    # test_validate_set_sub_attributes: invalid-json-redrive-policy, invalid-json-filter-policy
    assert set_attribute("RedrivePolicy", "{invalid json}") == (
        "InvalidParameter",
        f"Invalid parameter: RedrivePolicy: failed to parse JSON. {unquoted}",
        400,
    )
    assert set_attribute("FilterPolicy", "{invalid json}") == (
        "InvalidParameter",
        f"Invalid parameter: FilterPolicy: failed to parse JSON. {unquoted}",
        400,
    )
    # TestSNSSubscriptionCrudV2::test_subscribe_invalid_filter_policy: subscribe-invalid-filter-policy
    assert raised(
        sns.subscribe,
        TopicArn=topic,
        Protocol="email",
        Endpoint="test@example.com",
        Attributes={"FilterPolicy": "invalid-json"},
    ) == (
        "InvalidParameter",
        "Invalid parameter: Attributes Reason: FilterPolicy: failed to parse JSON. Unrecognized token 'invalid': "
        "was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')" + _AT.format(8),
        400,
    )
    assert "RedrivePolicy" not in sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]


def test_confirm_subscription_tells_a_malformed_token_from_an_unknown_one(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    unknown = "51b2ff3edb475b7d91550e0ab6edf0c1de2a34e6ebaf6c2262a001bcb7e051c43aa00022ceecce70bd2a67b2042da8d8eb47"

    # test_sns_confirm_subscription_wrong_token: topic-not-exists, invalid-token, token-not-exists
    assert raised(sns.confirm_subscription, TopicArn=topic[:-1] + "i", Token=unknown) == (
        "InvalidParameter",
        "Invalid parameter: Token",
        400,
    )
    assert raised(sns.confirm_subscription, TopicArn=topic, Token="randomtoken") == (
        "InvalidParameter",
        "Invalid token",
        400,
    )
    assert raised(sns.confirm_subscription, TopicArn=topic, Token=unknown) == (
        "InvalidParameter",
        "Invalid parameter: Token",
        400,
    )


def test_a_missing_topic_or_subscription_arn_is_an_invalid_parameter(raw_sns: Any) -> None:
    # test_unsubscribe_wrong_arn_format: invalid-unsubscribe-arn-4 (Unsubscribe without SubscriptionArn)
    assert raised(raw_sns.unsubscribe) == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter",
        400,
    )
    # SNS words every missing topic or subscription ARN alike (an SDK's recorded SNS error names TopicArn).
    assert raised(raw_sns.get_topic_attributes) == (
        "InvalidParameter",
        "Invalid parameter: TopicArn Reason: no value for required parameter",
        400,
    )
    assert raised(raw_sns.get_subscription_attributes)[1] == (
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter"
    )
    # test_publish_wrong_arn_format: empty-topic (an empty ARN is present, and malformed)
    assert raised(raw_sns.delete_topic, TopicArn="")[1] == (
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1"
    )


def test_sms_subscription_endpoints(sns: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]

    # TestSNSSubscriptionCrudV2::test_subscribe_sms_obscure_phone_number: subscribe-sms-2
    arn = sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+12/34-567.890")["SubscriptionArn"]
    assert arn.startswith(topic + ":")
    # TestSNSSubscriptionCrudV2::test_subscribe_bad_sms: subscribe-bad-sms; test_publish_wrong_phone_format
    for number in ("invalid-number", "NAA+15551234567", "+15--551234567", "+15551234567."):
        assert raised(sns.subscribe, TopicArn=topic, Protocol="sms", Endpoint=number) == (
            "InvalidParameter",
            f"Invalid SMS endpoint: {number}",
            400,
        )


def test_a_subscription_arn_of_another_service_has_no_subscription_id(sns: Any, raw_sns: Any) -> None:
    # TestSNSSubscriptionCrudV2::test_get_subscription_attributes_error_not_exists: get-sub-attrs-nonexistent
    # (the test, ported from moto's of the same name, asks for a queue's ARN with a subscription id appended)
    queue_arn = "arn:aws:sqs:us-east-1:000000000000:test-queue:66d97e76-31e5-444f-8fa7-b60b680d0d39"
    assert raised(sns.get_subscription_attributes, SubscriptionArn=queue_arn) == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionId",
        400,
    )
    # test_unsubscribe_wrong_arn_format: invalid-unsubscribe-arn-3, -2 (Unsubscribe checks ARNs as the above does)
    assert raised(raw_sns.unsubscribe, SubscriptionArn=queue_arn)[1] == "Invalid parameter: SubscriptionId"
    assert raised(raw_sns.unsubscribe, SubscriptionArn="arn:aws:sns:us-east-1:111111111111:random") == (
        "InvalidParameter",
        "Invalid parameter: SubscriptionId",
        400,
    )
    assert raised(raw_sns.unsubscribe, SubscriptionArn="arn:aws:sns:us-east-1:random")[1] == (
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 5"
    )


class _Endpoint:
    """An HTTP subscriber on this machine: it answers 200 and hands over what it was sent."""

    def __init__(self) -> None:
        received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put(({name.lower(): value for name, value in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns-endpoint"

    def next(self) -> tuple[dict[str, str], bytes]:
        return self.received.get(timeout=10)

    def next_json(self) -> dict[str, Any]:
        return dict(json.loads(self.next()[1]))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    subscriber = _Endpoint()
    try:
        yield subscriber
    finally:
        subscriber.close()


def _visit(url: str) -> tuple[int, ET.Element]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, ET.fromstring(response.read())
    except urllib.error.HTTPError as error:
        return error.code, ET.fromstring(error.read())


def _error_fields(root: ET.Element) -> dict[str, str | None]:
    """The members of an ErrorResponse's ``Error``, by local name."""
    error = root.find("{*}Error")
    assert root.tag.endswith("ErrorResponse") and error is not None
    return {child.tag.split("}")[1]: child.text for child in error}


def test_visiting_a_subscribe_url_with_a_wrong_topic_arn_or_token(sns: Any, endpoint: _Endpoint) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint.url, ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]
    confirmation = endpoint.next_json()
    token = confirmation["Token"]
    service_url = confirmation["SubscribeURL"].rsplit("/", 1)[0]

    def confirm_url(topic_arn: str, token: str) -> str:
        return f"{service_url}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"

    # TestSNSSubscriptionHttp::test_subscribe_external_http_endpoint[False]: broken-topic-arn-confirm,
    # broken-token-confirm, different-region-arn-confirm (an ErrorResponse whose Error holds Type, Code
    # and Message, nothing else), then nonexistent-token-confirm: a topic of the right region that does not
    # exist still confirms, and confirm-subscribe: confirming again answers the same ARN.
    error = {"Type": "Sender", "Code": "InvalidParameter"}
    status, root = _visit(confirm_url("not-an-arn", token))
    assert (status, _error_fields(root)) == (400, {**error, "Message": "Invalid parameter: Topic"})
    status, root = _visit(confirm_url(topic, "abc123"))
    assert (status, _error_fields(root)) == (400, {**error, "Message": "Invalid parameter: Token"})
    status, root = _visit(confirm_url(topic.replace("us-east-1", "eu-central-1"), token))
    assert (status, _error_fields(root)) == (400, {**error, "Message": "Invalid parameter: Topic"})
    assert sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["PendingConfirmation"] == "true"

    missing_topic = topic[:-1] + ("a" if topic[-1] != "a" else "b")
    for url in (confirm_url(missing_topic, token), confirmation["SubscribeURL"]):
        status, root = _visit(url)
        assert status == 200
        assert root.findtext("{*}ConfirmSubscriptionResult/{*}SubscriptionArn") == subscription
    assert sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["PendingConfirmation"] == "false"


def _post_sns_form(loosely: Any, form: dict[str, str]) -> httpx.Response:
    """A Query request as an SDK signs it for SNS (the credential scope names the service)."""
    credential = "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sns/aws4_request"
    return httpx.post(
        loosely.endpoint,
        data=form,
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0"},
        timeout=10,
    )


def test_an_sns_error_is_xml_without_a_query_error_header(loosely: Any) -> None:
    # botocore's SNS model has no awsQueryCompatible trait: SNS answers XML only, and no SDK reads an
    # x-amzn-query-error header from it. The ErrorResponse holds Type, Code and Message
    # (test_subscribe_external_http_endpoint: broken-topic-arn-confirm), and the status is the error's
    # (TestSNSTopicCrud::test_create_topic_with_attributes: get-attrs-nonexistent-topic).
    form = {
        "Action": "GetTopicAttributes",
        "Version": "2010-03-31",
        "TopicArn": f"arn:aws:sns:us-east-1:000000000000:{_name()}",
    }
    response = _post_sns_form(loosely, form)

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/xml"
    assert "x-amzn-query-error" not in response.headers
    root = ET.fromstring(response.content)
    assert root.tag == "{http://sns.amazonaws.com/doc/2010-03-31/}ErrorResponse"
    assert _error_fields(root) == {"Type": "Sender", "Code": "NotFound", "Message": "Topic does not exist"}
    assert root.findtext("{*}RequestId") == response.headers["x-amzn-requestid"]


@pytest.mark.parametrize(
    ("data_type", "accepted"),
    [
        # TestSNSSubscriptionSQS::test_message_attributes_prefixes: publish-error, publish-error-2,
        # publish-ok-1, publish-ok-2 (a custom type is a known type, a dot, and at least one more character)
        ("String.", False),
        ("Stringprefixed", False),
        ("String.prefixed", True),
        ("String.  prefixed.", True),
    ],
)
def test_message_attribute_type_prefixes(sns: Any, data_type: str, accepted: bool) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    attributes = {"attr1": {"DataType": data_type, "StringValue": "prefixed-1"}}

    if accepted:
        assert sns.publish(TopicArn=topic, Message="test message", MessageAttributes=attributes)["MessageId"]
    else:
        assert raised(sns.publish, TopicArn=topic, Message="test message", MessageAttributes=attributes) == (
            "ParameterValueInvalid",
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type "
            "prefixes is Binary, Number, and String.",
            400,
        )


# test_sns_filter_policy.snapshot.json, TestSNSFilterPolicyConditions: the reason AWS gives for a filter policy
# passed to Subscribe (before Jackson's location, which AWS appends to parse errors), by snapshot key.
_FILTER_POLICY_REASONS = [
    # test_validate_policy
    ({"key": [["value"]]}, "Match value must be String, number, true, false, or null"),
    ({"key": [{"wrong-operator": True}]}, "Unrecognized match type wrong-operator"),
    ({"key": [{"suffix": "value", "prefix": "value2"}]}, "Only one key allowed in match expression"),
    # test_validate_policy_string_operators
    ({"key": [{"suffix": 100}]}, "suffix match pattern must be a string"),
    ({"key": {"suffix": "value"}}, '"suffix" must be an object or an array'),
    ({"key": {"not-an-operator": "value"}}, '"not-an-operator" must be an object or an array'),
    # test_validate_policy_numeric_operator
    ({"key": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
    ({"key": [{"numeric": ["operator"]}]}, "Unrecognized numeric range operator: operator"),
    ({"key": [{"numeric": ["=", "000"]}]}, "Value of equals must be numeric"),
    ({"key": [{"numeric": ["<", 100, ">", 10]}]}, "Too many elements in numeric expression"),
    ({"key": [{"numeric": [">=", 1, ">", 2]}]}, "Bad numeric range operator: >"),
    ({"key": [{"numeric": [">", 3, "<", 1]}]}, "Bottom must be less than top"),
    ({"key": [{"numeric": [">", 20, 30]}]}, "Bad value in numeric range: 30"),
    ({"key": [{"numeric": [">", 20, "<", 30, "<", 50]}]}, "Too many terms in numeric range expression"),
    # test_validate_policy_exists_operator
    ({"key": [{"exists": "no"}]}, "exists match pattern must be either true or false."),
    # test_validate_policy_nested_anything_but_operator
    ({"key": [{"anything-but": {"wrong-operator": None}}]}, "Unsupported anything-but pattern: wrong-operator"),
    ({"key": [{"anything-but": {"exists": False}}]}, "Unsupported anything-but pattern: exists"),
    ({"key": [{"anything-but": {"prefix": False}}]}, "prefix match pattern must be a string"),
    # test_policy_complexity: error-complexity-too-many-fields, error-complexity-in-one-condition
    ({f"key{i}": ["value"] for i in range(6)}, "Filter policy can not have more than 5 keys"),
    ({"key1": [str(i) for i in range(76)], "key2": ["a", "b"]}, "Filter policy is too complex"),
]


@pytest.mark.parametrize(("policy", "reason"), _FILTER_POLICY_REASONS)
def test_filter_policy_validation_reasons(sns: Any, sqs: Any, policy: dict[str, Any], reason: str) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    text = json.dumps(policy, separators=(",", ":"))

    code, message, status = raised(
        sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs), Attributes={"FilterPolicy": text}
    )

    assert (code, status) == ("InvalidParameter", 400)
    assert message.split("\n")[0] == f"Invalid parameter: Attributes Reason: FilterPolicy: {reason}"


def test_filter_policy_scope_errors(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name())["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs), ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]

    def set_attribute(name: str, value: str) -> tuple[str, str, int]:
        return raised(sns.set_subscription_attributes, SubscriptionArn=arn, AttributeName=name, AttributeValue=value)

    # TestSNSFilterPolicyCrud::test_sub_filter_policy_nested_property: sub-filter-policy-nested-error
    assert set_attribute("FilterPolicy", json.dumps({"object": {"key": [{"prefix": "auto-"}]}})) == (
        "InvalidParameter",
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy",
        400,
    )
    # TestSNSFilterPolicyCrud::test_set_subscription_filter_policy_scope: sub-attrs-filter-scope-error
    assert set_attribute("FilterPolicyScope", "RandomValue") == (
        "InvalidParameter",
        "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]. Please use either MessageBody or "
        "MessageAttributes",
        400,
    )
    # test_sub_filter_policy_nested_property_constraints: sub-filter-policy-max-attr-keys,
    # sub-filter-policy-rule-no-list (SetSubscriptionAttributes words it without "Attributes Reason:")
    assert set_attribute("FilterPolicy", json.dumps({f"key{i}": ["value"] for i in range(6)})) == (
        "InvalidParameter",
        "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys",
        400,
    )
    assert set_attribute("FilterPolicy", '{"key_a":"value_one"}') == (
        "InvalidParameter",
        'Invalid parameter: FilterPolicy: "key_a" must be an object or an array\n'
        ' at [Source: (String)"{"key_a":"value_one"}"; line: 1, column: 11]',
        400,
    )


def test_an_x_ray_trace_header_reaches_the_queue(sns: Any, sqs: Any) -> None:
    # TestSNSSubscriptionSQS::test_publish_sqs_from_sns_with_xray_propagation: xray-msg (the Publish request's
    # X-Amzn-Trace-Id arrives unchanged as the SQS message's AWSTraceHeader system attribute)
    trace = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"
    topic = sns.create_topic(Name=_name())["TopicArn"]
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def add_trace_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    sns.meta.events.register("before-send.sns.Publish", add_trace_header)
    sns.meta.events.register("before-send.sns.PublishBatch", add_trace_header)
    try:
        sns.publish(TargetArn=topic, Message="X-Ray propagation test msg")
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Message": "batched"}])
    finally:
        sns.meta.events.unregister("before-send.sns.Publish", add_trace_header)
        sns.meta.events.unregister("before-send.sns.PublishBatch", add_trace_header)
    sns.publish(TopicArn=topic, Message="untraced")

    received: dict[str, dict[str, str]] = {}
    while len(received) < 3:
        response = sqs.receive_message(
            QueueUrl=url, AttributeNames=["SentTimestamp", "AWSTraceHeader"], MaxNumberOfMessages=10, WaitTimeSeconds=5
        )
        assert response.get("Messages"), received
        for message in response["Messages"]:
            received[json.loads(message["Body"])["Message"]] = message["Attributes"]
    assert received["X-Ray propagation test msg"]["AWSTraceHeader"] == trace
    assert received["batched"]["AWSTraceHeader"] == trace
    assert "AWSTraceHeader" not in received["untraced"]


def test_http_deliveries_carry_aws_headers(sns: Any, endpoint: _Endpoint) -> None:
    # TestSNSSubscriptionHttp::test_subscribe_external_http_endpoint[True]: http-confirm-sub-headers and
    # http-message-headers-raw (Connection, Content-Length and Host are the HTTP client's framing)
    topic = sns.create_topic(Name=_name())["TopicArn"]
    subscription = sns.subscribe(
        TopicArn=topic,
        Protocol="http",
        Endpoint=endpoint.url,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    headers, body = endpoint.next()
    confirmation = json.loads(body)
    common = {
        "accept-encoding": "gzip,deflate",
        "content-type": "text/plain; charset=UTF-8",
        "user-agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-topic-arn": topic,
    }
    framing = {"connection", "content-length", "host"}
    assert {k: v for k, v in headers.items() if k not in framing} == {
        **common,
        "x-amz-sns-message-id": confirmation["MessageId"],
        "x-amz-sns-message-type": "SubscriptionConfirmation",
    }
    sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])

    message_id = sns.publish(TopicArn=topic, Message="test_external_http_endpoint")["MessageId"]
    headers, body = endpoint.next()
    assert body == b"test_external_http_endpoint"
    assert {k: v for k, v in headers.items() if k not in framing} == {
        **common,
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-rawdelivery": "true",
        "x-amz-sns-subscription-arn": subscription,
    }


def test_an_unknown_action_names_the_operation_and_the_api_version(loosely: Any) -> None:
    # AWS's answer to an SNS action it does not know, as SDK issue threads quote it verbatim
    # (ex-aws/ex_aws#177: "Could not find operation publish for version 2010-03-31", InvalidAction, 400,
    # in AWS's generic fault namespace rather than SNS's own).
    form = {"Action": "publish", "Version": "2010-03-31", "TopicArn": "arn:aws:sns:us-east-1:000000000000:t"}
    response = _post_sns_form(loosely, form)

    assert response.status_code == 400
    root = ET.fromstring(response.content)
    assert root.tag == "{http://webservices.amazon.com/AWSFault/2005-15-09}ErrorResponse"
    assert _error_fields(root) == {
        "Type": "Sender",
        "Code": "InvalidAction",
        "Message": "Could not find operation publish for version 2010-03-31",
    }
