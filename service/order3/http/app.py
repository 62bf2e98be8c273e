"""The Litestar application: routes, middleware, error mapping and the service lifespan."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from order3 import __version__
from order3.config import Settings
from order3.domain.identifiers import new_id
from order3.http.access import AccessController
from order3.http.audit import AuditController
from order3.http.audit_keys import AuditKeyController
from order3.http.auth import TokenAuthentication
from order3.http.decisions import DecisionController
from order3.http.drafts import DraftController
from order3.http.exceptions import ExceptionController
from order3.http.inventory import InventoryController
from order3.http.policies import PolicyController
from order3.http.policy_replay import PolicyReplayController
from order3.http.problems import EXCEPTION_HANDLERS
from order3.http.requests import services_of
from order3.http.sync import SyncController
from order3.logging import configure_logging
from order3.runtime import open_services

log = structlog.get_logger("order3.http")

_PUBLIC_PATHS = ["^/healthz$", "^/schema"]
_started: contextvars.ContextVar[float] = contextvars.ContextVar("request_started")


def request_context(app: ASGIApp) -> ASGIApp:
    """Give each request an id and bind it, with the start time, to every log event."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            headers = dict(scope["headers"])
            offered = headers.get(b"x-request-id", b"").decode("latin-1")
            usable = 0 < len(offered) <= 100 and offered.isprintable()
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=offered if usable else new_id("req"))
            _started.set(time.perf_counter())
        await app(scope, receive, send)

    return middleware


async def answer_with_request_id(message: Message, scope: Scope) -> None:
    """Stamp every answer, error answers included, with its request id, and log it once.

    This runs as Litestar's ``before_send`` hook, outside the middleware, so it also sees
    the answers the exception handlers write for errors raised in middleware (a 401).
    """
    if message["type"] != "http.response.start":
        return
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
    started = _started.get(None)
    duration_ms = None if started is None else round((time.perf_counter() - started) * 1000, 2)
    log.info(
        "http.request",
        method=scope.get("method"),
        path=scope.get("path"),
        status=message["status"],
        duration_ms=duration_ms,
    )


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


def services_lifespan(
    settings: Settings,
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that opens the service's components from ``settings`` and keeps them in
    ``app.state.services`` for as long as the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            yield

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    """The service, configured from ``settings`` (or the environment)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return Litestar(
        route_handlers=[
            health,
            DraftController,
            InventoryController,
            ExceptionController,
            SyncController,
            AccessController,
            AuditController,
            AuditKeyController,
            DecisionController,
            PolicyController,
            PolicyReplayController,
        ],
        before_send=[answer_with_request_id],
        middleware=[
            request_context,
            DefineMiddleware(TokenAuthentication, exclude=_PUBLIC_PATHS),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[services_lifespan(settings)],
        openapi_config=OpenAPIConfig(title="Order3 Approvals", version=__version__),
        logging_config=None,
    )


__all__ = ["create_app", "services_lifespan"]
