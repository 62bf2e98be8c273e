"""Ed25519 private key files: written once, readable only by their owner, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def create_private_key_file(path: Path) -> Ed25519PrivateKey:
    """Generate a key and write it to ``path`` as PKCS#8 PEM, mode 0600.

    Raises:
        FileExistsError: ``path`` exists; a key file is never replaced.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_private_key_file(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in a PKCS#8 PEM file.

    Raises:
        ValueError: the file holds no Ed25519 private key.
    """
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
