"""Request and response bodies. Requests reject unknown fields; responses are what clients
and agents may rely on."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from order3.audit.records import SealedRecord
from order3.domain.decisions import Decision, Reason, Requirement
from order3.domain.drafts import Approval, Draft, DraftKind, Identifier, RecordRef, Verdict
from order3.domain.money import Money
from order3.domain.principals import PrincipalType, Scope

Rationale = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class _Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class DraftCreate(_Request, frozen=True, kw_only=True):
    kind: DraftKind
    payload: dict[str, Any]
    rationale: Rationale
    affected_records: Annotated[list[RecordRef], msgspec.Meta(min_length=1, max_length=200)]
    approval_owner: Identifier


class DraftPatchRequest(_Request, frozen=True, kw_only=True):
    payload: dict[str, Any] | None = None
    rationale: Rationale | None = None
    affected_records: (
        Annotated[list[RecordRef], msgspec.Meta(min_length=1, max_length=200)] | None
    ) = None
    approval_owner: Identifier | None = None


class ApprovalRequest(_Request, frozen=True, kw_only=True):
    verdict: Verdict
    role: Identifier | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


class DismissRequest(_Request, frozen=True, kw_only=True):
    reason: Rationale


class PrincipalCreate(_Request, frozen=True, kw_only=True):
    type: PrincipalType
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    roles: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=20)]


class TokenCreate(_Request, frozen=True, kw_only=True):
    principal_id: Identifier
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    scopes: list[Scope] | None = None


# ---- responses ----------------------------------------------------------------------------


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    action: str
    outcome: str
    allow: bool
    reasons: list[Reason]
    required: list[Requirement]
    policy_revision: str
    decision_id: str | None
    audit_seq: int | None

    @classmethod
    def of(cls, decision: Decision, records: list[SealedRecord]) -> DecisionView:
        return cls(
            id=decision.id,
            action=str(decision.action),
            outcome=decision.result.outcome,
            allow=decision.result.allow,
            reasons=decision.result.reasons,
            required=decision.result.required,
            policy_revision=decision.policy_revision,
            decision_id=decision.decision_id,
            audit_seq=records[0].seq if records else None,
        )


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    approver: dict[str, str]
    verdict: str
    role: str | None
    comment: str | None
    content_hash: str
    decided_at: str
    current: bool
    """Whether it binds to the draft's current content (a patch drops earlier approvals)."""

    @classmethod
    def of(cls, approval: Approval, content_hash: str) -> ApprovalView:
        return cls(
            id=approval.id,
            approver={"id": approval.approver_id, "type": approval.approver_type},
            verdict=str(approval.verdict),
            role=approval.role,
            comment=approval.comment,
            content_hash=approval.content_hash,
            decided_at=approval.decided_at,
            current=approval.content_hash == content_hash,
        )


class DraftView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    state: str
    payload: dict[str, Any]
    rationale: str
    affected_records: list[dict[str, Any]]
    approval_owner: str
    requester: dict[str, str]
    amount: Money | None
    content_hash: str
    version: int
    required: list[dict[str, Any]]
    created_at: str
    updated_at: str
    expires_at: str
    escalation: dict[str, Any] | None
    """``{at, to_role, escalated_at}`` when the policy set an escalation, else null."""
    execution: dict[str, Any] | None
    approvals: list[ApprovalView] | None = None

    @classmethod
    def of(cls, draft: Draft, approvals: list[Approval] | None = None) -> DraftView:
        return cls(
            id=draft.id,
            kind=str(draft.kind),
            state=str(draft.state),
            payload=draft.payload,
            rationale=draft.rationale,
            affected_records=draft.affected_records,
            approval_owner=draft.approval_owner,
            requester={"id": draft.requester_id, "type": draft.requester_type},
            amount=draft.amount,
            content_hash=draft.content_hash,
            version=draft.version,
            required=draft.required,
            created_at=draft.created_at,
            updated_at=draft.updated_at,
            expires_at=draft.expires_at,
            escalation=draft.escalation(),
            execution=draft.execution,
            approvals=None
            if approvals is None
            else [ApprovalView.of(a, draft.content_hash) for a in approvals],
        )


class DecidedDraft(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to every draft action: where the draft stands and the decision that led
    there."""

    draft: DraftView
    decision: DecisionView
    approval: ApprovalView | None = None


class DraftPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DraftView]
    next_cursor: str | None


class PrincipalView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    name: str
    roles: list[str]
    created_at: str


class TokenView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    principal_id: str
    label: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A new token. ``token`` is shown here once and never again."""

    id: str
    token: str
    principal_id: str
    label: str
    scopes: list[str]
    created_at: str


class AuditRecordView(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    hash: str
    signature: str
    key_id: str
    record: dict[str, Any]
    """The signed body; its RFC 8785 encoding hashes to ``hash``."""


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditRecordView]
    next_cursor: str | None
