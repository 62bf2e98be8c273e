"""The service's decision core alone, as a yardstick for the decisions benchmark.

``POST /decide`` with ``{"input": <decision input>}`` does what every decision the service
makes must do, and nothing else: the service's own `PolicyEngine` asks OPA, and its own
`AuditAppender` seals, signs and commits one ``benchmark.decided`` record to the chain.
There are no tokens, drafts, approvals, idempotency keys or context reads: those belong to
the draft workflow, and the benchmark prints the two side by side so that the workflow's own
cost shows.

It reads the service's settings from the same ``ORDER3_*`` environment, so it shares the
service's database, signing key and OPA, and `order3 audit verify` checks its records too.

    ORDER3_... python -m uvicorn decision_core:create_app --factory --app-dir benchmarks --port N
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, get, post

from order3.audit.records import AuditEntry
from order3.config import Settings
from order3.domain.decisions import Action
from order3.http.app import services_lifespan
from order3.logging import configure_logging
from order3.policy.engine import EngineFailed
from order3.runtime import Services

ACTOR = {"type": "integration", "id": "benchmark"}


class Ask(msgspec.Struct, frozen=True):
    input: dict[str, Any]


@post("/decide", status_code=200)
async def decide(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    ask = msgspec.json.decode(await request.body(), type=Ask)
    action = Action(ask.input["action"])
    try:
        decision = await services.policy.decide(action, ask.input)
    except EngineFailed as failed:
        return {"outcome": "error", "reason": failed.failure.reason}
    entry = AuditEntry(
        workspace_id=None,
        actor=ACTOR,
        action="benchmark.decided",
        subject={"type": "decision", "id": decision.id},
        outcome=decision.result.outcome,
        decision=decision.audit_view(),
    )
    [record] = await services.appender.record([entry])
    return {"outcome": decision.result.outcome, "seq": record.seq}


@get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> Litestar:
    """The decision core, configured from ``settings`` (or the environment)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return Litestar([decide, health], lifespan=[services_lifespan(settings)], logging_config=None)
