"""Transports against real local endpoints: HTTP receivers, an SMTP server, the providers."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from sns_receivers import HttpReceiver, SmtpReceiver

from loosely.core.clock import FakeClock
from loosely.core.topics.models import PushDelivery
from loosely.delivery.rendering import DISPLAY_NAME_HEADER
from loosely.delivery.transports.base import AttemptStatus
from loosely.delivery.transports.email import SmtpConfig, SmtpTransport
from loosely.delivery.transports.http import HttpTransport
from loosely.delivery.transports.provider import OutboxProvider, WebhookProvider, clear_outbox, read_outbox


def push(protocol: str, endpoint: str, body: str = "hello", **extra: object) -> PushDelivery:
    values: dict[str, object] = {
        "kind": "notification",
        "protocol": protocol,
        "endpoint": endpoint,
        "topic_arn": "arn:aws:sns:us-east-1:123456789012:t",
        "message_id": "m-1",
        "body": body,
        "timestamp_ms": 1_700_000_000_000,
    }
    values.update(extra)
    return PushDelivery(**values)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [("ok", AttemptStatus.DELIVERED), ("fail", AttemptStatus.RETRY), ("reject", AttemptStatus.REJECTED)],
)
async def test_http_outcome_by_status(behaviour: str, status: AttemptStatus) -> None:
    transport = HttpTransport(timeout_s=5)
    with HttpReceiver(behaviour, check_signatures=False) as receiver:
        attempt = await transport.send(push("http", receiver.url, headers={"x-amz-sns-message-type": "Notification"}))
        assert attempt.status is status
        [received] = receiver.received
        assert received.body == "hello"
        assert received.headers["x-amz-sns-message-type"] == "Notification"
    await transport.aclose()


async def test_http_timeout_and_refused_connection_are_retried() -> None:
    transport = HttpTransport(timeout_s=0.3)
    with HttpReceiver("hang", check_signatures=False, hang_s=1.0) as receiver:
        attempt = await transport.send(push("http", receiver.url))
    assert (attempt.status, attempt.error) == (AttemptStatus.RETRY, "timed out")
    refused = await transport.send(push("http", f"http://127.0.0.1:{closed_port()}/x"))
    assert refused.status is AttemptStatus.RETRY
    await transport.aclose()


def test_http_lane_is_the_origin() -> None:
    transport = HttpTransport()
    assert transport.lane(push("https", "https://a.test/x?y=1")) == "https://a.test:443"
    assert transport.lane(push("http", "http://a.test:8080/x")) == "http://a.test:8080"
    asyncio.run(transport.aclose())


async def test_smtp_mail_and_refusals() -> None:
    with SmtpReceiver() as smtp:
        transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port, sender="sns@loosely.test"))
        plain = push("email", "alice@example.test", subject="Hi", headers={DISPLAY_NAME_HEADER: "Shop"})
        assert (await transport.send(plain)).status is AttemptStatus.DELIVERED
        as_json = push("email-json", "bob@example.test", body='{"Type" : "Notification"}')
        assert (await transport.send(as_json)).status is AttemptStatus.DELIVERED
        refused = await transport.send(push("email", "nobody@example.test"))
        assert refused.status is AttemptStatus.REJECTED
        mails = smtp.wait_for(2)
        await transport.aclose()

    first = mails[0].message
    assert mails[0].recipients == ["alice@example.test"]
    assert first["From"] == "Shop <sns@loosely.test>"
    assert first["Subject"] == "Hi"
    assert first.get_content().strip() == "hello"
    second = mails[1].message
    assert second.get_content_type() == "application/json"
    assert json.loads(second.get_content())["Type"] == "Notification"


async def test_smtp_login() -> None:
    with SmtpReceiver(login=("sns", "s3cret")) as smtp:
        good = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port, username="sns", password="s3cret"))
        assert (await good.send(push("email", "alice@example.test"))).status is AttemptStatus.DELIVERED
        # A refused or missing login is the relay settings' fault: retried, so mail flows once they are fixed.
        bad = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port, username="sns", password="wrong", timeout_s=2))
        assert (await bad.send(push("email", "alice@example.test"))).status is AttemptStatus.RETRY
        anonymous = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port))
        refused = await anonymous.send(push("email", "alice@example.test"))
        assert (refused.status, "530" in (refused.error or "")) == (AttemptStatus.RETRY, True)
        assert smtp.logins == ["sns"]
        assert len(smtp.wait_for(1)) == 1
        for transport in (good, bad, anonymous):
            await transport.aclose()


async def test_smtp_relay_down_is_retried() -> None:
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=closed_port(), timeout_s=2))
    attempt = await transport.send(push("email", "alice@example.test"))
    assert attempt.status is AttemptStatus.RETRY
    await transport.aclose()


async def test_webhook_provider_posts_the_documented_json() -> None:
    with HttpReceiver("ok", check_signatures=False) as receiver:
        provider = WebhookProvider(receiver.url)
        attempt = await provider.send(push("sms", "+15555550100", body="code 42", topic_arn=""))
        assert attempt.status is AttemptStatus.DELIVERED
        [received] = receiver.received
        await provider.aclose()
    assert received.headers["content-type"].startswith("application/json")
    document = received.json
    assert document["type"] == "sms"
    assert document["destination"] == "+15555550100"
    assert document["message"] == "code 42"
    assert document["messageId"] == "m-1"
    assert document["topicArn"] is None
    assert document["timestamp"] == "2023-11-14T22:13:20.000Z"


async def test_webhook_provider_failures() -> None:
    with HttpReceiver("fail", check_signatures=False) as failing, HttpReceiver("reject", check_signatures=False) as no:
        retried, refused = WebhookProvider(failing.url), WebhookProvider(no.url)
        assert (await retried.send(push("sms", "+1"))).status is AttemptStatus.RETRY
        assert (await refused.send(push("sms", "+1"))).status is AttemptStatus.REJECTED
        await retried.aclose()  # answers are read to the end, so connections stay pooled until closed
        await refused.aclose()


async def test_outbox_provider_keeps_reads_filters_trims_and_clears(tmp_path: Path) -> None:
    from delivery_support import store_has_outbox

    if not store_has_outbox():
        pytest.skip("the SQLite store does not keep documents yet")
    from loosely.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'outbox.db'}")
    await store.open()
    try:
        clock = FakeClock()
        outbox = OutboxProvider(store, clock, retention_ms=60_000)  # type: ignore[arg-type]
        await outbox.send(push("sms", "+15555550100", body="first"))
        clock.advance(1_000)
        await outbox.send(push("application", "arn:aws:sns:us-east-1:1:endpoint/GCM/app/e1", body="second"))
        clock.advance(1_000)
        await outbox.send(push("sms", "+15555550101", body="third"))

        everything = await read_outbox(store)  # type: ignore[arg-type]
        assert [m["message"] for m in everything] == ["first", "second", "third"]
        assert everything[1]["platform"] == "GCM"
        sms = await read_outbox(store, protocol="sms")  # type: ignore[arg-type]
        assert [m["destination"] for m in sms] == ["+15555550100", "+15555550101"]
        one = await read_outbox(store, destination="+15555550101")  # type: ignore[arg-type]
        assert [m["message"] for m in one] == ["third"]
        later = await read_outbox(store, after=everything[0]["id"], limit=1)  # type: ignore[arg-type]
        assert [m["message"] for m in later] == ["second"]

        clock.advance(60_000)  # now 62 s after the first: the first two are past the 60 s retention
        assert await outbox.trim(clock.now_ms()) == 2
        assert await clear_outbox(store) == 1  # type: ignore[arg-type]
        assert await read_outbox(store) == []  # type: ignore[arg-type]
    finally:
        await store.close()
