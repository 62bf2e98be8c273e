"""Principals, roles and scopes: who acts, and what their tokens let them do."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec


class PrincipalType(enum.StrEnum):
    USER = "user"
    AGENT = "agent"
    INTEGRATION = "integration"


class Scope(enum.StrEnum):
    READ = "read"
    DRAFT = "draft"
    APPROVE = "approve"
    EXECUTE = "execute"
    EXPORT = "export"
    ADMIN = "admin"
    BUNDLE = "bundle"
    """Download the signed policy bundle (an OPA sidecar's token holds only this)."""
    POLICY = "policy"
    """Change the policy data, which every workspace decides under."""
    SYNC = "sync"
    """Upsert items, suppliers and purchase orders from another system (``/v1/sync``)."""


OPERATOR_SCOPES = frozenset({Scope.POLICY})
"""Scopes that reach beyond one workspace. No workspace admin holds or grants them: only
the operator's CLI (`order3 policy-admin`) issues tokens with them."""

OPERATOR_ROLES = frozenset({"policy_admin"})
"""Roles that grant operator scopes, and so are given only by the operator's CLI."""

ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    "viewer": frozenset({Scope.READ}),
    "requester": frozenset({Scope.READ, Scope.DRAFT}),
    "manager": frozenset({Scope.READ, Scope.DRAFT, Scope.APPROVE, Scope.EXECUTE}),
    "finance": frozenset({Scope.READ, Scope.DRAFT, Scope.APPROVE, Scope.EXECUTE}),
    "operator": frozenset({Scope.READ, Scope.EXECUTE}),
    "auditor": frozenset({Scope.READ, Scope.EXPORT}),
    "admin": frozenset(Scope) - OPERATOR_SCOPES,
    "sidecar": frozenset({Scope.BUNDLE}),
    "policy_admin": frozenset({Scope.READ, Scope.POLICY}),
    "integration": frozenset({Scope.READ, Scope.SYNC}),
}


def scopes_for_roles(roles: Iterable[str]) -> frozenset[Scope]:
    """The union of the scopes the given roles grant; unknown roles grant nothing."""
    granted: set[Scope] = set()
    for role in roles:
        granted |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(granted)


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """The principal behind a request, as the policy and the audit log see it."""

    id: str
    type: PrincipalType
    roles: tuple[str, ...]
    scopes: tuple[Scope, ...]
    workspace_id: str
    token_id: str | None = None
    name: str = ""

    def reference(self) -> dict[str, str]:
        """The short form an audit record names its actor by."""
        ref = {"id": self.id, "type": str(self.type)}
        if self.token_id is not None:
            ref["token_id"] = self.token_id
        return ref


SYSTEM_ACTOR_ID = "system"
