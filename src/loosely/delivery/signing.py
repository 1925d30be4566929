"""Signing SNS envelopes the way AWS does, so receivers can verify them with stock SNS verifiers.

A `Signer` holds an RSA 2048 private key and a self-signed X.509 certificate for it. Envelopes are
signed over their canonical string (`loosely.core.topics.envelope.string_to_sign`) with
PKCS #1 v1.5 and SHA-1 (SignatureVersion 1) or SHA-256 (SignatureVersion 2), base64-encoded. The
certificate's PEM is what the server publishes at ``SigningCertURL``.

The key is made once and kept: `Signer.load_or_create` writes key and certificate to one PEM file
(mode 0600) under the data directory and reuses it on every start, so signatures stay verifiable
across restarts and receivers that cache the certificate keep working. Creation is atomic (written
aside, then hard-linked into place), so several processes starting together on one directory end
up sharing the same key. Nodes that do not share a directory each have their own key, hence the
fingerprint in `Signer.certificate_name`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "sns-signing.pem"
"""The file, under the directory given to `Signer.load_or_create`, that holds key and certificate."""

DEFAULT_COMMON_NAME = "loosely SNS message signing"
CERTIFICATE_VALIDITY = timedelta(days=3650)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


class SigningKeyError(Exception):
    """The stored signing key file is unreadable, malformed, or its key and certificate do not match."""


class Signer:
    """Signs envelope strings with one RSA key; implements `loosely.core.topics.envelope.EnvelopeSigner`."""

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        public = certificate.public_key()
        if (
            not isinstance(public, rsa.RSAPublicKey)
            or public.public_numbers() != private_key.public_key().public_numbers()
        ):
            raise SigningKeyError("the certificate does not belong to the private key")
        self._key = private_key
        self._certificate = certificate
        self._certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def generate(cls, common_name: str = DEFAULT_COMMON_NAME, *, now: datetime | None = None) -> Signer:
        """A fresh key and certificate held in memory only (tests, throwaway servers)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, _self_signed_certificate(key, common_name, now or datetime.now(UTC)))

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str], common_name: str = DEFAULT_COMMON_NAME) -> Signer:
        """The signer stored under ``directory``, created (and stored, mode 0600) on first use.

        Raises:
            SigningKeyError: a stored file exists but cannot be used; it is never overwritten.
        """
        folder = Path(directory)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / KEY_FILE_NAME
        if not path.exists():
            created = cls.generate(common_name)
            if _store_once(path, created):
                return created
        return cls._load(path)

    @classmethod
    def _load(cls, path: Path) -> Signer:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("signing key %s is readable by others (mode %o); it should be 0600", path, mode)
        data = path.read_bytes()
        split = data.find(_CERT_MARKER)
        if split < 0:
            raise SigningKeyError(f"{path} holds no certificate")
        try:
            # OpenSSL's full RSA key check costs about 45 ms, most of a server's start-up budget. What
            # matters here is narrower and is checked below instead: the key's signatures verify with the
            # certificate that receivers fetch (the constructor also matches the public numbers).
            key = serialization.load_pem_private_key(data[:split], password=None, unsafe_skip_rsa_key_validation=True)
            certificate = x509.load_pem_x509_certificate(data[split:])
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningKeyError(f"{path} is not a PEM private key followed by a certificate: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an RSA key")
        signer = cls(key, certificate)
        signer._check_signatures_verify()
        return signer

    def _check_signatures_verify(self) -> None:
        """Raise `SigningKeyError` unless a signature made with the key verifies with the certificate."""
        probe = b"loosely signing key check"
        signature = base64.b64decode(self.sign(probe, "2"))
        public = self._certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)  # the constructor checked it
        try:
            public.verify(signature, probe, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SigningKeyError("the private key makes signatures its certificate does not verify") from None

    @property
    def certificate_pem(self) -> bytes:
        """The certificate, PEM-encoded: the body to serve at SigningCertURL."""
        return self._certificate_pem

    @property
    def certificate_name(self) -> str:
        """A file name for SigningCertURL in AWS's style, unique to this certificate."""
        digest = hashlib.md5(self._certificate.public_bytes(serialization.Encoding.DER), usedforsecurity=False)
        return f"SimpleNotificationService-{digest.hexdigest()}.pem"

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS #8 PEM (what the key file stores)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        """Base64 of the PKCS #1 v1.5 signature: SHA1withRSA for version "1", SHA256withRSA for "2"."""
        algorithm = _HASHES.get(signature_version)
        if algorithm is None:
            raise ValueError(f"unknown SNS SignatureVersion {signature_version!r}")
        signature = self._key.sign(string_to_sign, padding.PKCS1v15(), algorithm())
        return base64.b64encode(signature).decode("ascii")


def _self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _store_once(path: Path, signer: Signer) -> bool:
    """Write ``signer`` to ``path`` unless another process got there first (then keep theirs); say which."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_key_pem() + signer.certificate_pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        _fsync_directory(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
