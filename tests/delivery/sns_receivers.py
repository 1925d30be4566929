"""Real endpoints for delivery tests: an HTTP receiver that verifies SNS signatures, and helpers.

`HttpReceiver` listens on 127.0.0.1, port 0, in a thread of its own. Every POST is recorded; what it
answers comes from ``behaviour``: ``"ok"`` (200), ``"fail"`` (500), ``"reject"`` (400) or
``"hang"`` (answers 200 only after ``hang_s``). Every SNS envelope's signature is verified (unless
``check_signatures=False``); with ``confirm=True`` it visits the SubscribeURL of every
SubscriptionConfirmation, as an application would.

`verify_envelope` is written from AWS's documentation of SNS signatures, independently of the
server's code: fetch the certificate at SigningCertURL, rebuild the canonical string (field name,
newline, value, newline, in the documented order per message type), verify the base64 signature
with PKCS #1 v1.5 and SHA-1 (SignatureVersion 1) or SHA-256 (2).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


class SignatureError(AssertionError):
    pass


_CERTIFICATES: dict[str, x509.Certificate] = {}


def verify_envelope(document: dict[str, Any]) -> None:
    """Raise SignatureError unless ``document`` carries a valid SNS signature."""
    url = document["SigningCertURL"]
    certificate = _CERTIFICATES.get(url)
    if certificate is None:
        with urllib.request.urlopen(url, timeout=10) as response:
            certificate = x509.load_pem_x509_certificate(response.read())
        _CERTIFICATES[url] = certificate
    names = NOTIFICATION_FIELDS if document["Type"] == "Notification" else CONFIRMATION_FIELDS
    canonical = "".join(f"{name}\n{document[name]}\n" for name in names if name in document)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[document["SignatureVersion"]]
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(
            base64.b64decode(document["Signature"]), canonical.encode("utf-8"), padding.PKCS1v15(), algorithm
        )
    except Exception as exc:
        raise SignatureError(f"bad signature on {document['Type']} {document['MessageId']}") from exc


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class HttpReceiver:
    behaviour: str = "ok"
    confirm: bool = False
    check_signatures: bool = True
    hang_s: float = 5.0
    received: list[Received] = field(default_factory=list)
    confirmations: list[str] = field(default_factory=list)  # bodies of SubscribeURL visits
    verified: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/sns"

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def of_type(self, message_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.headers.get("x-amz-sns-message-type") == message_type]

    def wait_for(self, message_type: str, count: int = 1, timeout_s: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.of_type(message_type)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} {message_type}, got {len(self.of_type(message_type))}")

    def _record(self, received: Received) -> str:
        with self._lock:
            self.received.append(received)
            return self.behaviour

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                headers = {k.lower(): v for k, v in self.headers.items()}
                behaviour = receiver._record(Received(self.path, headers, body))
                if behaviour == "hang":
                    time.sleep(receiver.hang_s)
                if behaviour in ("ok", "hang"):
                    receiver._handle(headers, body)
                status = {"fail": 500, "reject": 400}.get(behaviour, 200)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def _handle(self, headers: dict[str, str], body: str) -> None:
        if not self.check_signatures or headers.get("x-amz-sns-rawdelivery") == "true":
            return
        document = json.loads(body)
        verify_envelope(document)
        with self._lock:
            self.verified += 1
        if self.confirm and document["Type"] == "SubscriptionConfirmation":
            with urllib.request.urlopen(document["SubscribeURL"], timeout=10) as response:
                text = response.read().decode("utf-8")
            with self._lock:
                self.confirmations.append(text)


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> Any:
        import email
        from email import policy

        return email.message_from_bytes(self.data, policy=policy.default)


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, port 0; refuses recipients starting with ``nobody@``.

    With ``login``, the server requires that user and password (AUTH) before accepting mail.
    """

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        receiver = self
        self.mails: list[Mail] = []

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                if receiver.login_required and not session.authenticated:
                    return "530 5.7.0 Authentication required"
                if address.startswith("nobody@"):
                    return "550 5.1.1 no such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                return "250 Message accepted"

        class PortZeroController(Controller):  # type: ignore[misc]
            """aiosmtpd checks its server by connecting to ``port``; learn the real one first."""

            def _trigger_server(self) -> None:
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        options: dict[str, Any] = {}
        if login is not None:

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = (data.login.decode(), data.password.decode()) == login
                if ok:
                    receiver.logins.append(data.login.decode())
                return AuthResult(success=ok)

            # Plain-text login is for this test only; a real relay requires TLS first.
            options = {"authenticator": authenticate, "auth_require_tls": False}
        self.login_required = login is not None
        self.logins: list[str] = []
        self._controller = PortZeroController(Handler(), hostname="127.0.0.1", port=0, **options)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def wait_for(self, count: int = 1, timeout_s: float = 15.0) -> list[Mail]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.mails) >= count:
                return list(self.mails)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mails, got {len(self.mails)}")
