"""``/v1/exceptions``: what detection found, with its evidence; dismiss one, or start the
draft that resolves it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from order3.audit.records import SealedRecord
from order3.domain.drafts import Identifier
from order3.domain.errors import Forbidden
from order3.domain.exceptions import ExceptionKind, ExceptionRecord, ExceptionState
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.drafts import render_outcome
from order3.http.inventory import Limit, after_of, cursor_of, enum_of
from order3.http.requests import answer, decode, json_response, not_blank, services_of
from order3.runtime import Services
from order3.workflow.exceptions import Detection, Drafted, DraftRequest, ExceptionWorkflow

AuthedRequest = Request[Actor, Any, Any]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class DismissExceptionRequest(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    reason: Reason


class DraftExceptionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    approval_owner: Identifier
    supplier_id: Identifier | None = None
    location_id: Identifier | None = None


def workflow(services: Services) -> ExceptionWorkflow:
    return ExceptionWorkflow(services.reads, services.appender, services.drafts, services.settings)


def _seq(records: list[SealedRecord]) -> list[int]:
    return [record.seq for record in records]


def _render_detection(detection: Detection, records: list[SealedRecord]) -> tuple[int, bytes]:
    body = {"opened": detection.opened, "resolved": detection.resolved, "audit_seqs": _seq(records)}
    return 200, msgspec.json.encode(body)


def _render_dismissed(record: ExceptionRecord, records: list[SealedRecord]) -> tuple[int, bytes]:
    return 200, msgspec.json.encode({"exception": record, "audit_seqs": _seq(records)})


def _render_drafted(drafted: Drafted, records: list[SealedRecord]) -> tuple[int, bytes]:
    status, body = render_outcome(drafted.outcome, drafted.submit_records, created=True)
    if status >= 400:
        return status, body
    answer_body = msgspec.json.decode(body)
    answer_body["exception"] = msgspec.to_builtins(drafted.exception)
    answer_body["exception_audit_seqs"] = _seq(records)
    return status, msgspec.json.encode(answer_body)


class ExceptionController(Controller):
    path = "/v1/exceptions"
    tags = ["exceptions"]

    @get("/", guards=[requires(Scope.READ)])
    async def list_exceptions(
        self,
        request: AuthedRequest,
        kind: FromQuery[str | None] = None,
        record_state: Annotated[str | None, QueryParameter(name="state")] = None,
        sku: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Exceptions, oldest first; follow ``next_cursor`` for the next page."""
        filters = {
            "kind": enum_of(ExceptionKind, kind, "kind"),
            "state": enum_of(ExceptionState, record_state, "state"),
            "sku": sku,
            "location_id": location,
        }
        after = after_of("exceptions", cursor)
        found = await workflow(services_of(request)).list_exceptions(
            request.user, filters, None if after is None else after[0], limit + 1
        )
        items = found[:limit]
        next_cursor = cursor_of("exceptions", [items[-1].id]) if len(found) > limit else None
        return json_response(200, msgspec.json.encode({"items": items, "next_cursor": next_cursor}))

    @get("/{exception_id:str}", guards=[requires(Scope.READ)])
    async def read(self, request: AuthedRequest, exception_id: FromPath[str]) -> Response[bytes]:
        """One exception with all its evidence."""
        record = await workflow(services_of(request)).get(request.user, exception_id)
        return json_response(200, msgspec.json.encode(record))

    @post("/detect", status_code=200)
    async def detect(self, request: AuthedRequest) -> Response[bytes]:
        """Run detection in this workspace now (scope ``draft`` or ``admin``)."""
        if not {Scope.DRAFT, Scope.ADMIN} & set(request.user.scopes):
            raise Forbidden("this token lacks the `draft` or `admin` scope", required_scope="draft")
        services = services_of(request)

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            return await workflow(services).detect(request.user, claim)

        return await answer(request, _render_detection, act)

    @post("/{exception_id:str}/dismiss", guards=[requires(Scope.DRAFT)], status_code=200)
    async def dismiss(self, request: AuthedRequest, exception_id: FromPath[str]) -> Response[bytes]:
        """Dismiss an open exception, with a reason."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, DismissExceptionRequest)
            reason = not_blank(ask.reason, "$.reason")
            return await workflow(services).dismiss(request.user, exception_id, reason, claim)

        return await answer(request, _render_dismissed, act)

    @post("/{exception_id:str}/draft", guards=[requires(Scope.DRAFT)], status_code=201)
    async def start_draft(
        self, request: AuthedRequest, exception_id: FromPath[str]
    ) -> Response[bytes]:
        """Submit the draft that resolves an open exception; the policy decides it."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, DraftExceptionRequest)
            wanted = DraftRequest(
                approval_owner=ask.approval_owner,
                supplier_id=ask.supplier_id,
                location_id=ask.location_id,
            )
            return await workflow(services).start_draft(request.user, exception_id, wanted, claim)

        return await answer(request, _render_drafted, act, key_required=True)
