"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error a client sees goes through `problem_response`: domain errors keep their status
and extensions, framework errors keep their status, and anything unexpected becomes a bare
500 that says nothing about internals.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException

from order3.domain.errors import Order3Error

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, slug: str, title: str, detail: str, **extensions: Any) -> bytes:
    document = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    document.update(extensions)
    return msgspec.json.encode(document)


def problem_response(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def order3_error_body(exc: Order3Error) -> bytes:
    return problem_body(exc.status, exc.slug, exc.title, exc.detail, **exc.extensions)


def handle_order3_error(request: Request[Any, Any, Any], exc: Order3Error) -> Response[bytes]:
    if exc.status >= 500:
        log.error("http.refused", status=exc.status, problem=exc.slug, detail=exc.detail)
    else:
        log.info("http.rejected", status=exc.status, problem=exc.slug, detail=exc.detail)
    return problem_response(exc.status, order3_error_body(exc))


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        detail = f"no route for {request.method} {request.url.path}"
    else:
        detail = exc.detail
    extensions: dict[str, Any] = {}
    if isinstance(exc.extra, list) and exc.extra:
        extensions["errors"] = [_field_error(error) for error in exc.extra]
    slug = "bad-request" if status == 400 else f"http-{status}"
    return problem_response(
        status, problem_body(status, slug, _title(status), detail, **extensions), exc.headers
    )


# Handler arguments whose Python names differ from the query parameter they read.
_QUERY_NAMES = {"draft_state": "state", "old_size": "from", "new_size": "to"}


def _field_error(error: Any) -> dict[str, Any]:
    """Litestar's parameter errors in the ``{field, message}`` shape every problem uses."""
    if not isinstance(error, dict):
        return {"field": "$", "message": str(error)}
    key = str(error.get("key", ""))
    return {"field": _QUERY_NAMES.get(key, key) or "$", "message": error.get("message", "")}


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("http.failed", error_type=type(exc).__name__)
    return problem_response(
        500,
        problem_body(
            500,
            "internal-error",
            "Internal error",
            "the request failed on the server; nothing was changed",
        ),
    )


def _title(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "Error"
    return phrase[:1] + phrase[1:].lower()


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Order3Error: handle_order3_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
