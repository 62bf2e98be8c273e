"""Masking sensitive values in the decision inputs that audit records store.

Some inputs carry values an audit log should not keep in the clear, such as a supplier's
bank details. Operators name them as JSON pointers (RFC 6901) into the decision input; a
``*`` segment stands for every element of an array or every member of an object. Before a
record is hashed and signed, each named value is replaced by a keyed hash of its RFC 8785
encoding, ``hmac-sha256:<hex>``, and the pointers that were masked are listed in
``decision.masked``.

A policy may repeat an input value in its result: a reason's message names the supplier on
hold, its facts carry the supplier id. So the same keyed hash also replaces, in the
reasons' messages and facts, every value equal to a masked one and every whole-word
occurrence of a masked string or integer inside their text; ``decision.masked_result``
lists the pointers into the result that changed. The record still verifies, and whoever
holds the masking key can check that a masked value was a given one, but the log alone
does not reveal it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from order3.audit.canonical import canonical_json

MASK_PREFIX = "hmac-sha256:"
WILDCARD = "*"


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 pointer; raise `ValueError` if it is not one."""
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer: it must start with '/'")
    tokens = pointer[1:].split("/")
    if any("~" in token.replace("~0", "").replace("~1", "") for token in tokens):
        raise ValueError(f"{pointer!r} has a '~' that is not '~0' or '~1'")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def format_pointer(tokens: tuple[str, ...]) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


class DecisionMasker:
    """Replaces the configured values of decision inputs by keyed hashes."""

    def __init__(self, pointers: list[str], key: bytes) -> None:
        self._patterns = [parse_pointer(pointer) for pointer in pointers]
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return f"DecisionMasker(fields={len(self._patterns)})"

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def masked_value(self, value: Any) -> str:
        digest = hmac.new(self._key, canonical_json(value), hashlib.sha256).hexdigest()
        return MASK_PREFIX + digest

    def mask(self, decision: dict[str, Any]) -> dict[str, Any]:
        """``decision`` with its input masked and ``masked`` listing what was replaced, and
        with its result's reasons cleared of the masked values (``masked_result``).

        A decision whose input holds none of the configured fields comes back unchanged.
        """
        decision_input = decision.get("input")
        if not self._patterns or not isinstance(decision_input, dict):
            return decision
        masked_input = copy.deepcopy(decision_input)
        masked: list[str] = []
        hidden = _HiddenValues()
        for pattern in self._patterns:
            for parent, token, path in _matches(masked_input, pattern, ()):
                replacement = self.masked_value(parent[token])
                hidden.add(parent[token], replacement)
                parent[token] = replacement
                masked.append(format_pointer(path))
        if not masked:
            return decision
        masked_decision = {**decision, "input": masked_input, "masked": sorted(set(masked))}
        result = decision.get("result")
        if isinstance(result, dict) and isinstance(result.get("reasons"), list):
            result = copy.deepcopy(result)
            changed: list[str] = []
            for index, reason in enumerate(result["reasons"]):
                if not isinstance(reason, dict):
                    continue
                for member in ("message", "facts"):
                    if member in reason:
                        path = ("reasons", str(index), member)
                        reason[member] = hidden.scrub(reason[member], path, changed)
            if changed:
                masked_decision["result"] = result
                masked_decision["masked_result"] = sorted(set(changed))
        return masked_decision


class _HiddenValues:
    """The masked values of one decision input, to be cleared from its result: each value
    equal to one is replaced by its mask, and so is each whole-word occurrence of a masked
    string or integer inside a string."""

    def __init__(self) -> None:
        self._masks: dict[bytes, str] = {}
        self._words: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: Any, mask: str) -> None:
        self._masks[canonical_json(value)] = mask
        word = value if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool):
            word = str(value)
        if word:
            self._words[word] = mask
            self._pattern = None

    def scrub(self, node: Any, path: tuple[str, ...], changed: list[str]) -> Any:
        """``node`` with the masked values replaced; the pointer of every value that
        changed (or of the container whose keys did) goes into ``changed``."""
        if isinstance(node, bool) or node is None:
            return node
        mask = self._masks.get(canonical_json(node))
        if mask is not None:
            changed.append(format_pointer(path))
            return mask
        if isinstance(node, str):
            scrubbed = self._scrub_text(node)
            if scrubbed != node:
                changed.append(format_pointer(path))
            return scrubbed
        if isinstance(node, list):
            return [self.scrub(item, (*path, str(i)), changed) for i, item in enumerate(node)]
        if isinstance(node, dict):
            scrubbed_dict: dict[str, Any] = {}
            for key, item in node.items():
                scrubbed_key = self._scrub_text(key)
                if scrubbed_key != key:
                    changed.append(format_pointer((*path, scrubbed_key)))
                scrubbed_dict[scrubbed_key] = self.scrub(item, (*path, scrubbed_key), changed)
            return scrubbed_dict
        return node

    def _scrub_text(self, text: str) -> str:
        if not self._words:
            return text
        if self._pattern is None:
            # Longest first, so that a masked word never leaves part of a longer one behind.
            words = sorted(self._words, key=len, reverse=True)
            self._pattern = re.compile("|".join(_whole_word(word) for word in words))
        return self._pattern.sub(lambda match: self._words[match.group()], text)


def _whole_word(word: str) -> str:
    """A pattern for ``word`` that never matches inside a longer word: where ``word``
    starts or ends with a letter, digit or underscore, no such character may adjoin it."""
    before = r"(?<!\w)" if re.match(r"\w", word[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", word[-1]) else ""
    return before + re.escape(word) + after


def _matches(
    node: Any, pattern: tuple[str, ...], path: tuple[str, ...]
) -> Iterator[tuple[Any, Any, tuple[str, ...]]]:
    """(container, key or index, pointer tokens) for every value ``pattern`` names."""
    head, rest = pattern[0], pattern[1:]
    if isinstance(node, dict):
        keys: list[Any] = list(node) if head == WILDCARD else [head] if head in node else []
    elif isinstance(node, list):
        if head == WILDCARD:
            keys = list(range(len(node)))
        elif head.isdigit() and (head == "0" or not head.startswith("0")) and int(head) < len(node):
            keys = [int(head)]
        else:
            keys = []
    else:
        return
    for key in keys:
        if rest:
            yield from _matches(node[key], rest, (*path, str(key)))
        elif node[key] is not None and not _is_masked(node[key]):
            yield node, key, (*path, str(key))


def _is_masked(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MASK_PREFIX)


def load_or_create_mask_key(configured: str | None, path: Path) -> bytes:
    """The masking key: the configured value, else a random key kept in ``path``."""
    if configured:
        return configured.encode()
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
