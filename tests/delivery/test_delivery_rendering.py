"""What each protocol receives: envelopes, raw bodies, headers, mails, SQS requests, confirmations."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from loosely.core.topics.models import (
    PUSH_SUBSCRIPTION_CONFIRMATION,
    PUSH_UNSUBSCRIBE_CONFIRMATION,
    PublishedMessage,
    PushDelivery,
    Subscription,
)
from loosely.delivery import rendering
from loosely.delivery.rendering import (
    DISPLAY_NAME_HEADER,
    USER_AGENT,
    Renderer,
    message_for,
    platform_of,
    sqs_attributes,
)
from loosely.delivery.signing import Signer

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
SUB = f"{TOPIC}:0b7a5c2e-1111-2222-3333-444455556666"
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def verify(document: dict[str, str], signer: Signer) -> None:
    """An independent SNS verifier: canonical string from the documented field order, PKCS #1 v1.5."""
    names = NOTIFICATION_FIELDS if document["Type"] == "Notification" else CONFIRMATION_FIELDS
    canonical = "".join(f"{n}\n{document[n]}\n" for n in names if n in document).encode()
    key = x509.load_pem_x509_certificate(signer.certificate_pem).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    algorithm = hashes.SHA1() if document["SignatureVersion"] == "1" else hashes.SHA256()
    key.verify(base64.b64decode(document["Signature"]), canonical, padding.PKCS1v15(), algorithm)


def published(**overrides: object) -> PublishedMessage:
    values: dict[str, object] = {
        "message_id": "d7a4e6b0-0000-4000-8000-000000000001",
        "topic_arn": TOPIC,
        "message": "hello",
        "timestamp_ms": 1_700_000_000_123,
        "subject": "Greetings",
        "attributes": {"colour": {"Type": "String", "Value": "blue"}},
    }
    values.update(overrides)
    return PublishedMessage(**values)  # type: ignore[arg-type]


def subscription(
    protocol: str = "https", endpoint: str = "https://example.test/hook", **attributes: str
) -> Subscription:
    return Subscription(SUB, TOPIC, protocol, endpoint, "123456789012", attributes, True, None, 0)


@pytest.fixture
def renderer(signer: Signer) -> Renderer:
    return Renderer(signer, "http://sns.test:4566/")


def test_message_for_picks_the_protocol_key_then_default() -> None:
    structured = published(message_structure="json", message=json.dumps({"default": "d", "sqs": "q", "GCM": "g"}))
    assert message_for(structured, "sqs") == "q"
    assert message_for(structured, "http") == "d"
    assert message_for(structured, "GCM") == "g"
    assert message_for(published(message='{"sqs": "x"}'), "sqs") == '{"sqs": "x"}'  # no MessageStructure


def test_platform_of_endpoint_arn() -> None:
    assert platform_of("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1234") == "GCM"
    assert platform_of("+15555550100") == ""


def test_https_notification_is_a_signed_envelope_with_sns_headers(renderer: Renderer, signer: Signer) -> None:
    push = renderer.push_notification(published(), subscription(), {"SignatureVersion": "2"}, "application/json")
    document = json.loads(push.body)
    verify(document, signer)
    assert document["Type"] == "Notification"
    assert document["Subject"] == "Greetings"
    assert document["Timestamp"] == "2023-11-14T22:13:20.123Z"
    assert document["SignatureVersion"] == "2"
    assert document["SigningCertURL"] == f"http://sns.test:4566/{signer.certificate_name}"
    assert document["UnsubscribeURL"] == f"http://sns.test:4566/?Action=Unsubscribe&SubscriptionArn={SUB}"
    assert document["MessageAttributes"] == {"colour": {"Type": "String", "Value": "blue"}}
    assert push.headers["x-amz-sns-message-type"] == "Notification"
    assert push.headers["x-amz-sns-message-id"] == published().message_id
    assert push.headers["x-amz-sns-topic-arn"] == TOPIC
    assert push.headers["x-amz-sns-subscription-arn"] == SUB
    assert push.headers["content-type"] == "application/json"
    assert push.headers["user-agent"] == USER_AGENT
    assert "x-amz-sns-rawdelivery" not in push.headers


def test_raw_http_delivery_is_the_bare_message_with_the_rawdelivery_header(renderer: Renderer) -> None:
    push = renderer.push_notification(published(), subscription(RawMessageDelivery="true"), {})
    assert push.body == "hello"
    assert push.headers["x-amz-sns-rawdelivery"] == "true"
    assert push.headers["content-type"] == "text/plain; charset=UTF-8"


def test_email_gets_the_text_and_unsubscribe_footer(renderer: Renderer) -> None:
    push = renderer.push_notification(published(), subscription("email", "a@b.test"), {"DisplayName": "Shop"})
    assert push.body.startswith("hello\n\n--\n")
    assert f"?Action=Unsubscribe&SubscriptionArn={SUB}" in push.body
    assert push.subject == "Greetings"
    assert push.headers == {DISPLAY_NAME_HEADER: "Shop"}
    untitled = renderer.push_notification(published(subject=None), subscription("email", "a@b.test"), {})
    assert untitled.subject == "AWS Notification Message"


def test_email_json_gets_the_envelope(renderer: Renderer, signer: Signer) -> None:
    push = renderer.push_notification(published(), subscription("email-json", "a@b.test"), {})
    verify(json.loads(push.body), signer)
    assert push.subject == "AWS Notification Message"


def test_sqs_request_envelope_or_raw_with_attributes(renderer: Renderer, signer: Signer) -> None:
    message = published(attributes={"n": {"Type": "Number", "Value": "7"}, "b": {"Type": "Binary", "Value": "AAE="}})
    enveloped = renderer.sqs_request(message, subscription("sqs", "arn:aws:sqs:us-east-1:1:q"), "1", None, False)
    verify(json.loads(enveloped.body), signer)
    assert enveloped.message_attributes == {}
    raw = renderer.sqs_request(message, subscription("sqs", "q", RawMessageDelivery="true"), "1", None, False)
    assert raw.body == "hello"
    assert raw.message_attributes["n"].data_type == "Number"
    assert raw.message_attributes["n"].string_value == "7"
    assert raw.message_attributes["b"].binary_value == b"\x00\x01"
    assert enveloped.system_attributes == raw.system_attributes == {}


def test_sqs_request_carries_the_publish_trace_header_raw_or_not(renderer: Renderer) -> None:
    message = published(trace_header="Root=1-3152b799-8954dae64eda91bc9a23a7e8;Sampled=1")
    for sub in (subscription("sqs", "q"), subscription("sqs", "q", RawMessageDelivery="true")):
        [(name, value)] = renderer.sqs_request(message, sub, "1", None, False).system_attributes.items()
        assert (name, value.data_type, value.string_value) == ("AWSTraceHeader", "String", message.trace_header)


def test_sqs_request_to_fifo_queue_keeps_group_and_dedup_ids(renderer: Renderer) -> None:
    message = published(group_id="g1", dedup_id="d1")
    request = renderer.sqs_request(message, subscription("sqs", "q"), "1", "00000000000000000007", True)
    assert (request.group_id, request.deduplication_id) == ("g1", "d1")
    assert json.loads(request.body)["SequenceNumber"] == "00000000000000000007"
    content_based = renderer.sqs_request(published(group_id="g1"), subscription("sqs", "q"), "1", None, True)
    assert content_based.deduplication_id is not None and len(content_based.deduplication_id) == 64
    from_fifo_topic = published(topic_arn=TOPIC + ".fifo", group_id="g1", dedup_id="d1")
    standard = renderer.sqs_request(from_fifo_topic, subscription("sqs", "q"), "1", None, False)
    assert (standard.group_id, standard.deduplication_id) == (None, None)


def test_sqs_request_from_standard_topic_keeps_group_id_for_fair_queues(renderer: Renderer) -> None:
    request = renderer.sqs_request(published(group_id="g1"), subscription("sqs", "q"), "1", None, False)
    assert (request.group_id, request.deduplication_id) == ("g1", None)


def test_binary_attributes_become_bytes() -> None:
    assert sqs_attributes({"x": {"Type": "Binary.custom", "Value": base64.b64encode(b"hi").decode()}})[
        "x"
    ].binary_value == (b"hi")


def confirmation(kind: str, protocol: str) -> PushDelivery:
    return PushDelivery(
        kind=kind,
        protocol=protocol,
        endpoint="https://example.test/hook" if protocol == "https" else "a@b.test",
        topic_arn=TOPIC,
        message_id="m-1",
        body="",
        subscription_arn=SUB,
        token="tok-123",
        timestamp_ms=1_700_000_000_000,
    )


def test_subscription_confirmation_for_https(renderer: Renderer, signer: Signer) -> None:
    push = renderer.confirmation(confirmation(PUSH_SUBSCRIPTION_CONFIRMATION, "https"), "1")
    document = json.loads(push.body)
    verify(document, signer)
    assert document["Type"] == "SubscriptionConfirmation"
    assert document["Token"] == "tok-123"
    assert (
        document["SubscribeURL"] == f"http://sns.test:4566/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=tok-123"
    )
    assert push.headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert "x-amz-sns-subscription-arn" not in push.headers


def test_unsubscribe_confirmation_names_the_subscription(renderer: Renderer, signer: Signer) -> None:
    push = renderer.confirmation(confirmation(PUSH_UNSUBSCRIBE_CONFIRMATION, "https"), "2")
    document = json.loads(push.body)
    verify(document, signer)
    assert document["Type"] == "UnsubscribeConfirmation"
    assert push.headers["x-amz-sns-subscription-arn"] == SUB


def test_email_confirmation_is_a_mail_with_the_link(renderer: Renderer) -> None:
    push = renderer.confirmation(confirmation(PUSH_SUBSCRIPTION_CONFIRMATION, "email"))
    assert push.subject == "AWS Notification - Subscription Confirmation"
    assert "?Action=ConfirmSubscription&TopicArn=" in push.body
    assert TOPIC in push.body
    assert not push.body.lstrip().startswith("{")


def test_one_signature_per_publication_whatever_the_number_of_subscribers(signer: Signer) -> None:
    calls: list[bytes] = []

    class Counting:
        certificate_name = signer.certificate_name

        def sign(self, string_to_sign: bytes, signature_version: str) -> str:
            calls.append(string_to_sign)
            return signer.sign(string_to_sign, signature_version)

    renderer = Renderer(Counting(), "http://sns.test")
    bodies = [
        renderer.sqs_request(published(), subscription("sqs", f"arn:aws:sqs:us-east-1:1:q{i}"), "1", None, False).body
        for i in range(50)
    ]
    assert len(calls) == 1
    documents = [json.loads(b) for b in bodies]
    assert len({d["Signature"] for d in documents}) == 1
    assert [d["UnsubscribeURL"] for d in documents] == [
        f"http://sns.test/?Action=Unsubscribe&SubscriptionArn={SUB}" for _ in range(50)
    ]
    other_sub = Subscription(f"{TOPIC}:other", TOPIC, "sqs", "q", "1", {}, True, None, 0)
    other = json.loads(renderer.sqs_request(published(), other_sub, "1", None, False).body)
    assert other["UnsubscribeURL"].endswith(f"SubscriptionArn={TOPIC}:other")
    assert all(unsubscribe_slot_free(b) for b in bodies)
    verify(documents[0], signer)
    renderer.sqs_request(published(message="other"), subscription("sqs", "q"), "1", None, False)
    assert len(calls) == 2


def unsubscribe_slot_free(body: str) -> bool:
    return "unsubscribe-" not in body


def test_a_structured_message_is_parsed_once_per_publication_not_per_subscriber() -> None:
    message = published(message=json.dumps({"default": "all", "sqs": "queues"}), message_structure="json")
    rendering._structured.cache_clear()

    texts = [message_for(message, "sqs") for _ in range(50)] + [message_for(message, "sms")]

    assert texts == ["queues"] * 50 + ["all"]
    assert rendering._structured.cache_info().misses == 1
