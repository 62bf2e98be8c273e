"""RFC 8785 (JSON Canonicalization Scheme) encoding and the hashes built on it."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

HASH_PREFIX = "sha256:"


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 encoding of a JSON value: the bytes that are hashed and signed."""
    return rfc8785.dumps(value)


def content_hash(value: Any) -> str:
    """``sha256:<hex>`` over the canonical encoding of ``value``."""
    return HASH_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()
