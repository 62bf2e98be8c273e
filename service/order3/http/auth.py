"""Bearer-token authentication and per-endpoint scope checks."""

from __future__ import annotations

from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Guard

from order3.domain.errors import Forbidden
from order3.domain.principals import Actor, Scope

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="order3"'}


class TokenAuthentication(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer <token>`` to the acting principal."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException(
                "send an API token as `Authorization: Bearer <token>`", headers=_CHALLENGE
            )
        actor = await connection.app.state.services.access.authenticate(token.strip())
        if actor is None:
            raise NotAuthorizedException("the token is unknown or revoked", headers=_CHALLENGE)
        structlog.contextvars.bind_contextvars(
            principal_id=actor.id, workspace_id=actor.workspace_id
        )
        return AuthenticationResult(user=actor, auth=actor.token_id)


def requires(scope: Scope) -> Guard:
    """A guard that lets through only tokens holding ``scope``."""

    # Async, so Litestar runs it on the event loop instead of handing it to a thread.
    async def guard(connection: ASGIConnection[Any, Actor, Any, Any], _: BaseRouteHandler) -> None:
        if scope not in connection.user.scopes:
            raise Forbidden(f"this token lacks the `{scope}` scope", required_scope=str(scope))

    return guard
