"""Workspaces, principals and API tokens: who may act, and with which scopes.

A token is 32 random bytes shown once when issued. Only its SHA-256 is stored; with that
much entropy a fast hash is as good as a slow one, and it keeps authentication to one
indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.domain.errors import InvalidInput, NotFound
from order3.domain.identifiers import new_id
from order3.domain.principals import (
    OPERATOR_ROLES,
    OPERATOR_SCOPES,
    ROLE_SCOPES,
    Actor,
    PrincipalType,
    Scope,
    scopes_for_roles,
)
from order3.storage import repositories as repo
from order3.storage.idempotency import IdempotencyClaim
from order3.storage.schema import workspaces

log = structlog.get_logger(__name__)

_CACHE_LIMIT = 10_000

TOKEN_PREFIX = "o3_"  # noqa: S105 - a marker that tells tokens apart, not a secret


def hash_secret(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    name: str
    roles: list[str]
    created_at: str


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """A token's public facts; ``secret`` is set only on the answer that issues it."""

    id: str
    principal_id: str
    label: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None = None
    secret: str | None = msgspec.field(default=None)


class AccessWorkflow:
    def __init__(
        self, db: AsyncEngine, appender: AuditAppender, *, token_cache_seconds: float = 0.0
    ) -> None:
        self._db = db
        self._appender = appender
        self._cache_seconds = token_cache_seconds
        self._recently_seen: dict[str, tuple[float, Actor]] = {}

    async def authenticate(self, token: str) -> Actor | None:
        """The actor behind a live token, or None.

        A found token is remembered for ``token_cache_seconds``; revoking it in this process
        forgets it at once.
        """
        if not token.startswith(TOKEN_PREFIX):
            return None
        secret_hash = hash_secret(token)
        now = time.monotonic()
        seen = self._recently_seen.get(secret_hash)
        if seen is not None and seen[0] > now:
            return seen[1]
        actor = await self._look_up(secret_hash)
        if actor is not None and self._cache_seconds > 0:
            if len(self._recently_seen) >= _CACHE_LIMIT:
                self._recently_seen.clear()
            self._recently_seen[secret_hash] = (now + self._cache_seconds, actor)
        return actor

    async def _look_up(self, secret_hash: str) -> Actor | None:
        row = await repo.find_active_token(self._db, secret_hash)
        if row is None:
            return None
        return Actor(
            id=row.principal_id,
            type=PrincipalType(row.type),
            roles=tuple(row.roles),
            scopes=tuple(Scope(s) for s in row.scopes),
            workspace_id=row.workspace_id,
            token_id=row.id,
            name=row.name,
        )

    async def create_workspace(self, name: str, admin_name: str) -> tuple[str, Principal, Token]:
        """A new workspace with one admin user and a token for it (for the CLI)."""
        workspace_id, now = new_id("wsp"), utc_timestamp()
        admin = Principal(
            id=new_id("prn"), type="user", name=admin_name, roles=["admin"], created_at=now
        )
        token, secret = _new_token(admin, "first admin token", sorted(ROLE_SCOPES["admin"]), now)
        cli = {"id": "cli", "type": "system"}

        async def store(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            await repo.insert_workspace(connection, workspace_id, name, now)
            await _insert_principal(connection, workspace_id, admin)
            await _insert_token(connection, workspace_id, token, secret)
            return None, [
                _entry(
                    workspace_id,
                    cli,
                    "workspace.created",
                    "workspace",
                    workspace_id,
                    {"name": name},
                ),
                _entry(
                    workspace_id,
                    cli,
                    "principal.created",
                    "principal",
                    admin.id,
                    _principal_details(admin),
                ),
                _entry(
                    workspace_id, cli, "token.created", "token", token.id, _token_details(token)
                ),
            ]

        await self._appender.commit(store)
        log.info("workspace.created", workspace_id=workspace_id, principal_id=admin.id)
        return workspace_id, admin, msgspec.structs.replace(token, secret=secret)

    async def create_policy_admin(self, workspace_id: str, name: str) -> tuple[Principal, Token]:
        """A ``policy_admin`` user in an existing workspace, with a token for it (for the CLI:
        the only way to hold the `policy` scope).

        Raises:
            NotFound: There is no such workspace.
        """
        async with self._db.connect() as connection:
            found = await connection.execute(
                sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id)
            )
            if found.first() is None:
                raise NotFound(f"no workspace {workspace_id}", workspace_id=workspace_id)
        now = utc_timestamp()
        principal = Principal(
            id=new_id("prn"), type="user", name=name, roles=["policy_admin"], created_at=now
        )
        scopes = sorted(str(s) for s in ROLE_SCOPES["policy_admin"])
        token, secret = _new_token(principal, "policy admin token", scopes, now)
        cli = {"id": "cli", "type": "system"}

        async def store(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            await _insert_principal(connection, workspace_id, principal)
            await _insert_token(connection, workspace_id, token, secret)
            return None, [
                _entry(
                    workspace_id,
                    cli,
                    "principal.created",
                    "principal",
                    principal.id,
                    _principal_details(principal),
                ),
                _entry(
                    workspace_id, cli, "token.created", "token", token.id, _token_details(token)
                ),
            ]

        await self._appender.commit(store)
        log.info("policy_admin.created", workspace_id=workspace_id, principal_id=principal.id)
        return principal, msgspec.structs.replace(token, secret=secret)

    async def create_principal(
        self,
        actor: Actor,
        type_: PrincipalType,
        name: str,
        roles: list[str],
        claim: IdempotencyClaim | None = None,
    ) -> tuple[Principal, list[SealedRecord]]:
        for index, role in enumerate(roles):
            if role not in ROLE_SCOPES:
                raise InvalidInput(
                    f"$.roles[{index}]",
                    f"unknown role `{role}`; known: {', '.join(sorted(ROLE_SCOPES))}",
                )
            if role in OPERATOR_ROLES:
                raise InvalidInput(
                    f"$.roles[{index}]",
                    f"the role `{role}` reaches beyond this workspace; "
                    "only the operator grants it, with `order3 policy-admin create`",
                )
        principal = Principal(
            id=new_id("prn"),
            type=str(type_),
            name=name,
            roles=sorted(set(roles)),
            created_at=utc_timestamp(),
        )

        async def store(connection: AsyncConnection) -> tuple[Principal, list[AuditEntry]]:
            await _insert_principal(connection, actor.workspace_id, principal)
            return principal, [
                _entry(
                    actor.workspace_id,
                    actor.reference(),
                    "principal.created",
                    "principal",
                    principal.id,
                    _principal_details(principal),
                )
            ]

        return await self._appender.commit(store, claim=claim)

    async def list_principals(self, actor: Actor) -> list[Principal]:
        async with self._db.connect() as connection:
            rows = await repo.list_principals(connection, actor.workspace_id)
        return [
            Principal(id=r.id, type=r.type, name=r.name, roles=r.roles, created_at=r.created_at)
            for r in rows
        ]

    async def issue_token(
        self,
        actor: Actor,
        principal_id: str,
        label: str,
        scopes: list[Scope] | None,
        claim: IdempotencyClaim | None = None,
    ) -> tuple[Token, list[SealedRecord]]:
        async with self._db.connect() as connection:
            row = await repo.load_principal(connection, actor.workspace_id, principal_id)
        if row is None:
            raise InvalidInput("$.principal_id", f"no principal {principal_id} in this workspace")
        granted = scopes_for_roles(row.roles)
        wanted = granted - OPERATOR_SCOPES if scopes is None else frozenset(scopes)
        operator = sorted(str(s) for s in wanted & OPERATOR_SCOPES)
        if operator:
            raise InvalidInput(
                "$.scopes",
                f"{', '.join(operator)} reaches beyond this workspace; only the operator "
                "issues it, with `order3 policy-admin create`",
            )
        beyond = sorted(str(s) for s in wanted - granted)
        if beyond:
            raise InvalidInput(
                "$.scopes", f"the principal's roles do not grant {', '.join(beyond)}"
            )
        owner = Principal(
            id=row.id, type=row.type, name=row.name, roles=row.roles, created_at=row.created_at
        )
        token, secret = _new_token(owner, label, sorted(str(s) for s in wanted), utc_timestamp())

        async def store(connection: AsyncConnection) -> tuple[Token, list[AuditEntry]]:
            await _insert_token(connection, actor.workspace_id, token, secret)
            return token, [
                _entry(
                    actor.workspace_id,
                    actor.reference(),
                    "token.created",
                    "token",
                    token.id,
                    _token_details(token),
                )
            ]

        issued, records = await self._appender.commit(store, claim=claim)
        return msgspec.structs.replace(issued, secret=secret), records

    async def list_tokens(self, actor: Actor) -> list[Token]:
        async with self._db.connect() as connection:
            rows = await repo.list_tokens(connection, actor.workspace_id)
        return [_token_from_row(r) for r in rows]

    async def revoke_token(self, actor: Actor, token_id: str) -> Token:
        async with self._db.connect() as connection:
            row = await repo.load_token(connection, actor.workspace_id, token_id)
        if row is None:
            raise NotFound(f"no token {token_id} in this workspace", token_id=token_id)
        now = utc_timestamp()

        async def store(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            await repo.revoke_token(connection, token_id, now)
            return None, [
                _entry(
                    actor.workspace_id,
                    actor.reference(),
                    "token.revoked",
                    "token",
                    token_id,
                    {"principal_id": row.principal_id},
                )
            ]

        await self._appender.commit(store)
        self._recently_seen = {
            key: seen for key, seen in self._recently_seen.items() if seen[1].token_id != token_id
        }
        log.info("token.revoked", token_id=token_id)
        return msgspec.structs.replace(_token_from_row(row), revoked_at=now)


def _new_token(owner: Principal, label: str, scopes: list[str], now: str) -> tuple[Token, str]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        id=new_id("tok"), principal_id=owner.id, label=label, scopes=scopes, created_at=now
    )
    return token, secret


async def _insert_principal(
    connection: AsyncConnection, workspace_id: str, principal: Principal
) -> None:
    await repo.insert_principal(
        connection, workspace_id=workspace_id, **msgspec.to_builtins(principal)
    )


async def _insert_token(
    connection: AsyncConnection, workspace_id: str, token: Token, secret: str
) -> None:
    await repo.insert_token(
        connection,
        id=token.id,
        workspace_id=workspace_id,
        principal_id=token.principal_id,
        secret_hash=hash_secret(secret),
        scopes=token.scopes,
        label=token.label,
        created_at=token.created_at,
    )


def _token_from_row(row: Any) -> Token:
    return Token(
        id=row.id,
        principal_id=row.principal_id,
        label=row.label,
        scopes=row.scopes,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _principal_details(principal: Principal) -> dict[str, Any]:
    return {"type": principal.type, "name": principal.name, "roles": principal.roles}


def _token_details(token: Token) -> dict[str, Any]:
    return {"principal_id": token.principal_id, "label": token.label, "scopes": token.scopes}


def _entry(
    workspace_id: str,
    actor: dict[str, str],
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any],
) -> AuditEntry:
    return AuditEntry(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        subject={"type": subject_type, "id": subject_id},
        details=details,
    )
