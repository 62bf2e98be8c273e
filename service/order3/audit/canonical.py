"""RFC 8785 (JSON Canonicalization Scheme) encoding and the hashes built on it.

The pure-Python ``rfc8785`` encoder is exact but slow; msgspec, in C, gives the same bytes on
a shared domain, so encoding takes the fast path there. The domain: JSON values built from
dicts with string keys, lists, strings, booleans, null and integers within ±(2**53 - 1), no
floats (msgspec writes NaN as ``null`` and formats floats its own way). In that domain
msgspec escapes every string exactly as RFC 8785 does (a test checks every code point), and
it sorts keys by code point where RFC 8785 sorts by UTF-16 unit. Those orders differ only
between characters from U+E000 up and characters beyond U+FFFF, so an encoding with any
such character goes to ``rfc8785`` as well, as does anything outside the domain: the exact
encoder decides, and raises where it raises.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import rfc8785

HASH_PREFIX = "sha256:"

_SORTED = msgspec.json.Encoder(order="sorted")
_SAFE_INTEGER = 2**53
# UTF-8 of U+E000 and up, and of everything beyond U+FFFF, starts at byte 0xEE or above.
_UTF16_ORDER_MAY_DIFFER = re.compile(rb"[\xee-\xff]")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 encoding of a JSON value: the bytes that are hashed and signed."""
    if _in_shared_domain(value):
        try:
            encoded = _SORTED.encode(value)
        except UnicodeEncodeError:  # a lone surrogate: the exact encoder says why
            pass
        else:
            if same_key_order(encoded):
                return encoded
    return rfc8785.dumps(value)


def same_key_order(encoded: bytes) -> bool:
    """Whether sorting the keys of the JSON text ``encoded`` by code point and by UTF-16 unit
    surely gives the same order."""
    return encoded.isascii() or not _UTF16_ORDER_MAY_DIFFER.search(encoded)


def content_hash(value: Any) -> str:
    """``sha256:<hex>`` over the canonical encoding of ``value``."""
    return HASH_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()


def _in_shared_domain(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(key) is str for key in item):
                return False
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind is int:
            if not -_SAFE_INTEGER < item < _SAFE_INTEGER:
                return False
        elif kind is not str and kind is not bool and item is not None:
            return False
    return True
