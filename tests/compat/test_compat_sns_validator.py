"""AWS's SNS message validator for Node.js (npm ``sns-validator``, unmodified) on what the server delivers.

The validator accepts a ``SigningCertURL`` only over https, and fetches it with Node's ``https.get``,
which checks the TLS certificate. The server speaks plain HTTP, so the test puts a TLS front before
it: a throwaway CA signs a certificate for 127.0.0.1, a small TLS-terminating proxy (a real socket
on a free port) forwards every connection to the server, the server is started with
``--public-url https://127.0.0.1:<proxy port>`` (SigningCertURL, SubscribeURL and UnsubscribeURL
derive from it), and Node trusts the CA through ``NODE_EXTRA_CA_CERTS``. The script
tests/compat/js/sns_validator_check.mjs does the rest: it subscribes a Node HTTP endpoint and an SQS
queue to a SignatureVersion 1 and a SignatureVersion 2 topic and runs every delivery through the validator.

Skipped locally until ``npm ci`` has run in tests/compat/js; under CI=true it must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from compat_helpers import run_node_check
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

pytestmark = pytest.mark.compat

JS_DIR = Path(__file__).parent / "js"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    certificate: Path
    key: Path


def _make_certificates(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate it signs for 127.0.0.1 (IP SAN), as PEM files."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loosely compat test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class TlsFront:
    """A TLS-terminating TCP proxy on 127.0.0.1 (a free port), run on its own event loop thread.

    It listens at once; the backend (``host``, ``port``) can be set later, before the first
    connection arrives. Each accepted connection is piped both ways to a fresh backend connection.
    """

    def __init__(self, files: TlsFiles) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(files.certificate, files.key)
        self.backend: tuple[str, int] | None = None
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-front", daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    def start(self) -> TlsFront:
        self._thread.start()
        listening = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = listening.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._context)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            assert self.backend is not None, "a connection arrived before the backend was known"
            self.connections += 1
            backend_reader, backend_writer = await asyncio.open_connection(*self.backend)
            try:
                await asyncio.gather(
                    self._pipe(client_reader, backend_writer), self._pipe(backend_reader, client_writer)
                )
            finally:
                backend_writer.close()
        except (OSError, ssl.SSLError):
            pass
        finally:
            client_writer.close()
            self._handlers.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until end of stream, then pass the end on (half-close where the transport can, else close)."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    directory = tmp_path / "tls"
    directory.mkdir()
    return _make_certificates(directory)


@pytest.fixture
def tls_front(tls_files: TlsFiles) -> Iterator[TlsFront]:
    front = TlsFront(tls_files).start()
    try:
        yield front
    finally:
        front.stop()


def test_sns_validator_accepts_deliveries_over_https_signing_cert_url(
    start_loosely: Callable[..., Any], tls_front: TlsFront, tls_files: TlsFiles
) -> None:
    public_url = f"https://127.0.0.1:{tls_front.port}"
    loosely = start_loosely(args=("--public-url", public_url))
    backend = urlsplit(loosely.endpoint)
    assert backend.hostname is not None and backend.port is not None
    tls_front.backend = (backend.hostname, backend.port)

    summary = run_node_check(
        JS_DIR,
        ["sns_validator_check.mjs"],
        public_url,
        ["sns-validator", "@aws-sdk/client-sns"],
        env={"NODE_EXTRA_CA_CERTS": str(tls_files.ca)},
        timeout_s=60,
    )
    # For each SignatureVersion: the validator accepts the SubscriptionConfirmation, every Notification (HTTP,
    # with and without Subject, Publish and PublishBatch) and every SQS envelope, and rejects tampered copies.
    # The UnsubscribeConfirmation is the exception, on the validator's side: it leaves Token out of that type's
    # string to sign, so the script pins its rejection and verifies the signature over AWS's documented string.
    assert summary["checks"] == [
        f"{step}-v{version}"
        for version in (1, 2)
        for step in (
            "subscription-confirmation",
            "notification",
            "sqs-envelope",
            "tampered-rejected",
            "unsubscribe-confirmation",
        )
    ]
    assert tls_front.connections > 0  # the script's traffic, certificate fetches included, went through TLS
