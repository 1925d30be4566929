"""SNS envelopes: AWS's keys and order, the canonical string to sign, and the wire rendering."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loosely.core.topics import envelope as env

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
SUBSCRIPTION = TOPIC + ":2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
CERT_URL = "http://localhost:9324/SimpleNotificationService-abc.pem"
T_MS = 1_335_998_046_655  # 2012-05-02T22:34:06.655Z


class RecordingSigner:
    """Signs with a readable fake and remembers what it was asked to sign."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        self.calls.append((string_to_sign, signature_version))
        return f"sig-v{signature_version}-{len(string_to_sign)}"


def make_notification(signer: RecordingSigner, **overrides: object) -> env.Envelope:
    arguments: dict[str, object] = {
        "message_id": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "topic_arn": TOPIC,
        "message": "Hello world!",
        "timestamp_ms": T_MS,
        "signing_cert_url": CERT_URL,
        "unsubscribe_url": env.unsubscribe_url("http://localhost:9324", SUBSCRIPTION),
        "signer": signer,
    }
    arguments.update(overrides)
    return env.notification(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (T_MS, "2012-05-02T22:34:06.655Z"),
        (1_700_000_000_007, "2023-11-14T22:13:20.007Z"),
        (1_700_000_000_999, "2023-11-14T22:13:20.999Z"),
    ],
)
def test_iso_timestamp_is_utc_with_milliseconds_and_z(epoch_ms: int, text: str) -> None:
    assert env.iso_timestamp(epoch_ms) == text


def test_notification_with_subject_has_aws_keys_in_aws_order() -> None:
    signer = RecordingSigner()

    envelope = make_notification(signer, subject="My First Message")

    assert list(envelope) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
    ]
    assert envelope["Type"] == "Notification"
    assert envelope["Subject"] == "My First Message"
    assert envelope["Timestamp"] == "2012-05-02T22:34:06.655Z"
    assert envelope["SignatureVersion"] == "1"
    assert envelope["SigningCertURL"] == CERT_URL
    assert envelope["UnsubscribeURL"] == ("http://localhost:9324/?Action=Unsubscribe&SubscriptionArn=" + SUBSCRIPTION)


def test_notification_without_subject_omits_it_from_body_and_signature() -> None:
    signer = RecordingSigner()

    envelope = make_notification(signer)

    assert "Subject" not in envelope
    assert signer.calls == [
        (
            b"Message\nHello world!\n"
            b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            b"Timestamp\n2012-05-02T22:34:06.655Z\n"
            b"TopicArn\n" + TOPIC.encode() + b"\n"
            b"Type\nNotification\n",
            "1",
        )
    ]
    assert envelope["Signature"] == f"sig-v1-{len(signer.calls[0][0])}"


def test_notification_string_to_sign_includes_subject_in_alphabetical_place() -> None:
    signer = RecordingSigner()

    envelope = make_notification(signer, subject="Sub", message="line1\nline2 ✓", signature_version="2")

    signed, version = signer.calls[0]
    assert version == "2"
    assert (
        signed
        == (
            "Message\nline1\nline2 ✓\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nSub\n"
            f"Timestamp\n2012-05-02T22:34:06.655Z\nTopicArn\n{TOPIC}\nType\nNotification\n"
        ).encode()
    )
    assert env.string_to_sign(envelope) == signed


def test_notification_message_attributes_come_last_as_type_and_value() -> None:
    attributes = {"store": {"Value": "example_corp", "Type": "String"}, "blob": {"Type": "Binary", "Value": "AAE="}}

    envelope = make_notification(RecordingSigner(), message_attributes=attributes)

    assert list(envelope)[-1] == "MessageAttributes"
    assert envelope["MessageAttributes"] == {
        "store": {"Type": "String", "Value": "example_corp"},
        "blob": {"Type": "Binary", "Value": "AAE="},
    }
    mapping = envelope["MessageAttributes"]
    assert isinstance(mapping, dict)
    assert list(mapping["store"]) == ["Type", "Value"]


def test_notification_of_a_fifo_topic_is_unsigned_with_the_sequence_number_after_the_message_id() -> None:
    signer = RecordingSigner()

    envelope = make_notification(signer, sequence_number="10000000000000003000")

    assert list(envelope) == [
        "Type",
        "MessageId",
        "SequenceNumber",
        "TopicArn",
        "Message",
        "Timestamp",
        "UnsubscribeURL",
    ]
    assert envelope["SequenceNumber"] == "10000000000000003000"
    assert signer.calls == []


def test_notification_empty_attributes_are_left_out() -> None:
    assert "MessageAttributes" not in make_notification(RecordingSigner(), message_attributes={})


def test_subscription_confirmation_matches_aws_document() -> None:
    signer = RecordingSigner()
    url = env.subscribe_url("http://localhost:9324/", TOPIC, "2336412f37fb")

    envelope = env.subscription_confirmation(
        message_id="165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        topic_arn=TOPIC,
        token="2336412f37fb",
        subscribe_url=url,
        timestamp_ms=T_MS,
        signing_cert_url=CERT_URL,
        signer=signer,
    )

    assert list(envelope) == [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ]
    assert envelope["Type"] == "SubscriptionConfirmation"
    assert envelope["Message"] == (
        f"You have chosen to subscribe to the topic {TOPIC}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )
    assert url == f"http://localhost:9324/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb"
    assert (
        signer.calls[0][0]
        == (
            f"Message\n{envelope['Message']}\nMessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n"
            f"SubscribeURL\n{url}\nTimestamp\n2012-05-02T22:34:06.655Z\nToken\n2336412f37fb\n"
            f"TopicArn\n{TOPIC}\nType\nSubscriptionConfirmation\n"
        ).encode()
    )


def test_unsubscribe_confirmation_names_the_subscription() -> None:
    signer = RecordingSigner()

    envelope = env.unsubscribe_confirmation(
        message_id="47138184-6831-46b8-8f7c-afc488602d7d",
        topic_arn=TOPIC,
        subscription_arn=SUBSCRIPTION,
        token="tok",
        subscribe_url=env.subscribe_url("http://h:1", TOPIC, "tok"),
        timestamp_ms=T_MS,
        signing_cert_url=CERT_URL,
        signer=signer,
        signature_version="2",
    )

    assert envelope["Type"] == "UnsubscribeConfirmation"
    assert envelope["Message"] == (
        f"You have chosen to deactivate subscription {SUBSCRIPTION}.\n"
        "To cancel this operation and restore the subscription, visit the SubscribeURL included in this message."
    )
    assert envelope["SignatureVersion"] == "2"
    assert signer.calls[0][0].endswith(b"Type\nUnsubscribeConfirmation\n")
    assert env.string_to_sign(envelope) == signer.calls[0][0]


@pytest.mark.parametrize("version", ["", "3", "v1"])
def test_builders_reject_unknown_signature_versions(version: str) -> None:
    with pytest.raises(ValueError, match="SignatureVersion"):
        make_notification(RecordingSigner(), signature_version=version)


@pytest.mark.parametrize(
    ("envelope", "problem"),
    [
        ({"Type": "Other"}, "Type 'Other'"),
        ({}, "Type None"),
        ({"Type": "Notification", "Message": "m"}, "lacks MessageId"),
        ({"Type": "SubscriptionConfirmation", "Message": "m", "MessageId": "i"}, "lacks SubscribeURL"),
    ],
)
def test_string_to_sign_refuses_incomplete_envelopes(envelope: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        env.string_to_sign(envelope)


def test_urls_percent_encode_all_but_arn_colons() -> None:
    assert env.unsubscribe_url("https://sns.example/base", "arn:aws:sns:r:1:t:a b") == (
        "https://sns.example/base/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:r:1:t:a%20b"
    )
    assert env.subscribe_url("http://h", "arn:x", "a+b/c=") == (
        "http://h/?Action=ConfirmSubscription&TopicArn=arn:x&Token=a%2Bb%2Fc%3D"
    )


def test_render_uses_sns_wire_layout_and_round_trips() -> None:
    envelope = make_notification(
        RecordingSigner(), message='quote " and ünïcode', message_attributes={"a": {"Type": "Number", "Value": "1"}}
    )

    text = env.render(envelope)

    assert text.startswith('{\n  "Type" : "Notification",\n  "MessageId" : "22b80b92')
    assert '"Message" : "quote \\" and ünïcode"' in text
    assert (
        '  "MessageAttributes" : {\n    "a" : {\n      "Type" : "Number",\n      "Value" : "1"\n    }\n  }\n}' in text
    )
    assert json.loads(text) == envelope


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_ENVELOPES = st.recursive(_TEXT, lambda inner: st.dictionaries(_TEXT, inner, max_size=4), max_leaves=12).filter(
    lambda value: isinstance(value, dict)
)


@given(_ENVELOPES)
def test_render_writes_what_the_standard_library_writes(envelope: dict[str, object]) -> None:
    expected = json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)

    assert env.render(envelope) == expected


def test_render_of_values_other_than_text_falls_back_to_the_standard_library() -> None:
    envelope = {"a": 1, "b": [True, None], "c": {"d": 2.5}}

    assert env.render(envelope) == json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)
