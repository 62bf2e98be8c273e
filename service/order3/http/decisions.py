"""``/v1/decisions``: one policy decision, whole: its input, its result and its record."""

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
from order3.storage.repositories import load_decision_record


class DecisionController(Controller):
    path = "/v1/decisions"
    tags = ["audit"]

    @get("/{decision_id:str}", guards=[requires(Scope.READ)])
    async def show(
        self, request: Request[Actor, Any, Any], decision_id: FromPath[str]
    ) -> Response[bytes]:
        """The decision as its audit record holds it, with the record that signs it."""
        async with services_of(request).reads.connect() as connection:
            row = await load_decision_record(connection, request.user.workspace_id, decision_id)
        if row is None:
            raise NotFound(f"no decision {decision_id} in this workspace", id=decision_id)
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
