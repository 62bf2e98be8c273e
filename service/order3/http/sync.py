"""``/v1/sync/{records}``: an integration's batch of upserts, applied without overwriting a
change it has not seen (see ``order3.workflow.sync``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import FromPath

from order3.audit.records import SealedRecord
from order3.domain.errors import NotFound
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import answer, decode, services_of
from order3.workflow.sync import SyncBatch, SyncedType, SyncResult, SyncWorkflow

AuthedRequest = Request[Actor, Any, Any]


def _render(result: SyncResult, records: list[SealedRecord]) -> tuple[int, bytes]:
    body = {**msgspec.to_builtins(result), "audit_seq": records[0].seq if records else None}
    return 200, msgspec.json.encode(body)


class SyncController(Controller):
    path = "/v1/sync"
    tags = ["sync"]

    @post("/{records:str}", guards=[requires(Scope.SYNC)], status_code=200)
    async def sync(self, request: AuthedRequest, records: FromPath[str]) -> Response[bytes]:
        """Apply a batch of upserts. Needs an ``Idempotency-Key``: a retried batch replays its
        first answer instead of running again."""
        if records not in {str(kind) for kind in SyncedType}:
            known = ", ".join(str(kind) for kind in SyncedType)
            raise NotFound(f"nothing syncs as `{records}`; one of: {known}")
        kind = SyncedType(records)
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            batch = decode(body, SyncBatch)
            return await SyncWorkflow(services.appender).sync(request.user, kind, batch, claim)

        return await answer(request, _render, act, key_required=True)
