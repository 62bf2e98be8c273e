"""Policy revisions: the exact policy set that answered a decision, addressed by its hash.

A revision's **content** is the JSON object ``{"modules": [...], "data": ...}``: the sources
of every policy module OPA has loaded, sorted as strings, and the policy data under
``data.settings`` (``null`` when there is none). Its **id** is `content_hash` of that object,
``sha256:`` and the hex SHA-256 of its RFC 8785 encoding, so anyone holding the content can
recompute the id, and a stored content that does not hash to its id was changed.

Module file names are not part of the content: OPA names a module by the path it was loaded
from, which differs from machine to machine while the rules do not. Rego does not depend on
file names, so `module_files` names each module after its package when the revision is
written out to be evaluated again.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from order3.audit.canonical import canonical_json, content_hash

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


class RevisionContent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a revision id is the hash of."""

    modules: list[str]
    """The module sources, sorted."""
    data: Any
    """The policy data OPA serves as ``data.settings``."""

    @classmethod
    def of(cls, sources: list[str], data: Any) -> RevisionContent:
        return cls(modules=sorted(sources), data=data)

    def revision(self) -> str:
        """The revision id: `content_hash` of the content."""
        return content_hash(msgspec.to_builtins(self))

    def canonical(self) -> str:
        """The RFC 8785 text of the content, as it is stored."""
        return canonical_json(msgspec.to_builtins(self)).decode()

    def module_files(self) -> dict[str, str]:
        """File names for the modules, unique and stable: ``<index>-<package>.rego``."""
        files = {}
        for index, source in enumerate(self.modules):
            found = _PACKAGE.search(source)
            package = found.group(1) if found else "module"
            files[f"{index:03d}-{package}.rego"] = source
        return files


class PolicyRevision(msgspec.Struct, frozen=True, kw_only=True):
    """A revision id with its content and the engine that first reported it."""

    revision: str
    engine: str
    content: RevisionContent

    @classmethod
    def of(cls, content: RevisionContent, engine: str) -> PolicyRevision:
        return cls(revision=content.revision(), engine=engine, content=content)


class StoredRevision(msgspec.Struct, frozen=True, kw_only=True):
    """A revision as read back from the database or an export: untrusted until `verified`."""

    revision: str
    engine: str
    content: str | dict[str, Any]
    """RFC 8785 text in the database, a JSON object in an export."""
    first_seen_at: str | None = None

    def verified(self) -> RevisionContent:
        """The content, once it is checked to hash to the revision id.

        Raises:
            ValueError: It does not, or it is not a revision's content.
        """
        return parse_content(self.content, self.revision)


def parse_content(value: str | dict[str, Any], expected_revision: str) -> RevisionContent:
    """Read stored or exported content and check that it hashes to ``expected_revision``.

    Args:
        value: The content as stored (RFC 8785 text) or as exported (a JSON object).
        expected_revision: The revision id the content is stored under.

    Raises:
        ValueError: The content is not a revision's content, or it hashes to another id.
    """
    raw = json.loads(value) if isinstance(value, str) else value
    try:
        content = msgspec.convert(raw, RevisionContent)
    except msgspec.ValidationError as exc:
        raise ValueError(f"the content of {expected_revision} is malformed: {exc}") from None
    actual = content_hash(raw)
    if actual != expected_revision:
        raise ValueError(
            f"the content stored as {expected_revision} hashes to {actual}: it was changed"
        )
    return content
