"""The Litestar application: routes, middleware, error mapping and the service lifespan."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from order3 import __version__
from order3.config import Settings
from order3.domain.identifiers import new_id
from order3.http.access import AccessController
from order3.http.audit import AuditController
from order3.http.auth import TokenAuthentication
from order3.http.drafts import DraftController
from order3.http.problems import EXCEPTION_HANDLERS
from order3.http.requests import json_response, services_of
from order3.logging import configure_logging
from order3.runtime import open_services

log = structlog.get_logger("order3.http")

_PUBLIC_PATHS = ["^/healthz$", "^/schema"]


def request_context(app: ASGIApp) -> ASGIApp:
    """Give each request an id, bind it to every log event, and log the request once."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if 0 < len(offered) <= 100 and offered.isprintable() else new_id("req")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    return middleware


@get("/healthz", exclude_from_auth=True)
async def health(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Whether the service can decide: 503 while the policy engine does not answer."""
    services = services_of(request)
    healthy = await services.policy.healthy()
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "database": services.db.dialect.name,
        "policy_engine": {
            "url": services.policy.url,
            "supervised": services.supervisor is not None,
            "healthy": healthy,
            "engine": services.policy.engine,
            "policy_revision": services.policy.revision,
        },
        "audit_key_id": services.key.key_id,
    }
    return Response(
        msgspec.json.encode(body),
        status_code=200 if healthy else 503,
        media_type="application/json",
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """The service, configured from ``settings`` (or the environment)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            yield

    return Litestar(
        route_handlers=[health, DraftController, AccessController, AuditController],
        middleware=[
            request_context,
            DefineMiddleware(TokenAuthentication, exclude=_PUBLIC_PATHS),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Order3 Approvals", version=__version__),
        logging_config=None,
    )


__all__ = ["create_app", "json_response"]
