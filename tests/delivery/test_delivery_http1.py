"""HTTP deliveries against scripted servers: framing, keep-alive, stale connections, auth, TLS, timeouts, headers."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from delivery_support import until

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import AttemptStatus
from loosely.delivery.transports.http import BadEndpoint, HttpTransport, origin_key

Answer = Callable[[int, bytes], bytes]


class Scripted:
    """Answers the n-th request on a connection with ``answer(n, request_head)``; may close afterwards."""

    def __init__(self, answer: Answer, close_after: int | None = None) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.heads: list[bytes] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        served = 0
        try:
            while self.close_after is None or served < self.close_after:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                self.heads.append(head)
                writer.write(self.answer(served, head))
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _push(url: str, headers: dict[str, str] | None = None) -> PushDelivery:
    return PushDelivery(
        kind="notification",
        protocol="http",
        endpoint=url,
        topic_arn="arn:aws:sns:us-east-1:000000000000:t",
        message_id="m-1",
        body="héllo",
        headers=headers or {"x-amz-sns-message-type": "Notification", "content-type": "text/plain; charset=UTF-8"},
    )


async def _run(server: Scripted, urls: list[str], transport: HttpTransport | None = None) -> list[AttemptStatus]:
    transport = transport or HttpTransport(2.0)
    try:
        return [(await transport.send(_push(url))).status for url in urls]
    finally:
        await transport.aclose()
        await server.stop()


async def test_chunked_and_interim_answers_keep_the_connection() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\n"
    )
    server = Scripted(lambda n, head: answer)
    port = await server.start()
    statuses = await _run(server, [f"http://127.0.0.1:{port}/a?b=1"] * 3)
    assert statuses == [AttemptStatus.DELIVERED] * 3
    assert server.connections == 1
    head = server.heads[0].decode("latin-1")
    assert head.startswith("POST /a?b=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in head
    assert "Content-Length: 6\r\n" in head  # UTF-8 bytes of the body
    names = sorted(line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:] if line)
    # nothing of the client's; Accept-Encoding is AWS's (recorded from its deliveries)
    assert names == ["accept-encoding", "content-length", "content-type", "host", "x-amz-sns-message-type"]
    assert "x-amz-sns-message-type: Notification\r\n" in head
    assert "Accept-Encoding: gzip,deflate\r\n" in head


async def test_close_delimited_answers_count_and_their_connections_are_not_reused() -> None:
    server = Scripted(lambda n, head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthanks", close_after=1)
    port = await server.start()
    statuses = await _run(server, [f"http://127.0.0.1:{port}/"] * 3)
    assert statuses == [AttemptStatus.DELIVERED] * 3
    assert server.connections == 3


async def test_an_endpoint_that_does_not_answer_in_time_is_retried() -> None:
    server = Scripted(lambda n, head: b"")  # reads the request, never answers
    port = await server.start()
    transport = HttpTransport(0.3)
    started = asyncio.get_running_loop().time()
    attempt = await transport.send(_push(f"http://127.0.0.1:{port}/"))
    elapsed = asyncio.get_running_loop().time() - started
    await transport.aclose()
    await server.stop()
    assert attempt.status is AttemptStatus.RETRY
    assert attempt.error == "timed out"
    assert 0.25 < elapsed < 2.0


@pytest.mark.parametrize(
    "headers",
    [{"x-amz-sns-message-type": "Notification\r\nX-Injected: 1"}, {"x-a\nb": "1"}, {"x-amz-sns-subject": "café ☕"}],
)
async def test_headers_with_line_breaks_or_beyond_latin1_are_refused_before_sending(headers: dict[str, str]) -> None:
    server = Scripted(lambda n, head: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    port = await server.start()
    transport = HttpTransport(2.0)
    attempt = await transport.send(_push(f"http://127.0.0.1:{port}/", headers))
    await transport.aclose()
    await server.stop()
    assert attempt.status is AttemptStatus.REJECTED
    assert server.heads == []


async def test_connection_close_and_http10_answers_are_not_reused() -> None:
    answers = [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.0 204 No Content\r\n\r\n"]
    server = Scripted(lambda n, head: answers[server.connections % 2], close_after=1)
    port = await server.start()
    statuses = await _run(server, [f"http://127.0.0.1:{port}/"] * 4)
    assert statuses == [AttemptStatus.DELIVERED] * 4
    assert server.connections == 4


async def test_a_connection_closed_while_idle_is_replaced_without_failing_the_delivery() -> None:
    server = Scripted(lambda n, head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after=1)
    port = await server.start()
    transport = HttpTransport(2.0)
    url = f"http://127.0.0.1:{port}/"
    first = await transport.send(_push(url))
    await asyncio.sleep(0.05)  # the server has closed the kept connection by now
    second = await transport.send(_push(url))
    await transport.aclose()
    await server.stop()
    assert (first.status, second.status) == (AttemptStatus.DELIVERED, AttemptStatus.DELIVERED)
    assert server.connections == 2


async def test_status_classes_and_user_info_as_basic_auth() -> None:
    statuses = iter([b"503", b"429", b"404", b"302", b"201"])
    server = Scripted(lambda n, head: b"HTTP/1.1 " + next(statuses) + b" X\r\nContent-Length: 0\r\n\r\n")
    port = await server.start()
    url = f"http://us%40er:p%3Ass@127.0.0.1:{port}/hook"
    got = await _run(server, [url] * 5)
    retry, rejected = AttemptStatus.RETRY, AttemptStatus.REJECTED
    assert got == [retry, retry, rejected, rejected, AttemptStatus.DELIVERED]
    expected = base64.b64encode(b"us@er:p:ss").decode()
    assert f"Authorization: Basic {expected}\r\n" in server.heads[0].decode("latin-1")


async def test_garbage_answers_are_retried() -> None:
    server = Scripted(lambda n, head: b"SSH-2.0-OpenSSH\r\n\r\n")
    port = await server.start()
    transport = HttpTransport(2.0)
    attempt = await transport.send(_push(f"http://127.0.0.1:{port}/"))
    await transport.aclose()
    await server.stop()
    assert attempt.status is AttemptStatus.RETRY
    assert attempt.error


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "http://h:99999/", "http://h/a b", "http://h\r\nX: y/"])
async def test_bad_endpoints_are_rejected_not_retried(url: str) -> None:
    with pytest.raises(BadEndpoint):
        origin_key(url)
    transport = HttpTransport(1.0)
    attempt = await transport.send(_push(url))
    await transport.aclose()
    assert attempt.status is AttemptStatus.REJECTED
    assert transport.lane(_push(url)) == url


def test_lanes_are_origins_with_their_default_ports() -> None:
    assert origin_key("https://[::1]/x") == "https://::1:443"
    assert origin_key("HTTPS://[::1]:8443/x") == "https://::1:8443"
    assert origin_key("http://u:p@a.test/x?y=1") == "http://a.test:80"
    assert origin_key("http://a.test:8080") == "http://a.test:8080"


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "tls.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    return context


async def test_https_with_and_without_verification(tmp_path: Path) -> None:
    context = _self_signed(tmp_path)
    connections = handlers_done = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(int(x.split(b":", 1)[1]) for x in lines if x.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            nonlocal handlers_done
            handlers_done += 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    lenient, strict = HttpTransport(2.0, verify_tls=False), HttpTransport(2.0)
    try:
        assert [(await lenient.send(_push(url))).status for _ in range(3)] == [AttemptStatus.DELIVERED] * 3
        refused = await strict.send(_push(url))
    finally:
        await lenient.aclose()
        await strict.aclose()
        await until(lambda: handlers_done == connections)  # the server's side sees the kept connection closed
        server.close()
        await server.wait_closed()
    assert connections == 1  # three deliveries over one connection (the refused handshake never gets this far)
    assert refused.status is AttemptStatus.RETRY
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error
