"""What the rules say about themselves: the ``# METADATA`` comment blocks of the modules.

A block is a run of comment lines that starts with ``# METADATA`` and holds YAML (OPA's
annotation format); it describes the package or rule on the first line after it. This reads
the blocks from the sources themselves, so it works on any stored revision, without OPA.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
import yaml

_METADATA = "# METADATA"
_RULE_NAME = re.compile(r"^\s*(?:default\s+)?([A-Za-z_][\w]*)")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)")


class Annotation(msgspec.Struct, frozen=True, kw_only=True):
    """One annotated package or rule."""

    package: str
    rule: str | None
    """The rule's name; None for the package itself."""
    id: str | None
    """The stable code in ``custom.id``, which deny reasons and audit records carry."""
    title: str | None
    description: str | None
    explanation: str | None = None
    """``custom.explanation``: a sentence with ``{fact}`` placeholders, filled from the facts
    a reason of the rule carries (see `order3.policy.explanations`)."""


def read_annotations(sources: Iterable[str]) -> list[Annotation]:
    """Every annotated package and rule in ``sources``; rules sorted by id, packages first.

    A block whose YAML does not parse is skipped: OPA itself refuses such a module, so it
    cannot be part of a policy set that decided.
    """
    found = [entry for source in sources for entry in _module_annotations(source)]
    return sorted(found, key=lambda a: (a.rule is not None, a.id or "", a.package, a.rule or ""))


def _module_annotations(source: str) -> list[Annotation]:
    lines = source.splitlines()
    package_match = next(filter(None, (_PACKAGE.match(line) for line in lines)), None)
    package = package_match.group(1) if package_match else ""
    found, index = [], 0
    while index < len(lines):
        if lines[index].strip() != _METADATA:
            index += 1
            continue
        block, index = _comment_block(lines, index + 1)
        target = lines[index] if index < len(lines) else ""
        parsed = _parse(block)
        if parsed is not None:
            found.append(_annotation(parsed, package, target))

    return found


def _comment_block(lines: list[str], start: int) -> tuple[list[str], int]:
    block, index = [], start
    while index < len(lines) and lines[index].lstrip().startswith("#"):
        text = lines[index].lstrip()[1:]
        block.append(text[1:] if text.startswith(" ") else text)
        index += 1
    return block, index


def _parse(block: list[str]) -> dict[str, Any] | None:
    try:
        parsed = yaml.safe_load("\n".join(block))
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _annotation(parsed: dict[str, Any], package: str, target: str) -> Annotation:
    custom = parsed.get("custom")
    custom = custom if isinstance(custom, dict) else {}
    rule_id = custom.get("id")
    rule = None
    if not _PACKAGE.match(target):
        name = _RULE_NAME.match(target)
        rule = name.group(1) if name else None

    return Annotation(
        package=package,
        rule=rule,
        id=str(rule_id) if rule_id is not None else None,
        title=_text(parsed.get("title")),
        description=_text(parsed.get("description")),
        explanation=_text(custom.get("explanation")),
    )


def _text(value: Any) -> str | None:
    return str(value).strip() if value is not None else None
