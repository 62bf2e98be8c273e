"""Ed25519 keys that sign audit records, loaded from a file and never from the database."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = structlog.get_logger(__name__)

# Signatures cover this label and the record hash, so a record signature can never be
# replayed as a signature over anything else this service signs.
RECORD_SIGNATURE_CONTEXT = b"order3.audit.record.v1\n"


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def record_message(record_hash: str) -> bytes:
    """The exact bytes a record signature covers."""
    return RECORD_SIGNATURE_CONTEXT + record_hash.encode("ascii")


class SigningKey:
    """The private key that signs new audit records, with its key id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_for(self.public_key)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    def sign(self, message: bytes) -> bytes:
        """The raw Ed25519 signature of ``message`` (for signed notes)."""
        return self._private_key.sign(message)

    def sign_record(self, record_hash: str) -> str:
        """Base64 of the Ed25519 signature over `record_message`."""
        return base64.b64encode(self._private_key.sign(record_message(record_hash))).decode()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load a PEM (PKCS#8) key; create one readable only by its owner if none exists."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        signing_key = cls(key)
        log.info("audit.key_created", key_id=signing_key.key_id, path=str(path))
        return signing_key

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key is not an Ed25519 private key")
        return cls(key)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify_record_signature(public_key: Ed25519PublicKey, record_hash: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        # base64 ignores the unused low bits of the last digit: accept one spelling only.
        if base64.b64encode(raw).decode() != signature:
            return False
        public_key.verify(raw, record_message(record_hash))
    except (InvalidSignature, ValueError):
        return False
    return True
