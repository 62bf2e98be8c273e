"""A thin client for the API tests: principals with tokens, and ready-made draft bodies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx

_keys = itertools.count()


@dataclass(frozen=True)
class Workspace:
    id: str
    admin_id: str
    admin_token: str


@dataclass(frozen=True)
class Member:
    id: str
    token: str


def purchase_order(
    owner: str, *, unit_cost: int = 12500, quantity: int = 10, currency: str = "USD"
) -> dict[str, Any]:
    """10 x SKU-1 at 125.00 USD (1,250.00 USD) unless told otherwise."""
    return {
        "kind": "purchase_order",
        "payload": {
            "supplier_id": "sup_northwind",
            "location_id": "loc_main",
            "currency": currency,
            "lines": [
                {
                    "sku": "SKU-1",
                    "quantity": quantity,
                    "unit_cost": {"minor_units": unit_cost, "currency": currency},
                }
            ],
        },
        "rationale": "SKU-1 is below its reorder point at the main warehouse.",
        "affected_records": [{"type": "item", "id": "SKU-1", "version": 1}],
        "approval_owner": owner,
    }


@dataclass
class Api:
    client: Any
    workspace: Workspace
    members: dict[str, Member] = field(default_factory=dict)

    @classmethod
    def with_cast(cls, client: Any, workspace: Workspace) -> Api:
        api = cls(client, workspace)
        api.members["admin"] = Member(workspace.admin_id, workspace.admin_token)
        for name, kind, roles in [
            ("mia", "user", ["manager"]),
            ("max", "user", ["manager"]),
            ("fay", "user", ["finance"]),
            ("fred", "user", ["finance"]),
            ("sam", "user", ["requester", "manager"]),
            ("bot", "agent", ["requester"]),
            ("rogue", "agent", ["requester", "manager"]),
            ("viewer", "user", ["viewer"]),
        ]:
            api.members[name] = api.add_member(name, kind, roles)
        return api

    def add_member(self, name: str, kind: str, roles: list[str]) -> Member:
        principal = self.post(
            "admin", "/v1/principals", {"type": kind, "name": name, "roles": roles}
        )
        assert principal.status_code == 201, principal.text
        token = self.post(
            "admin", "/v1/tokens", {"principal_id": principal.json()["id"], "label": name}
        )
        assert token.status_code == 201, token.text
        return Member(principal.json()["id"], token.json()["token"])

    def id(self, who: str) -> str:
        return self.members[who].id

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.members[who].token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=self.headers(who), params=params)
        return response

    def post(
        self,
        who: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        content = raw if raw is not None else httpx.Request("POST", "/", json=body).content
        response: httpx.Response = self.client.post(
            path,
            headers={**self.headers(who, key), "Content-Type": "application/json"},
            content=content,
        )
        return response

    def patch(self, who: str, path: str, body: Any) -> httpx.Response:
        response: httpx.Response = self.client.patch(path, headers=self.headers(who), json=body)
        return response

    def submit(self, who: str, body: dict[str, Any]) -> httpx.Response:
        return self.post(who, "/v1/drafts", body, key=f"submit-{next(_keys)}")

    def submitted(self, who: str = "bot", **options: Any) -> str:
        """Submit a purchase order owned by mia; return its id."""
        response = self.submit(who, purchase_order(self.id("mia"), **options))
        assert response.status_code == 201, response.text
        draft_id: str = response.json()["draft"]["id"]
        return draft_id

    def approve(self, who: str, draft_id: str, role: str) -> httpx.Response:
        return self.post(
            who, f"/v1/drafts/{draft_id}/approvals", {"verdict": "approve", "role": role}
        )

    def audit(self, who: str = "admin", **filters: Any) -> list[dict[str, Any]]:
        response = self.get(who, "/v1/audit", **filters)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items
