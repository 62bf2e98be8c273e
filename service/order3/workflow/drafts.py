"""The draft workflow: submit, patch, approve or reject, execute, dismiss and expire.

Each action reads the draft, asks the policy engine for one decision, and commits what the
decision allows together with its audit record. A denial is audited too. When the engine
gives no usable answer the action is refused and the refusal is audited (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.canonical import content_hash
from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.domain.decisions import (
    Action,
    Decision,
    DecisionContext,
    EngineFailure,
    build_input,
    parse_utc,
)
from order3.domain.drafts import (
    Approval,
    Draft,
    DraftContent,
    DraftKind,
    DraftState,
    Verdict,
    content_document,
    ensure_state,
    ensure_transition,
    parse_payload,
)
from order3.domain.errors import Conflict, EngineUnavailable, InvalidInput, NotFound
from order3.domain.identifiers import new_id
from order3.domain.principals import SYSTEM_ACTOR_ID, Actor
from order3.policy.engine import EngineFailed, PolicyEngine
from order3.storage import repositories as repo
from order3.storage.idempotency import IdempotencyClaim
from order3.workflow.draft_context import decision_context
from order3.workflow.execution import REFUSALS, apply_draft, failure_of

log = structlog.get_logger(__name__)

_KNOWN_PRINCIPALS_LIMIT = 100_000


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an action came to: the decision, and the draft as it now stands."""

    decision: Decision
    draft: Draft | None
    approval: Approval | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


Result = tuple[Outcome, list[SealedRecord]]


class DraftPatch(msgspec.Struct, frozen=True, kw_only=True):
    """Content changes; the fields left out keep their values."""

    payload: dict[str, Any] | None = None
    rationale: str | None = None
    affected_records: list[dict[str, Any]] | None = None
    approval_owner: str | None = None


class DraftWorkflow:
    """The draft actions. When a pending draft expires and when it is escalated come from
    the policy's submit and patch decisions only: the service has no lifetime of its own
    to fall back on, so a policy that sets none is an engine failure, never a draft that
    stays open for ever."""

    def __init__(self, db: AsyncEngine, policy: PolicyEngine, appender: AuditAppender) -> None:
        self._db = db
        self._policy = policy
        self._appender = appender
        self._known_principals: set[tuple[str, str]] = set()

    # ---- reads ----------------------------------------------------------------------------

    async def get(self, actor: Actor, draft_id: str) -> tuple[Draft, list[Approval]]:
        async with self._db.connect() as connection:
            return await self._load(connection, actor, draft_id)

    async def list_drafts(self, actor: Actor, **filters: Any) -> list[Draft]:
        async with self._db.connect() as connection:
            return await repo.list_drafts(connection, actor.workspace_id, **filters)

    # ---- actions --------------------------------------------------------------------------

    async def submit(
        self, actor: Actor, content: DraftContent, claim: IdempotencyClaim | None = None
    ) -> Result:
        now = utc_timestamp()
        await self._ensure_principal(actor, content.approval_owner)
        document = content_document(
            content.kind,
            msgspec.to_builtins(content.payload),
            content.rationale,
            msgspec.to_builtins(content.affected_records),
            content.approval_owner,
        )
        draft = Draft(
            id=new_id("drf"),
            workspace_id=actor.workspace_id,
            kind=content.kind,
            state=DraftState.PENDING,
            payload=document["payload"],
            rationale=content.rationale,
            affected_records=document["affected_records"],
            approval_owner=content.approval_owner,
            requester_id=actor.id,
            requester_type=str(actor.type),
            amount=content.amount(),
            content_hash=content_hash(document),
            version=1,
            required=[],
            created_at=now,
            updated_at=now,
            expires_at="",  # the submit decision sets it
        )
        async with self._db.connect() as connection:
            context = await decision_context(connection, Action.SUBMIT, draft, now)
        decision = await self._decide(Action.SUBMIT, actor, draft, [], context, now=now)

        async def store(connection: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            stored = _with_workflow(draft, decision)
            await repo.insert_draft(connection, stored)
            _count_submitted(connection, stored)
            return Outcome(decision=decision, draft=stored), [
                _entry(actor, "draft.submitted", stored.id, decision)
            ]

        return await self._commit(actor, decision, draft.id, store, claim, refused_draft=None)

    async def patch(
        self,
        actor: Actor,
        draft_id: str,
        changes: DraftPatch,
        claim: IdempotencyClaim | None = None,
    ) -> Result:
        now = utc_timestamp()
        async with self._db.connect() as connection:
            current, approvals = await self._load(connection, actor, draft_id)
            ensure_state(current.state, DraftState.PENDING, "patch")
            _ensure_not_expired(current, now)
        if changes.approval_owner is not None:
            await self._ensure_principal(actor, changes.approval_owner)
        patched = _apply_patch(current, changes, now)
        async with self._db.connect() as connection:
            context = await decision_context(
                connection, Action.PATCH, patched, now, replacing=current
            )
        # A patch that leaves the content as it was keeps its approvals.
        binding = patched.binding(approvals)
        decision = await self._decide(Action.PATCH, actor, patched, binding, context, now=now)

        async def store(connection: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            stored = _with_workflow(patched, decision)
            await repo.update_draft(connection, stored, seen_version=current.version)
            if stored.amount != current.amount:
                _count_submitted(connection, current, taken_back=True)
                _count_submitted(connection, stored)
            details = {"previous_content_hash": current.content_hash}
            return Outcome(decision=decision, draft=stored), [
                _entry(actor, "draft.patched", draft_id, decision, details)
            ]

        return await self._commit(actor, decision, draft_id, store, claim, refused_draft=current)

    async def decide_approval(
        self,
        actor: Actor,
        draft_id: str,
        verdict: Verdict,
        role: str | None,
        comment: str | None,
        claim: IdempotencyClaim | None = None,
    ) -> Result:
        now = utc_timestamp()
        action = Action.APPROVE if verdict is Verdict.APPROVE else Action.REJECT
        draft, binding, context = await self._pending_with_context(
            actor, draft_id, action, f"{verdict} a draft", now
        )
        decision = await self._decide(
            action,
            actor,
            draft,
            binding,
            context,
            now=now,
            approval={"verdict": str(verdict), "role": role},
        )

        async def store(connection: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            approval = Approval(
                id=new_id("apv"),
                draft_id=draft.id,
                approver_id=actor.id,
                approver_type=str(actor.type),
                approver_roles=list(actor.roles),
                verdict=verdict,
                role=role,
                comment=comment,
                content_hash=draft.content_hash,
                decided_at=now,
            )
            required = _required(decision)
            if verdict is Verdict.REJECT:
                state = DraftState.REJECTED
            else:
                state = DraftState.PENDING if required else DraftState.APPROVED
            updated = _advance(draft, state, now, required=required)
            await repo.insert_approval(connection, draft.workspace_id, approval)
            await repo.update_draft(connection, updated, seen_version=draft.version)
            details = {
                "verdict": str(verdict),
                "role": role,
                "approval_id": approval.id,
                "state": str(state),
            }
            return Outcome(decision=decision, draft=updated, approval=approval), [
                _entry(actor, "approval.decided", draft.id, decision, details)
            ]

        return await self._commit(actor, decision, draft_id, store, claim, refused_draft=draft)

    async def execute(
        self, actor: Actor, draft_id: str, claim: IdempotencyClaim | None = None
    ) -> Result:
        now = utc_timestamp()
        async with self._db.connect() as connection:
            draft, approvals = await self._load(connection, actor, draft_id)
            ensure_state(draft.state, DraftState.APPROVED, "execute")
            context = await decision_context(connection, Action.EXECUTE, draft, now)
        binding = draft.binding(approvals)
        decision = await self._decide(Action.EXECUTE, actor, draft, binding, context, now=now)

        async def store(connection: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            by = actor.reference()
            execution: dict[str, Any]
            try:
                applied = await apply_draft(connection, actor, draft)
            except REFUSALS as refused:
                failure = failure_of(refused)
                execution = {"failed_at": now, "failed_by": by, "failure": failure}
                state, action, caused = DraftState.EXECUTION_FAILED, "draft.execution_failed", []
                log.warning("draft.execution_failed", draft_id=draft.id, problem=refused.slug)
            else:
                execution = {"executed_at": now, "executed_by": by, "effects": applied.effects}
                state, action, caused = DraftState.EXECUTED, "draft.executed", applied.entries
                _count_executed(connection, draft, now)
            updated = msgspec.structs.replace(_advance(draft, state, now), execution=execution)
            await repo.update_draft(connection, updated, seen_version=draft.version)
            return Outcome(decision=decision, draft=updated), [
                _entry(actor, action, draft.id, decision, {"execution": execution}),
                *caused,
            ]

        return await self._commit(actor, decision, draft_id, store, claim, refused_draft=draft)

    async def dismiss(
        self, actor: Actor, draft_id: str, reason: str, claim: IdempotencyClaim | None = None
    ) -> Result:
        now = utc_timestamp()
        draft, binding, context = await self._pending_with_context(
            actor, draft_id, Action.DISMISS, "dismiss", now
        )
        decision = await self._decide(Action.DISMISS, actor, draft, binding, context, now=now)

        async def store(connection: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            updated = _advance(draft, DraftState.DISMISSED, now)
            await repo.update_draft(connection, updated, seen_version=draft.version)
            return Outcome(decision=decision, draft=updated), [
                _entry(actor, "draft.dismissed", draft.id, decision, {"reason": reason})
            ]

        return await self._commit(actor, decision, draft_id, store, claim, refused_draft=draft)

    async def expire_due(self, limit: int = 500, *, now: str | None = None) -> int:
        """Move pending drafts past their expiry time to ``expired``; return how many.

        Args:
            limit: The most drafts to expire in one call.
            now: The time to expire at (RFC 3339 UTC); the clock when None.
        """
        async with self._db.connect() as connection:
            due = await repo.due_drafts(connection, now or utc_timestamp(), limit)

        def expire(draft: Draft, at: str) -> tuple[Draft, dict[str, Any]]:
            return _advance(draft, DraftState.EXPIRED, at), {"expires_at": draft.expires_at}

        return await self._sweep(due, "draft.expired", expire, now)

    async def escalate_due(self, limit: int = 500, *, now: str | None = None) -> int:
        """Mark pending drafts whose escalation time came as escalated; return how many.

        An escalation changes neither the state nor what is required: the draft stays
        pending, and only the approvals the policy requires can approve it.

        Args:
            limit: The most drafts to escalate in one call.
            now: The time to escalate at (RFC 3339 UTC); the clock when None.
        """
        async with self._db.connect() as connection:
            due = await repo.due_escalations(connection, now or utc_timestamp(), limit)

        def escalate(draft: Draft, at: str) -> tuple[Draft, dict[str, Any]]:
            updated = msgspec.structs.replace(
                draft, version=draft.version + 1, updated_at=at, escalated_at=at
            )
            details = {"to_role": draft.escalate_to, "escalate_at": draft.escalate_at}
            return updated, details

        return await self._sweep(due, "draft.escalated", escalate, now)

    async def _sweep(
        self,
        due: list[Draft],
        action: str,
        change: Callable[[Draft, str], tuple[Draft, dict[str, Any]]],
        now: str | None,
    ) -> int:
        done = 0
        for draft in due:
            updated, details = change(draft, now or utc_timestamp())

            async def store(
                connection: AsyncConnection,
                draft: Draft = draft,
                updated: Draft = updated,
                details: dict[str, Any] = details,
            ) -> tuple[None, list[AuditEntry]]:
                await repo.update_draft(connection, updated, seen_version=draft.version)
                return None, [
                    AuditEntry(
                        workspace_id=draft.workspace_id,
                        actor={"id": SYSTEM_ACTOR_ID, "type": "system"},
                        action=action,
                        subject={"type": "draft", "id": draft.id},
                        details=details,
                    )
                ]

            try:
                await self._appender.commit(store)
            except Exception as exc:  # a draft changed meanwhile; the next sweep looks again
                log.warning(
                    "draft.sweep_skipped", action=action, draft_id=draft.id, error=repr(exc)
                )
                continue
            done += 1
            log.info(action, draft_id=draft.id)
        return done

    # ---- steps shared by the actions ------------------------------------------------------

    async def _load(
        self, connection: AsyncConnection, actor: Actor, draft_id: str
    ) -> tuple[Draft, list[Approval]]:
        found = await repo.load_draft(connection, actor.workspace_id, draft_id)
        if found is None:
            raise NotFound(f"no draft {draft_id} in this workspace", draft_id=draft_id)
        return found

    async def _pending_with_context(
        self, actor: Actor, draft_id: str, action: Action, verb: str, now: str
    ) -> tuple[Draft, list[Approval], DecisionContext]:
        """A pending draft, the approvals bound to its content, and the context of deciding
        ``action`` on it, read on one connection."""
        async with self._db.connect() as connection:
            draft, approvals = await self._load(connection, actor, draft_id)
            ensure_state(draft.state, DraftState.PENDING, verb)
            _ensure_not_expired(draft, now)
            context = await decision_context(connection, action, draft, now)
        return draft, draft.binding(approvals), context

    async def _ensure_principal(self, actor: Actor, principal_id: str) -> None:
        # Principals are never deleted, so one that was found stays valid: remember it.
        known = (actor.workspace_id, principal_id)
        if known in self._known_principals:
            return
        async with self._db.connect() as connection:
            found = await repo.load_principal(connection, actor.workspace_id, principal_id)
        if found is None:
            raise InvalidInput("$.approval_owner", f"no principal {principal_id} in this workspace")
        if len(self._known_principals) >= _KNOWN_PRINCIPALS_LIMIT:
            self._known_principals.clear()
        self._known_principals.add(known)

    async def _decide(
        self,
        action: Action,
        actor: Actor,
        draft: Draft,
        binding: list[Approval],
        context: DecisionContext,
        *,
        now: str,
        approval: dict[str, Any] | None = None,
    ) -> Decision:
        structlog.contextvars.bind_contextvars(draft_id=draft.id)
        decision_input = build_input(
            action,
            draft=_policy_draft(draft),
            actor={
                "id": actor.id,
                "type": str(actor.type),
                "roles": list(actor.roles),
                "scopes": [str(scope) for scope in actor.scopes],
            },
            approvals=[_policy_approval(a) for a in binding],
            approval=approval,
            now=now,
            context=context,
        )
        try:
            decision = await self._policy.decide(action, decision_input)
        except EngineFailed as failed:
            await self._refuse(actor, draft.id, failed.failure)
        problem = decision.result.workflow_problem(action, now)
        if problem is not None:
            failure = EngineFailure(
                action=action,
                input=decision.input,
                reason=f"malformed decision result: {problem}",
                engine=decision.engine,
                policy_revision=decision.policy_revision,
            )
            await self._refuse(actor, draft.id, failure)
        return decision

    async def _refuse(self, actor: Actor, draft_id: str, failure: EngineFailure) -> NoReturn:
        """Record that the engine gave no usable decision, and refuse the action.

        Raises:
            EngineUnavailable: always, naming the audit record.
        """
        records = await self._appender.record(
            [
                AuditEntry(
                    workspace_id=actor.workspace_id,
                    actor=actor.reference(),
                    action="engine.failed",
                    subject={"type": "draft", "id": draft_id},
                    outcome="error",
                    decision=failure.audit_view(),
                    details={"action": str(failure.action)},
                )
            ]
        )
        raise EngineUnavailable(
            "the policy engine gave no usable decision, so the action was refused; "
            "retry later with the same Idempotency-Key",
            audit_seq=records[0].seq,
        ) from None

    async def _commit(
        self,
        actor: Actor,
        decision: Decision,
        draft_id: str,
        store: Callable[[AsyncConnection], Awaitable[tuple[Outcome, list[AuditEntry]]]],
        claim: IdempotencyClaim | None,
        *,
        refused_draft: Draft | None,
    ) -> Result:
        if decision.allowed:
            return await self._appender.commit(store, claim=claim)

        async def refuse(_: AsyncConnection) -> tuple[Outcome, list[AuditEntry]]:
            details = {"action": str(decision.action)}
            return Outcome(decision=decision, draft=refused_draft), [
                _entry(actor, "decision.refused", draft_id, decision, details)
            ]

        return await self._appender.commit(refuse, claim=claim)


def _with_workflow(draft: Draft, decision: Decision) -> Draft:
    """The draft with what an allowed submit or patch decided: the approvals required,
    when it expires and when it is escalated. A draft already escalated stays so unless
    the escalation itself changed."""
    result = decision.result
    assert result.expires_at is not None  # checked when the decision was made
    escalate_at = escalate_to = escalated_at = None
    if result.escalation is not None:
        escalate_at = utc_timestamp(parse_utc(result.escalation.at, "escalation.at"))
        escalate_to = result.escalation.to_role
        if (escalate_at, escalate_to) == (draft.escalate_at, draft.escalate_to):
            escalated_at = draft.escalated_at
    return msgspec.structs.replace(
        draft,
        required=_required(decision),
        expires_at=utc_timestamp(parse_utc(result.expires_at, "expires_at")),
        escalate_at=escalate_at,
        escalate_to=escalate_to,
        escalated_at=escalated_at,
    )


def _ensure_not_expired(draft: Draft, now: str) -> None:
    # The sweep marks expired drafts a little later; until then they still refuse action.
    if draft.expires_at <= now:
        raise Conflict(f"the draft expired at {draft.expires_at}", state="expired")


def _required(decision: Decision) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(r) for r in decision.result.required]


def _advance(
    draft: Draft, state: DraftState, now: str, *, required: list[dict[str, Any]] | None = None
) -> Draft:
    if state is not draft.state:
        ensure_transition(draft.state, state)
    if required is None:
        # Nothing is required of a draft that can no longer be approved.
        required = draft.required if state is DraftState.PENDING else []
    return msgspec.structs.replace(
        draft, state=state, version=draft.version + 1, updated_at=now, required=required
    )


def _apply_patch(current: Draft, changes: DraftPatch, now: str) -> Draft:
    payload = current.payload
    if changes.payload is not None:
        payload = msgspec.to_builtins(parse_payload(current.kind, changes.payload))
    rationale = current.rationale if changes.rationale is None else changes.rationale
    records = (
        current.affected_records if changes.affected_records is None else changes.affected_records
    )
    owner = current.approval_owner if changes.approval_owner is None else changes.approval_owner
    document = content_document(current.kind, payload, rationale, records, owner)
    amount = parse_payload(current.kind, payload).amount()
    return msgspec.structs.replace(
        current,
        payload=payload,
        rationale=rationale,
        affected_records=records,
        approval_owner=owner,
        amount=amount,
        content_hash=content_hash(document),
        version=current.version + 1,
        updated_at=now,
    )


def _policy_draft(draft: Draft) -> dict[str, Any]:
    return {
        "id": draft.id,
        "workspace_id": draft.workspace_id,
        "kind": str(draft.kind),
        "state": str(draft.state),
        "content_hash": draft.content_hash,
        "requester": {"id": draft.requester_id, "type": draft.requester_type},
        "approval_owner": draft.approval_owner,
        "amount": None if draft.amount is None else msgspec.to_builtins(draft.amount),
        "payload": draft.payload,
        "rationale": draft.rationale,
        "affected_records": draft.affected_records,
        "created_at": draft.created_at,
    }


def _policy_approval(approval: Approval) -> dict[str, Any]:
    return {
        "approver": {
            "id": approval.approver_id,
            "type": approval.approver_type,
            "roles": approval.approver_roles,
        },
        "verdict": str(approval.verdict),
        "role": approval.role,
        "content_hash": approval.content_hash,
        "decided_at": approval.decided_at,
    }


def _entry(
    actor: Actor,
    action: str,
    draft_id: str,
    decision: Decision,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry(
        workspace_id=actor.workspace_id,
        actor=actor.reference(),
        action=action,
        subject={"type": "draft", "id": draft_id},
        outcome=decision.result.outcome,
        decision=decision.audit_view(),
        details=details or {},
    )


def _count_submitted(
    connection: AsyncConnection, draft: Draft, *, taken_back: bool = False
) -> None:
    """Count a submitted draft's amount in its requester's total for the day it was
    submitted, or take it back when a patch replaces it."""
    if draft.amount is None:
        return
    minor_units = draft.amount.minor_units
    repo.add_to_spend_total(
        connection,
        draft.workspace_id,
        measure=repo.SUBMITTED_BY_REQUESTER,
        subject_id=draft.requester_id,
        period=draft.created_at[:10],
        minor_units=-minor_units if taken_back else minor_units,
        currency=str(draft.amount.currency),
    )


def _count_executed(connection: AsyncConnection, draft: Draft, now: str) -> None:
    """Count an executed purchase order in its location's total for the month of ``now``."""
    if draft.kind is not DraftKind.PURCHASE_ORDER or draft.amount is None:
        return
    repo.add_to_spend_total(
        connection,
        draft.workspace_id,
        measure=repo.EXECUTED_AT_LOCATION,
        subject_id=str(draft.payload["location_id"]),
        period=now[:7],
        minor_units=draft.amount.minor_units,
        currency=str(draft.amount.currency),
    )
