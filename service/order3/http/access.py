"""``/v1/principals``, ``/v1/tokens`` and ``/v1/me``: who acts here, and with which tokens."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath

from order3.audit.records import SealedRecord
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import answer, decode, json_response, services_of
from order3.http.schemas import IssuedToken, PrincipalCreate, PrincipalView, TokenCreate, TokenView
from order3.workflow.access import Principal, Token

AuthedRequest = Request[Actor, Any, Any]


def _principal_view(principal: Principal) -> PrincipalView:
    return PrincipalView(**msgspec.structs.asdict(principal))


def _token_view(token: Token) -> TokenView:
    public = msgspec.structs.asdict(token)
    del public["secret"]
    return TokenView(**public)


def _render_principal(principal: Principal, _: list[SealedRecord]) -> tuple[int, bytes]:
    return 201, msgspec.json.encode(_principal_view(principal))


def _render_issued(token: Token, _: list[SealedRecord]) -> tuple[int, bytes]:
    # The secret is never stored, so a replay under the same Idempotency-Key answers without
    # it: the token was shown once, to the first request.
    issued = IssuedToken(
        id=token.id,
        token=token.secret or "",
        principal_id=token.principal_id,
        label=token.label,
        scopes=token.scopes,
        created_at=token.created_at,
    )
    return 201, msgspec.json.encode(issued)


class AccessController(Controller):
    path = "/v1"
    tags = ["access"]

    @get("/me")
    async def me(self, request: AuthedRequest) -> Response[bytes]:
        """The principal behind this token, its roles and the token's scopes."""
        actor = request.user
        body = {
            "id": actor.id,
            "type": str(actor.type),
            "name": actor.name,
            "roles": list(actor.roles),
            "scopes": [str(s) for s in actor.scopes],
            "workspace_id": actor.workspace_id,
            "token_id": actor.token_id,
        }
        return json_response(200, msgspec.json.encode(body))

    @post("/principals", guards=[requires(Scope.ADMIN)], status_code=201)
    async def create_principal(self, request: AuthedRequest) -> Response[bytes]:
        """Add a user, agent or integration with roles."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, PrincipalCreate)
            return await services.access.create_principal(
                request.user, ask.type, ask.name, list(ask.roles), claim
            )

        return await answer(request, _render_principal, act)

    @get("/principals", guards=[requires(Scope.READ)])
    async def list_principals(self, request: AuthedRequest) -> Response[bytes]:
        principals = await services_of(request).access.list_principals(request.user)
        return json_response(200, msgspec.json.encode([_principal_view(p) for p in principals]))

    @post("/tokens", guards=[requires(Scope.ADMIN)], status_code=201)
    async def issue_token(self, request: AuthedRequest) -> Response[bytes]:
        """Issue a token for a principal. The token value is in this answer and nowhere else."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, TokenCreate)
            return await services.access.issue_token(
                request.user, ask.principal_id, ask.label, ask.scopes, claim
            )

        return await answer(request, _render_issued, act)

    @get("/tokens", guards=[requires(Scope.ADMIN)])
    async def list_tokens(self, request: AuthedRequest) -> Response[bytes]:
        tokens = await services_of(request).access.list_tokens(request.user)
        return json_response(200, msgspec.json.encode([_token_view(t) for t in tokens]))

    @delete("/tokens/{token_id:str}", guards=[requires(Scope.ADMIN)], status_code=200)
    async def revoke_token(
        self, request: AuthedRequest, token_id: FromPath[str]
    ) -> Response[bytes]:
        """Revoke a token; it stops working at once."""
        token = await services_of(request).access.revoke_token(request.user, token_id)
        return json_response(200, msgspec.json.encode(_token_view(token)))
