"""``/v1/audit``: the decision log, filtered, in sequence order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from order3.audit.records import utc_timestamp
from order3.domain.errors import InvalidInput
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import json_response, services_of
from order3.http.schemas import AuditPage, AuditRecordView
from order3.storage.repositories import AuditFilter, query_audit


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


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get("/", guards=[requires(Scope.READ)])
    async def search(
        self,
        request: Request[Actor, Any, Any],
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        draft: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        outcome: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> Response[bytes]:
        """Records of this workspace: ``since`` inclusive, ``until`` exclusive."""
        where = AuditFilter(
            workspace_id=request.user.workspace_id,
            since=_instant(since, "since"),
            until=_instant(until, "until"),
            actor=actor,
            draft=draft,
            action=action,
            outcome=outcome,
        )
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
