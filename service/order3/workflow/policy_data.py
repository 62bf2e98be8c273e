"""The policy data (``data.settings``): its versions, changing it, and the bundle built from it.

The policy data is global: one document for the whole service, which every workspace's
decisions read. Each change is a new numbered version, validated against the JSON Schema in
``policies/settings/schema.json`` and written in the same transaction as its audit record
(``policy_data.changed``, holding the document before and after). Version 1 is seeded from
``policies/settings/data.json`` the first time the service starts on a database.

The bundle is built from the policy modules (read once, when the service starts) and the
current version, and rebuilt when another version becomes current, in this process or
another. Its revision is stored before the bundle is handed out, so any revision an OPA can
report for it can be re-run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.canonical import canonical_json, content_hash
from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.domain.errors import Conflict, InvalidInput, NotFound
from order3.domain.principals import SYSTEM_ACTOR_ID, Actor
from order3.policy.bundles import BundleKey, SignedBundle, build_bundle
from order3.policy.engine import KeepRevision
from order3.policy.revisions import PolicyRevision
from order3.storage.idempotency import IdempotencyClaim
from order3.storage.revisions import load_revisions
from order3.storage.schema import policy_data_versions as versions_table

log = structlog.get_logger(__name__)

CHANGED = "policy_data.changed"
_BUNDLE_ENGINE = "order3-bundle"
_MAX_ERRORS = 20


class PolicyDataVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One version of the policy data."""

    version: int
    document: Any
    content_hash: str
    """`content_hash` of the document: the same hash a revision's data has."""
    created_at: str
    created_by: str


class PolicyDataWorkflow:
    def __init__(
        self,
        db: AsyncEngine,
        appender: AuditAppender,
        *,
        schema: dict[str, Any],
        modules: dict[str, str],
        key: BundleKey,
        keep_revision: KeepRevision,
    ) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self._db = db
        self._appender = appender
        self._validator = jsonschema.Draft202012Validator(schema)
        self._modules = modules
        self.bundle_key = key
        self._keep_revision = keep_revision
        self._bundle: SignedBundle | None = None
        self._building = asyncio.Lock()

    async def seed(self, document: Any) -> None:
        """Make ``document`` (the policy data shipped with the policies) version 1 when there
        is no version yet."""
        if await self._current_number() is not None:
            return
        problems = self.problems(document)
        if problems:  # it shipped with the policies; say so, but do not refuse to start
            log.warning("policy_data.seed_invalid", errors=problems[:3])
        system = {"id": SYSTEM_ACTOR_ID, "type": "system"}
        try:
            await self._store(None, system, document, None)
        except Conflict:
            return  # another process seeded it first
        log.info("policy_data.seeded")

    def problems(self, document: Any, at: str = "") -> list[dict[str, str]]:
        """Where ``document`` breaks the schema: ``{field: JSON pointer, message}`` each, the
        pointers prefixed with ``at`` (where the document is in a request body)."""
        errors = sorted(self._validator.iter_errors(document), key=lambda e: list(e.path))
        return [
            {"field": at + _field(error), "message": error.message}
            for error in errors[:_MAX_ERRORS]
        ]

    async def current(self) -> PolicyDataVersion:
        """The current version.

        Raises:
            NotFound: There is none yet (the service seeds one when it starts).
        """
        number = await self._current_number()
        if number is None:
            raise NotFound("there is no policy data yet")
        return await self.version(number)

    async def version(self, number: int) -> PolicyDataVersion:
        """One version.

        Raises:
            NotFound: There is no such version.
        """
        async with self._db.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(versions_table).where(versions_table.c.version == number)
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"there is no policy data version {number}", version=number)
        return _version(row)

    async def versions(self) -> list[PolicyDataVersion]:
        """Every version, newest first, without their documents (``document`` is None)."""
        columns = [c for c in versions_table.c if c.name != "document"]
        async with self._db.connect() as connection:
            rows = await connection.execute(
                sa.select(*columns).order_by(versions_table.c.version.desc())
            )
            return [
                PolicyDataVersion(
                    version=row.version,
                    document=None,
                    content_hash=row.content_hash,
                    created_at=row.created_at,
                    created_by=row.created_by,
                )
                for row in rows
            ]

    async def version_for_data(self, data_hash: str) -> int | None:
        """The newest version whose document hashes to ``data_hash``."""
        async with self._db.connect() as connection:
            found = await connection.execute(
                sa.select(sa.func.max(versions_table.c.version)).where(
                    versions_table.c.content_hash == data_hash
                )
            )
            number = found.scalar()
        return int(number) if number is not None else None

    async def replace(
        self,
        actor: Actor,
        document: Any,
        claim: IdempotencyClaim | None = None,
        *,
        at: str = "",
    ) -> tuple[PolicyDataVersion, list[SealedRecord]]:
        """Make ``document`` the next version; ``at`` is where it is in the request body.

        Raises:
            InvalidInput: It breaks the schema; ``errors`` names each field by JSON pointer.
            Conflict: Another change took the same version number; read and try again.
        """
        problems = self.problems(document, at)
        if problems:
            first = problems[0]
            error = InvalidInput(first["field"], first["message"])
            error.extensions["errors"] = problems
            raise error
        stored, records = await self._store(actor.workspace_id, actor.reference(), document, claim)
        log.info("policy_data.changed", version=stored.version, content_hash=stored.content_hash)
        return stored, records

    async def bundle(self) -> SignedBundle:
        """The signed bundle of the current version, its revision stored before it is returned.

        Raises:
            NotFound: There is no policy data yet.
        """
        number = await self._current_number()
        cached = self._bundle
        if cached is not None and cached.data_version == number:
            return cached
        async with self._building:
            cached = self._bundle
            if cached is not None and cached.data_version == number:
                return cached
            current = await self.current()
            built = build_bundle(self._modules, current.document, current.version, self.bundle_key)
            await self._keep_revision(PolicyRevision.of(built.content, _BUNDLE_ENGINE))
            self._bundle = built
            log.info("bundle.built", revision=built.revision, data_version=built.data_version)
            return built

    async def _current_number(self) -> int | None:
        async with self._db.connect() as connection:
            found = await connection.execute(sa.select(sa.func.max(versions_table.c.version)))
            number = found.scalar()
        return int(number) if number is not None else None

    async def _store(
        self,
        workspace_id: str | None,
        actor: dict[str, str],
        document: Any,
        claim: IdempotencyClaim | None,
    ) -> tuple[PolicyDataVersion, list[SealedRecord]]:
        async def store(connection: AsyncConnection) -> tuple[PolicyDataVersion, list[AuditEntry]]:
            before = await _latest(connection)
            created = PolicyDataVersion(
                version=(before.version if before else 0) + 1,
                document=document,
                content_hash=content_hash(document),
                created_at=utc_timestamp(),
                created_by=actor["id"],
            )
            await connection.execute(
                versions_table.insert().values(
                    **msgspec.structs.asdict(created)
                    | {"document": canonical_json(document).decode()}
                )
            )
            return created, [_changed(workspace_id, actor, before, created)]

        try:
            return await self._appender.commit(store, claim=claim)
        except sa.exc.IntegrityError:
            raise Conflict(
                "the policy data changed at the same time; read it again and retry"
            ) from None


def read_json(path: Path) -> Any:
    """A JSON file's document (the seed, the schema)."""
    return json.loads(path.read_text(encoding="utf-8"))


async def revision_is_stored(db: AsyncEngine, revision: str) -> bool:
    """Whether the policy revision ``revision`` is stored."""
    return bool(await load_revisions(db, [revision]))


async def _latest(connection: AsyncConnection) -> PolicyDataVersion | None:
    row = (
        await connection.execute(
            sa.select(versions_table).order_by(versions_table.c.version.desc()).limit(1)
        )
    ).one_or_none()
    return _version(row) if row is not None else None


def _changed(
    workspace_id: str | None,
    actor: dict[str, str],
    before: PolicyDataVersion | None,
    after: PolicyDataVersion,
) -> AuditEntry:
    return AuditEntry(
        workspace_id=workspace_id,
        actor=actor,
        action=CHANGED,
        subject={"type": "policy_data", "id": f"v{after.version}"},
        details={
            "version": after.version,
            "previous_version": before.version if before else None,
            "content_hash": after.content_hash,
            "before": before.document if before else None,
            "after": after.document,
        },
    )


def _version(row: Any) -> PolicyDataVersion:
    return PolicyDataVersion(
        version=row.version,
        document=json.loads(row.document),
        content_hash=row.content_hash,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _field(error: jsonschema.ValidationError) -> str:
    """The JSON pointer of the field an error is about: for a missing or an unexpected
    member, that member rather than the object holding it."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [name for name in required if name not in instance]
        path += missing[:1]
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        path += sorted(name for name in instance if name not in allowed)[:1]
    return _pointer(path)


def _pointer(path: Any) -> str:
    """A JSON pointer (RFC 6901) from jsonschema's path of keys and indexes; ``""`` is the
    whole document."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "".join("/" + part for part in parts)
