"""``/v1/drafts``: submit, read, patch, approve or reject, execute and dismiss drafts."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, QueryParameter

from order3.audit.records import SealedRecord
from order3.domain.drafts import DraftContent, DraftKind, DraftState, parse_payload
from order3.domain.errors import InvalidInput
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.problems import problem_body
from order3.http.requests import answer, decode, json_response, not_blank, services_of
from order3.http.schemas import (
    ApprovalRequest,
    ApprovalView,
    DecidedDraft,
    DecisionView,
    DismissRequest,
    DraftCreate,
    DraftPage,
    DraftPatchRequest,
    DraftView,
)
from order3.workflow.drafts import DraftPatch, Outcome

AuthedRequest = Request[Actor, Any, Any]


def render_outcome(
    outcome: Outcome,
    records: list[SealedRecord],
    *,
    created: bool = False,
) -> tuple[int, bytes]:
    """An allowed action answers with the draft and its decision; a denied one with a 403
    problem that carries the policy's reasons and what is still required; an execution the
    inventory refused with a 409 problem that carries the failed draft and the decision."""
    decision = DecisionView.of(outcome.decision, records)
    if not outcome.allowed:
        rules = ", ".join(reason.rule for reason in decision.reasons)
        return 403, problem_body(
            403,
            "policy-denied",
            "Denied by policy",
            f"the policy denied `{decision.action}` ({rules})",
            decision=msgspec.to_builtins(decision),
        )
    assert outcome.draft is not None  # an allowed action always leaves a draft behind
    if outcome.draft.state is DraftState.EXECUTION_FAILED:
        assert outcome.draft.execution is not None  # it holds the failure
        failure = outcome.draft.execution["failure"]
        return 409, problem_body(
            409,
            "execution-failed",
            "Execution failed",
            f"the policy allowed `execute` but the inventory refused it: {failure['detail']}",
            draft=msgspec.to_builtins(DraftView.of(outcome.draft)),
            decision=msgspec.to_builtins(decision),
        )
    approval = None
    if outcome.approval is not None:
        approval = ApprovalView.of(outcome.approval, outcome.draft.content_hash)
    body = DecidedDraft(draft=DraftView.of(outcome.draft), decision=decision, approval=approval)
    return (201 if created else 200), msgspec.json.encode(body)


def _render_created(outcome: Outcome, records: list[SealedRecord]) -> tuple[int, bytes]:
    return render_outcome(outcome, records, created=True)


def _cursor_of(draft_id: str) -> str:
    return base64.urlsafe_b64encode(draft_id.encode()).decode().rstrip("=")


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        draft_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        draft_id = ""
    if not draft_id.startswith("drf_"):
        raise InvalidInput("cursor", "not a cursor this API gave out")
    return draft_id


class DraftController(Controller):
    path = "/v1/drafts"
    tags = ["drafts"]

    @post("/", guards=[requires(Scope.DRAFT)], status_code=201)
    async def submit(self, request: AuthedRequest) -> Response[bytes]:
        """Submit a draft. Needs an ``Idempotency-Key``: an agent's retry never doubles work."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            create = decode(body, DraftCreate)
            content = DraftContent(
                kind=create.kind,
                payload=parse_payload(create.kind, create.payload),
                rationale=not_blank(create.rationale, "$.rationale"),
                affected_records=create.affected_records,
                approval_owner=create.approval_owner,
            )
            return await services.drafts.submit(request.user, content, claim)

        return await answer(request, _render_created, act, key_required=True)

    @get("/", guards=[requires(Scope.READ)])
    async def list_drafts(
        self,
        request: AuthedRequest,
        draft_state: Annotated[DraftState | None, QueryParameter(name="state")] = None,
        kind: FromQuery[DraftKind | None] = None,
        owner: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> Response[bytes]:
        """Drafts of this workspace, oldest first; follow ``next_cursor`` for the next page."""
        drafts = await services_of(request).drafts.list_drafts(
            request.user,
            state=draft_state,
            kind=kind,
            owner=owner,
            after=_after(cursor),
            limit=limit + 1,
        )
        page = drafts[:limit]
        next_cursor = _cursor_of(page[-1].id) if len(drafts) > limit else None
        body = DraftPage(items=[DraftView.of(d) for d in page], next_cursor=next_cursor)
        return json_response(200, msgspec.json.encode(body))

    @get("/{draft_id:str}", guards=[requires(Scope.READ)])
    async def read(self, request: AuthedRequest, draft_id: FromPath[str]) -> Response[bytes]:
        """One draft with every approval it was given, current or dropped by a patch."""
        draft, approvals = await services_of(request).drafts.get(request.user, draft_id)
        return json_response(200, msgspec.json.encode(DraftView.of(draft, approvals)))

    @patch("/{draft_id:str}", guards=[requires(Scope.DRAFT)])
    async def patch_draft(self, request: AuthedRequest, draft_id: FromPath[str]) -> Response[bytes]:
        """Change a pending draft's content; every approval given so far drops."""
        services = services_of(request)
        changes = decode(await request.body(), DraftPatchRequest)
        if changes.rationale is not None:
            not_blank(changes.rationale, "$.rationale")
        if changes == DraftPatchRequest():
            raise InvalidInput("$", "name at least one field to change")
        patch_ = DraftPatch(
            payload=changes.payload,
            rationale=changes.rationale,
            affected_records=None
            if changes.affected_records is None
            else msgspec.to_builtins(changes.affected_records),
            approval_owner=changes.approval_owner,
        )
        outcome, records = await services.drafts.patch(request.user, draft_id, patch_)
        return json_response(*render_outcome(outcome, records))

    @post("/{draft_id:str}/approvals", guards=[requires(Scope.APPROVE)], status_code=200)
    async def decide_approval(
        self, request: AuthedRequest, draft_id: FromPath[str]
    ) -> Response[bytes]:
        """Approve (in a named role) or reject a pending draft."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, ApprovalRequest)
            return await services.drafts.decide_approval(
                request.user, draft_id, ask.verdict, ask.role, ask.comment, claim
            )

        return await answer(request, render_outcome, act)

    @post("/{draft_id:str}/execute", guards=[requires(Scope.EXECUTE)], status_code=200)
    async def execute(self, request: AuthedRequest, draft_id: FromPath[str]) -> Response[bytes]:
        """Execute an approved draft, deciding again under the policy in force now."""
        services = services_of(request)

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            return await services.drafts.execute(request.user, draft_id, claim)

        return await answer(request, render_outcome, act)

    @post("/{draft_id:str}/dismiss", guards=[requires(Scope.DRAFT)], status_code=200)
    async def dismiss(self, request: AuthedRequest, draft_id: FromPath[str]) -> Response[bytes]:
        """Dismiss a pending draft, with a reason."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, DismissRequest)
            reason = not_blank(ask.reason, "$.reason")
            return await services.drafts.dismiss(request.user, draft_id, reason, claim)

        return await answer(request, render_outcome, act)
