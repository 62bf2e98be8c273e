"""Reading request bodies, and answering POSTs idempotently."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from order3.audit.records import SealedRecord
from order3.domain.drafts import validation_failure
from order3.domain.errors import BadRequest, InvalidInput
from order3.domain.principals import Actor
from order3.http.problems import PROBLEM_JSON
from order3.runtime import Services
from order3.storage.idempotency import IdempotencyClaim, claim_key, release_claim

T = TypeVar("T")

Render = Callable[[Any, list[SealedRecord]], tuple[int, bytes]]
Act = Callable[[IdempotencyClaim | None], Awaitable[tuple[Any, list[SealedRecord]]]]

IDEMPOTENCY_HEADER = "idempotency-key"
_MAX_KEY_LENGTH = 200


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def decode(body: bytes, type_: type[T]) -> T:
    """Decode a JSON body into ``type_``, naming the field that is wrong."""
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_failure(exc, body) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def not_blank(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    return value


def json_response(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> Response[bytes]:
    media_type = PROBLEM_JSON if status >= 400 else "application/json"
    return Response(content=body, status_code=status, media_type=media_type, headers=headers)


async def answer(
    request: Request[Actor, Any, Any], render: Render, act: Act, *, key_required: bool = False
) -> Response[bytes]:
    """Run ``act`` once per Idempotency-Key and answer with ``render`` of its result.

    The same key and body replay the stored answer; the same key with another body is
    refused (422); a key whose request is still running gets 409.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        if key_required:
            raise BadRequest(
                "this endpoint needs an Idempotency-Key header", header="Idempotency-Key"
            )
        value, records = await act(None)
        return json_response(*render(value, records))
    if not 0 < len(key) <= _MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {_MAX_KEY_LENGTH} characters")
    services = services_of(request)
    claim = IdempotencyClaim(
        workspace_id=request.user.workspace_id,
        principal_id=request.user.id,
        key=key,
        request_hash=_request_hash(request.method, request.url.path, await request.body()),
        render=render,
    )
    stored = await claim_key(services.appender, services.reads, claim)
    if stored is not None:
        return json_response(stored.status_code, stored.body, {"Idempotent-Replayed": "true"})
    try:
        value, records = await act(claim)
        return json_response(*render(value, records))
    finally:
        if not claim.completed:
            await release_claim(services.appender, claim)


def _request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return "sha256:" + digest.hexdigest()
