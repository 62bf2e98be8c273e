"""``/v1/audit/keys`` and witness cosignatures: what a verifier needs besides the records.

The keys are every public key the log has signed with, each with its window, so records and
checkpoints from before a rotation still verify. Cosignatures come from the witnesses the
service is configured to accept; each is checked against the stored checkpoint it covers
before it is stored and served.

Posting a cosignature needs the ``admin`` scope, as signing a checkpoint does: it changes
what the service serves to every workspace. The witness's authority comes from its key, not
from the token: the token only decides who may hand its lines over.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from order3.audit.checkpoints import note_key_id, note_vkey
from order3.audit.signing import load_public_key
from order3.audit.witness import parse_witnesses
from order3.domain.errors import BadRequest
from order3.domain.principals import Actor, Scope
from order3.http.audit import checkpoint_view
from order3.http.auth import requires
from order3.http.requests import json_response, services_of
from order3.workflow.audit_keys import AuditKey, registered_keys
from order3.workflow.witnessing import add_cosignatures


class AuditKeyController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get("/keys", guards=[requires(Scope.READ)])
    async def keys(self, request: Request[Actor, Any, Any]) -> Response[bytes]:
        """Every public key the log has signed with, oldest first, with its window."""
        services = services_of(request)
        keys = await registered_keys(services.reads)
        items = [_key_view(key, services.settings.audit_origin) for key in keys]
        return json_response(200, msgspec.json.encode({"items": items}))

    @post(
        "/checkpoints/{tree_size:int}/cosignatures",
        guards=[requires(Scope.ADMIN)],
        status_code=201,
    )
    async def add_cosignatures(
        self, request: Request[Actor, Any, Any], tree_size: FromPath[int]
    ) -> Response[bytes]:
        """Store witness cosignature lines (the body, as text) of the checkpoint at that size."""
        try:
            body = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8 text") from None
        services = services_of(request)
        cosigned = await add_cosignatures(
            services.db,
            services.appender,
            services.settings.audit_origin,
            parse_witnesses(services.settings.audit_witnesses),
            tree_size,
            body,
        )
        return json_response(201, msgspec.json.encode(checkpoint_view(cosigned)))


def _key_view(key: AuditKey, origin: str) -> dict[str, Any]:
    public_key = load_public_key(key.public_key.encode())
    return {
        "key_id": key.key_id,
        "public_key": key.public_key,
        "activated_at": key.activated_at,
        "retired_at": key.retired_at,
        "checkpoint_key_name": origin,
        "checkpoint_key_id": note_key_id(origin, public_key).hex(),
        "checkpoint_vkey": note_vkey(origin, public_key),
    }
