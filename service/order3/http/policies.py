"""The policy set: the signed bundle OPA downloads, the active revision and its rules, and the
policy data that every workspace decides under."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Controller, Request, Response, get, put
from litestar.params import FromPath

from order3.audit.canonical import content_hash
from order3.audit.records import SealedRecord
from order3.domain.errors import EngineUnavailable
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import answer, decode, json_response, services_of
from order3.policy.annotations import read_annotations
from order3.policy.bundle_server import bundle_answer
from order3.policy.bundles import BUNDLE_PATH
from order3.storage.revisions import load_revisions
from order3.workflow.policy_data import PolicyDataVersion

log = structlog.get_logger(__name__)

AuthedRequest = Request[Actor, Any, Any]


class PolicyDataReplace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``PUT /v1/policy-data``."""

    document: Any
    """The whole new policy data; it replaces the current version."""


def _version_view(version: PolicyDataVersion, records: list[SealedRecord] | None = None) -> bytes:
    view = msgspec.to_builtins(version)
    if version.document is None:
        del view["document"]
    if records:
        view["audit_seq"] = records[-1].seq
    return msgspec.json.encode(view)


def _render_replaced(version: PolicyDataVersion, records: list[SealedRecord]) -> tuple[int, bytes]:
    return 200, _version_view(version, records)


class PolicyController(Controller):
    path = "/v1"
    tags = ["policy"]

    @get(BUNDLE_PATH.removeprefix("/v1"), guards=[requires(Scope.BUNDLE)])
    async def bundle(self, request: AuthedRequest) -> Response[bytes]:
        """The signed policy bundle, over OPA's bundle protocol (ETag, 304 on If-None-Match)."""
        bundle = await services_of(request).policy_data.bundle()
        status, headers = bundle_answer(bundle, request.headers.get("if-none-match"))
        body = bundle.archive if status == 200 else b""
        return Response(content=body, status_code=status, headers=headers, media_type=None)

    @get("/policies", guards=[requires(Scope.READ)])
    async def policies(self, request: AuthedRequest) -> Response[bytes]:
        """The policy revision OPA has active, and the packages and rules it is made of."""
        services = services_of(request)
        engine = services.policy
        try:
            revision: str | None = await engine.refresh_revision()
        except Exception as exc:
            log.warning("policy.revision_unavailable", url=engine.url, error=repr(exc))
            revision = engine.revision
        stored = await load_revisions(services.reads, [revision] if revision else [])
        if revision is None or revision not in stored:
            raise EngineUnavailable("the policy engine reports no stored policy revision yet")
        content = stored[revision].verified()
        data_version = None
        if content.data is not None:
            data_version = await services.policy_data.version_for_data(content_hash(content.data))
        found = read_annotations(content.modules)
        body = {
            "policy_revision": revision,
            "source": "bundle" if engine.from_bundle else "directory",
            "engine": engine.engine,
            "policy_data_version": data_version,
            "packages": [_described(a) | {"package": a.package} for a in found if a.rule is None],
            "rules": [
                {"id": a.id, **_described(a), "package": a.package, "rule": a.rule}
                for a in found
                if a.rule is not None
            ],
        }
        return json_response(200, msgspec.json.encode(body))

    @get("/policy-data", guards=[requires(Scope.READ)])
    async def policy_data(self, request: AuthedRequest) -> Response[bytes]:
        """The current version of the policy data, with its document."""
        current = await services_of(request).policy_data.current()
        return json_response(200, _version_view(current))

    @put("/policy-data", guards=[requires(Scope.POLICY)])
    async def replace_policy_data(self, request: AuthedRequest) -> Response[bytes]:
        """Replace the policy data with a new version; OPA picks it up on its next poll."""
        services = services_of(request)
        body = await request.body()

        async def act(claim: Any) -> tuple[Any, list[SealedRecord]]:
            ask = decode(body, PolicyDataReplace)
            return await services.policy_data.replace(
                request.user, ask.document, claim, at="/document"
            )

        return await answer(request, _render_replaced, act)

    @get("/policy-data/versions", guards=[requires(Scope.READ)])
    async def versions(self, request: AuthedRequest) -> Response[bytes]:
        """Every version, newest first, without documents."""
        found = await services_of(request).policy_data.versions()
        views = [msgspec.json.decode(_version_view(version)) for version in found]
        return json_response(200, msgspec.json.encode(views))

    @get("/policy-data/versions/{version:int}", guards=[requires(Scope.READ)])
    async def version(self, request: AuthedRequest, version: FromPath[int]) -> Response[bytes]:
        """One version, with its document."""
        found = await services_of(request).policy_data.version(version)
        return json_response(200, _version_view(found))


def _described(annotation: Any) -> dict[str, Any]:
    return {"title": annotation.title, "description": annotation.description}
