"""``/v1/audit``: the decision log, filtered, in sequence order."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from order3.audit.checkpoints import Checkpoint
from order3.audit.records import utc_timestamp
from order3.domain.errors import InvalidInput, NotFound
from order3.domain.principals import Actor, PrincipalType, Scope
from order3.http.auth import requires
from order3.http.requests import json_response, services_of
from order3.http.schemas import AuditPage, AuditRecordView
from order3.storage.repositories import AUDIT_GROUPS, AuditFilter, count_audit, query_audit
from order3.workflow.audit_export import ExportFormat, export_chunks

log = structlog.get_logger(__name__)


def _instant(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"`{value}` is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "give a time zone offset; times are compared in UTC")
    return utc_timestamp(moment.astimezone(UTC))


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise InvalidInput("cursor", "not a cursor this API gave out")
    return int(cursor)


async def audit_filter(
    request: Request[Actor, Any, Any],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    principal_type: FromQuery[PrincipalType | None] = None,
    draft: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    outcome: FromQuery[str | None] = None,
    rule: FromQuery[str | None] = None,
    policy_revision: FromQuery[str | None] = None,
    decision: FromQuery[str | None] = None,
) -> AuditFilter:
    """The record filters every audit query takes: ``since`` inclusive, ``until`` exclusive."""
    return AuditFilter(
        workspace_id=request.user.workspace_id,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
        actor=actor,
        principal_type=None if principal_type is None else str(principal_type),
        draft=draft,
        action=action,
        outcome=outcome,
        rule=rule,
        policy_revision=policy_revision,
        decision=decision,
    )


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]
    dependencies = {"where": Provide(audit_filter)}

    @get("/", guards=[requires(Scope.READ)])
    async def search(
        self,
        request: Request[Actor, Any, Any],
        where: NamedDependency[AuditFilter],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> Response[bytes]:
        """Records of this workspace that match every filter given, in sequence order."""
        async with services_of(request).reads.connect() as connection:
            rows = await query_audit(connection, where, after=_after(cursor), limit=limit + 1)
        page = rows[:limit]
        items = [
            AuditRecordView(
                seq=row.seq,
                hash=row.hash,
                signature=row.signature,
                key_id=row.key_id,
                record=json.loads(row.body),
            )
            for row in page
        ]
        next_cursor = str(page[-1].seq) if len(rows) > limit else None
        return json_response(
            200, msgspec.json.encode(AuditPage(items=items, next_cursor=next_cursor))
        )

    @get("/counts", guards=[requires(Scope.READ)])
    async def counts(
        self,
        request: Request[Actor, Any, Any],
        where: NamedDependency[AuditFilter],
        group_by: Annotated[list[str], QueryParameter(min_items=1)],
    ) -> Response[bytes]:
        """How many matching records there are per outcome, rule, day, action, principal
        type or policy revision (``group_by`` repeats to cross them), most first."""
        for name in group_by:
            if name not in AUDIT_GROUPS:
                raise InvalidInput("group_by", f"`{name}` is not one of {', '.join(AUDIT_GROUPS)}")
        group_by = list(dict.fromkeys(group_by))
        async with services_of(request).reads.connect() as connection:
            groups = await count_audit(connection, where, group_by)
        body = {
            "group_by": group_by,
            "total": sum(count for _, count in groups),
            "groups": [{**keys, "count": count} for keys, count in groups],
        }
        return json_response(200, msgspec.json.encode(body))

    @get("/export", guards=[requires(Scope.EXPORT)])
    async def export(
        self,
        request: Request[Actor, Any, Any],
        where: NamedDependency[AuditFilter],
        fmt: Annotated[ExportFormat, QueryParameter(name="format")] = ExportFormat.JSONL,
    ) -> Stream:
        """This workspace's matching records, streamed as JSON Lines (each with its inclusion
        proof, after the checkpoint it verifies against) or as CSV."""
        services = services_of(request)
        checkpoint = await services.audit_log.latest()
        if checkpoint is None or checkpoint.tree_size < await services.audit_log.size():
            checkpoint = await services.audit_log.sign_checkpoint()

        async def content() -> AsyncIterator[bytes]:
            async for chunk in export_chunks(
                services.audit_log, services.reads, checkpoint, where, fmt
            ):
                yield chunk.data

        log.info("audit.exported", tree_size=checkpoint.tree_size, format=str(fmt))
        filename = f"audit-{checkpoint.tree_size}.{fmt.value}"
        return Stream(
            content(),
            media_type=fmt.media_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @get("/checkpoint", guards=[requires(Scope.READ)])
    async def checkpoint(self, request: Request[Actor, Any, Any]) -> Response[bytes]:
        """The newest signed checkpoint: a C2SP tlog-checkpoint note over the whole log."""
        latest = await services_of(request).audit_log.latest()
        if latest is None:
            raise NotFound("no checkpoint has been signed yet")
        return json_response(200, msgspec.json.encode(checkpoint_view(latest)))

    @get("/checkpoints", guards=[requires(Scope.READ)])
    async def list_checkpoints(
        self,
        request: Request[Actor, Any, Any],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> Response[bytes]:
        """Signed checkpoints, largest tree first; ``cursor`` pages to smaller ones."""
        found = await services_of(request).audit_log.checkpoints(
            limit=limit + 1, below=_after(cursor)
        )
        page = found[:limit]
        next_cursor = str(page[-1].tree_size) if len(found) > limit else None
        body = {"items": [checkpoint_view(c) for c in page], "next_cursor": next_cursor}
        return json_response(200, msgspec.json.encode(body))

    @post("/checkpoints", guards=[requires(Scope.ADMIN)], status_code=201)
    async def sign_checkpoint(self, request: Request[Actor, Any, Any]) -> Response[bytes]:
        """Sign a checkpoint of the log as it is now."""
        signed = await services_of(request).audit_log.sign_checkpoint()
        return json_response(201, msgspec.json.encode(checkpoint_view(signed)))

    @get("/records/{seq:int}/proof", guards=[requires(Scope.READ)])
    async def inclusion_proof(
        self,
        request: Request[Actor, Any, Any],
        seq: FromPath[int],
        size: FromQuery[int | None] = None,
    ) -> Response[bytes]:
        """The RFC 9162 inclusion proof of a record in the log of ``size`` (default: now)."""
        proof = await services_of(request).audit_log.inclusion(request.user.workspace_id, seq, size)
        return json_response(200, msgspec.json.encode(proof))

    @get("/consistency", guards=[requires(Scope.READ)])
    async def consistency_proof(
        self,
        request: Request[Actor, Any, Any],
        old_size: Annotated[int, QueryParameter(name="from")],
        new_size: Annotated[int, QueryParameter(name="to")],
    ) -> Response[bytes]:
        """The RFC 9162 consistency proof that the log at ``to`` extends the log at ``from``."""
        proof = await services_of(request).audit_log.consistency(old_size, new_size)
        return json_response(200, msgspec.json.encode(proof))


def checkpoint_view(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as served: its note carries the witnesses' cosignature lines too."""
    return {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.tree_size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
        "key_id": checkpoint.key_id,
        "created_at": checkpoint.created_at,
        "note": checkpoint.cosigned_note,
        "cosignatures": checkpoint.cosignatures,
    }
