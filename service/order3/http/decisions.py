"""``/v1/decisions``: one policy decision, whole (its input, its result and its record), and
explained in words, rule by rule, from the revision that decided it."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from order3.domain.errors import NotFound
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import json_response, services_of
from order3.policy.annotations import Annotation, read_annotations
from order3.policy.explanations import Explanation, explain
from order3.storage.repositories import AnyRow, load_decision_record
from order3.storage.revisions import load_revisions

AuthedRequest = Request[Actor, Any, Any]


class DecisionController(Controller):
    path = "/v1/decisions"
    tags = ["audit"]

    @get("/{decision_id:str}", guards=[requires(Scope.READ)])
    async def show(self, request: AuthedRequest, decision_id: FromPath[str]) -> Response[bytes]:
        """The decision as its audit record holds it, with the record that signs it."""
        row = await _decision_row(request, decision_id)
        body = json.loads(row.body)
        decision = body["decision"]
        view = {
            "id": decision_id,
            "action": body["action"],
            "outcome": body["outcome"],
            "actor": body["actor"],
            "subject": body["subject"],
            "decided_at": body["recorded_at"],
            "input": decision["input"],
            "result": decision["result"],
            "rules": decision["rules"],
            "masked": decision.get("masked", []),
            "masked_result": decision.get("masked_result", []),
            "engine": decision["engine"],
            "policy_revision": decision["policy_revision"],
            "opa_decision_id": decision["decision_id"],
            "failure": decision.get("failure"),
            "record": {
                "seq": row.seq,
                "hash": row.hash,
                "signature": row.signature,
                "key_id": row.key_id,
                "body": row.body,
            },
        }
        return json_response(200, msgspec.json.encode(view))

    @get("/{decision_id:str}/explain", guards=[requires(Scope.READ)])
    async def explain(self, request: AuthedRequest, decision_id: FromPath[str]) -> Response[bytes]:
        """Why the decision came out as it did: each rule that decided with its title, the
        values it compared and a sentence for people, and what is still required."""
        row = await _decision_row(request, decision_id)
        body = json.loads(row.body)
        decision = body["decision"]
        revision = decision["policy_revision"]
        if decision["result"] is None:
            explained = Explanation(
                outcome=body["outcome"],
                summary=f"Refused: the policy engine gave no usable answer: {decision['failure']}.",
                rules=[],
                required=[],
            )
        else:
            annotations = await _annotations(request, revision)
            explained = explain(decision["result"], annotations)
        view = {
            "id": decision_id,
            "action": decision["input"].get("action"),
            "actor": body["actor"],
            "subject": body["subject"],
            "decided_at": body["recorded_at"],
            "policy_revision": revision,
            "audit_seq": row.seq,
            "audit_action": body["action"],
            **msgspec.to_builtins(explained),
        }
        return json_response(200, msgspec.json.encode(view))


async def _decision_row(request: AuthedRequest, decision_id: str) -> AnyRow:
    async with services_of(request).reads.connect() as connection:
        row = await load_decision_record(connection, request.user.workspace_id, decision_id)
    if row is None:
        raise NotFound(f"no decision {decision_id} in this workspace", id=decision_id)
    return row


async def _annotations(request: AuthedRequest, revision: str | None) -> list[Annotation]:
    """The rule annotations of a stored revision; none when it is not stored."""
    stored = await load_revisions(services_of(request).reads, [revision] if revision else [])
    if revision not in stored:
        return []
    return read_annotations(stored[revision].verified().modules)
