"""``POST /v1/policies/replay``: how a candidate policy set would have decided this
workspace's recorded decisions."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, post

from order3.domain.errors import EngineUnavailable, InvalidInput
from order3.domain.principals import Actor, Scope
from order3.http.audit import _instant
from order3.http.auth import requires
from order3.http.requests import decode, json_response, services_of
from order3.policy.binary import OpaUnavailable, ensure_opa
from order3.policy.replay import (
    Candidate,
    CandidateInvalid,
    check_candidate,
    evaluate_batch,
    recorded_cases,
    replay,
    replay_entry,
    valid_module_name,
)
from order3.runtime import Services
from order3.storage.repositories import AuditFilter
from order3.storage.revisions import load_revisions

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
"""Larger bodies are refused with 413 before they are read."""
MAX_MODULES = 200


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    modules: Annotated[dict[str, str], msgspec.Meta(min_length=1, max_length=MAX_MODULES)]
    """Module sources by file name, such as ``order3/decision.rego``."""
    data: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    """The policy data, served as ``data.settings``; the data in force when left out."""
    since: str | None = None
    until: str | None = None


class PolicyReplayController(Controller):
    path = "/v1/policies"
    tags = ["policies"]

    @post(
        "/replay",
        guards=[requires(Scope.ADMIN)],
        status_code=200,
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def replay(self, request: Request[Actor, Any, Any]) -> Response[bytes]:
        """Replay this workspace's recorded decisions under the candidate modules and data;
        answer with every decision that would change, grouped by rule, and the counts."""
        body = decode(await request.body(), ReplayRequest)
        for name in body.modules:
            if not valid_module_name(name):
                raise InvalidInput(_module_field(name), "not a relative path ending in .rego")
        where = AuditFilter(
            workspace_id=request.user.workspace_id,
            since=_instant(body.since, "$.since"),
            until=_instant(body.until, "$.until"),
        )
        services = services_of(request)
        data = await _data_in_force(services) if body.data is msgspec.UNSET else body.data
        candidate = Candidate(modules=body.modules, data=data)
        try:
            opa = ensure_opa(build=False)
        except OpaUnavailable:
            raise EngineUnavailable("no opa binary to replay with on this server") from None

        with tempfile.TemporaryDirectory(prefix="order3-replay-") as workdir:
            folder = candidate.write(Path(workdir))
            try:
                await check_candidate(opa, folder)
            except CandidateInvalid as exc:
                raise _invalid(exc) from None
            report = await replay(
                recorded_cases(services.reads, where),
                functools.partial(evaluate_batch, opa, folder),
                candidate.revision(),
            )

        filters = {"since": where.since, "until": where.until}
        entry = replay_entry(
            report,
            workspace_id=request.user.workspace_id,
            actor=request.user.reference(),
            filters=filters,
            source="audit_log",
        )
        [record] = await services.appender.record([entry])
        log.info(
            "policy.replayed",
            candidate=report.candidate,
            replayed=report.counts.replayed,
            changed=sum(len(group.decisions) for group in report.changes),
            failed=report.counts.failed,
        )
        answer = {**msgspec.to_builtins(report), "filters": filters, "audit_seq": record.seq}

        return json_response(200, msgspec.json.encode(answer))


async def _data_in_force(services: Services) -> Any:
    """The policy data of the revision deciding now, as the service stored it."""
    revision = services.policy.revision
    stored = (await load_revisions(services.reads, [revision])).get(revision) if revision else None
    if stored is None:
        raise EngineUnavailable("the policy data in force is not known yet; send `data`")
    try:
        return stored.verified().data
    except ValueError:
        raise EngineUnavailable("the stored policy revision in force is damaged") from None


def _invalid(exc: CandidateInvalid) -> InvalidInput:
    first = exc.problems[0]
    invalid = InvalidInput(_module_field(first.module), first.message)
    invalid.extensions["errors"] = [
        {"field": _module_field(p.module), "message": p.message} for p in exc.problems
    ]
    return invalid


def _module_field(name: str | None) -> str:
    return "$.modules" if name is None else f"$.modules[{json.dumps(name)}]"
