"""Envelope signatures, checked the way a standard SNS receiver checks them.

The verifier below knows nothing of loosely: it loads the PEM served at SigningCertURL, rebuilds the
canonical string from the received JSON body with AWS's documented field lists, and verifies the
base64 signature with PKCS #1 v1.5 over SHA-1 (SignatureVersion 1) or SHA-256 (2).
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from loosely.core.topics import envelope as env
from loosely.delivery import signing
from loosely.delivery.signing import KEY_FILE_NAME, Signer, SigningKeyError

TOPIC = "arn:aws:sns:us-east-1:000000000000:orders"
SUBSCRIPTION = TOPIC + ":6c9e7a4e-0000-4000-8000-000000000001"


def verify_like_a_receiver(body: str, certificate_pem: bytes) -> None:
    """Raise InvalidSignature unless ``body`` carries a valid SNS signature from ``certificate_pem``."""
    message = json.loads(body)
    if message["Type"] == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[message["SignatureVersion"]]
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(base64.b64decode(message["Signature"]), canonical.encode("utf-8"), padding.PKCS1v15(), algorithm)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Order ✓ shipped"])
def test_notification_signature_verifies_with_the_served_certificate(
    signer: Signer, version: str, subject: str | None
) -> None:
    envelope = env.notification(
        message_id="a1b2",
        topic_arn=TOPIC,
        message='{"order": 42, "note": "multi\\nline é"}',
        timestamp_ms=1_700_000_000_123,
        signing_cert_url="http://localhost:9324/" + signer.certificate_name,
        unsubscribe_url=env.unsubscribe_url("http://localhost:9324", SUBSCRIPTION),
        signer=signer,
        signature_version=version,
        subject=subject,
        message_attributes={"kind": {"Type": "String", "Value": "order"}},
    )

    verify_like_a_receiver(env.render(envelope), signer.certificate_pem)


@pytest.mark.parametrize("version", ["1", "2"])
def test_confirmation_signatures_verify(signer: Signer, version: str) -> None:
    url = env.subscribe_url("http://localhost:9324", TOPIC, "tok123")
    common = {
        "message_id": "m-1",
        "topic_arn": TOPIC,
        "token": "tok123",
        "subscribe_url": url,
        "timestamp_ms": 1_700_000_000_000,
        "signing_cert_url": "http://localhost:9324/cert.pem",
        "signer": signer,
        "signature_version": version,
    }

    confirm = env.subscription_confirmation(**common)  # type: ignore[arg-type]
    unsubscribe = env.unsubscribe_confirmation(subscription_arn=SUBSCRIPTION, **common)  # type: ignore[arg-type]

    verify_like_a_receiver(env.render(confirm), signer.certificate_pem)
    verify_like_a_receiver(env.render(unsubscribe), signer.certificate_pem)


def test_tampered_notification_fails_verification(signer: Signer) -> None:
    envelope = env.notification(
        message_id="a1b2",
        topic_arn=TOPIC,
        message="pay 10",
        timestamp_ms=1_700_000_000_000,
        signing_cert_url="http://localhost:9324/cert.pem",
        unsubscribe_url="http://localhost:9324/?Action=Unsubscribe",
        signer=signer,
    )
    envelope["Message"] = "pay 1000"

    with pytest.raises(InvalidSignature):
        verify_like_a_receiver(env.render(envelope), signer.certificate_pem)


def test_signature_versions_use_different_hashes(signer: Signer) -> None:
    data = b"Message\nx\n"

    v1 = base64.b64decode(signer.sign(data, "1"))
    v2 = base64.b64decode(signer.sign(data, "2"))

    public_key = x509.load_pem_x509_certificate(signer.certificate_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    public_key.verify(v1, data, padding.PKCS1v15(), hashes.SHA1())
    public_key.verify(v2, data, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public_key.verify(v1, data, padding.PKCS1v15(), hashes.SHA256())


def test_sign_rejects_unknown_version(signer: Signer) -> None:
    with pytest.raises(ValueError, match="SignatureVersion"):
        signer.sign(b"x", "3")


def test_certificate_is_self_signed_and_named_by_fingerprint(signer: Signer) -> None:
    certificate = x509.load_pem_x509_certificate(signer.certificate_pem)

    assert certificate.issuer == certificate.subject
    assert signer.certificate_name.startswith("SimpleNotificationService-")
    assert signer.certificate_name.endswith(".pem")
    assert len(signer.certificate_name) == len("SimpleNotificationService-") + 32 + len(".pem")


def test_load_or_create_persists_key_with_mode_0600_and_reuses_it(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "keys"

    first = Signer.load_or_create(directory)
    second = Signer.load_or_create(directory)

    key_file = directory / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.certificate_pem == first.certificate_pem
    signature = first.sign(b"same key", "2")
    public_key = x509.load_pem_x509_certificate(second.certificate_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(base64.b64decode(signature), b"same key", padding.PKCS1v15(), hashes.SHA256())
    assert [p.name for p in directory.iterdir()] == [KEY_FILE_NAME]


def test_store_once_keeps_the_first_writers_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    winner = Signer.generate()
    loser = Signer.generate()

    signing._store_once(path, winner)
    signing._store_once(path, loser)

    assert Signer.load_or_create(tmp_path).certificate_pem == winner.certificate_pem
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE_NAME]


def test_load_or_create_refuses_a_corrupt_file_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_bytes(b"garbage -----BEGIN CERTIFICATE-----\nnope\n")

    with pytest.raises(SigningKeyError):
        Signer.load_or_create(tmp_path)

    assert path.read_bytes().startswith(b"garbage")


def test_load_or_create_refuses_a_key_whose_signatures_do_not_verify(tmp_path: Path) -> None:
    good = Signer.generate()
    key = serialization.load_pem_private_key(good.private_key_pem(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    n = key.private_numbers()
    # Same public numbers (so the certificate still matches), wrong private exponents.
    broken = rsa.RSAPrivateNumbers(n.p, n.q, n.d + 2, n.dmp1 + 2, n.dmq1 + 2, n.iqmp, n.public_numbers).private_key(
        unsafe_skip_rsa_key_validation=True
    )
    pem = broken.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / KEY_FILE_NAME).write_bytes(pem + good.certificate_pem)

    with pytest.raises(SigningKeyError, match="does not verify"):
        Signer.load_or_create(tmp_path)


def test_load_or_create_refuses_a_file_without_certificate(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_bytes(Signer.generate().private_key_pem())

    with pytest.raises(SigningKeyError, match="no certificate"):
        Signer.load_or_create(tmp_path)


def test_signer_refuses_a_certificate_of_another_key(signer: Signer) -> None:
    other = Signer.generate()
    key = serialization.load_pem_private_key(other.private_key_pem(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)

    with pytest.raises(SigningKeyError, match="does not belong"):
        Signer(key, x509.load_pem_x509_certificate(signer.certificate_pem))


def test_loading_a_world_readable_key_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Signer.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)

    Signer.load_or_create(tmp_path)

    assert "readable by others" in caplog.text
