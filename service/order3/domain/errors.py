"""The errors the domain raises, and the HTTP answer each one becomes.

    Order3Error
    ├── BadRequest            400  the request cannot be read (malformed JSON, a missing header)
    ├── InvalidInput          422  a field is wrong; names the field as a JSON path
    ├── NotFound              404  no such record in the caller's workspace
    ├── Forbidden             403  the token lacks the scope, or the policy denied the action
    │   └── PolicyDenied           carries the decision and its reasons
    ├── Conflict              409  illegal state transition, stale version, key in flight
    ├── IdempotencyMismatch   422  an Idempotency-Key reused with another body
    └── EngineUnavailable     503  no usable policy result: fail closed

The HTTP layer turns each into an RFC 9457 problem document; see ``order3.http.problems``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Order3Error(Exception):
    """Base of every error a client can be told about."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class BadRequest(Order3Error):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class InvalidInput(Order3Error):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{detail} at `{field}`", errors=[{"field": field, "message": detail}])
        self.field = field


class NotFound(Order3Error):
    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(Order3Error):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class PolicyDenied(Forbidden):
    slug = "policy-denied"
    title = "Denied by policy"


class Conflict(Order3Error):
    status = 409
    slug = "conflict"
    title = "Conflict"


class IdempotencyMismatch(Order3Error):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency key reused with another request"


class EngineUnavailable(Order3Error):
    status = 503
    slug = "policy-engine-unavailable"
    title = "Policy engine unavailable"
