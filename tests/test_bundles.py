"""Policy bundles: built and signed by the service, served over OPA's bundle protocol, and
activated by a real OPA only when the signature holds. Decisions record the revision OPA
reports for them."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from order3.policy.binary import ensure_opa
from order3.policy.bundles import (
    BUNDLE_PATH,
    BundleKey,
    build_bundle,
    go_json,
    opa_config,
    read_modules,
)
from order3.policy.revisions import RevisionContent
from order3.policy.supervisor import OpaStartError, OpaSupervisor
from order3.storage.schema import audit_records
from support.api import Api, Member, purchase_order
from support.bundles import BundleHttpServer, write_policy_set
from support.database import query
from support.servers import order3_services


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policy_set(tmp_path / "policies")


@pytest.fixture
def key(tmp_path: Path) -> BundleKey:
    return BundleKey.load_or_create(tmp_path / "bundle-key.pem", "order3-test")


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def repack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(buffer.getvalue())


def unpadded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def start_opa(tmp_path: Path, url: str, key: BundleKey, token: str | None) -> OpaSupervisor:
    config = tmp_path / f"opa-{len(list(tmp_path.glob('opa-*')))}.json"
    config.write_text(opa_config(url, key, token=token, poll_seconds=1))
    return OpaSupervisor(ensure_opa(build=False), config_file=config, log_path=tmp_path / "opa.log")


async def ask(opa_url: str, amount: int) -> dict[str, Any]:
    body = {"input": {"draft": {"amount": {"minor_units": amount, "currency": "USD"}}}}
    async with httpx.AsyncClient(base_url=opa_url, timeout=5.0) as client:
        answer = await client.post("/v1/data/order3/decision?provenance=true", json=body)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def test_bundle_holds_the_deciding_modules_and_data_signed_over_every_file(
    policy_dir: Path, key: BundleKey
) -> None:
    """The bundle leaves out policy tests, names its revision in the manifest, and signs a
    hash of every other file under the configured key id."""
    modules = read_modules(policy_dir)

    bundle = build_bundle(modules, {"limit": 5}, 3, key)

    files = members(bundle.archive)
    assert sorted(files) == [
        ".manifest",
        ".signatures.json",
        "order3/decision.rego",
        "settings/data.json",
    ]
    manifest = json.loads(files[".manifest"])
    assert manifest["revision"] == bundle.revision
    assert bundle.revision == RevisionContent.of(list(modules.values()), {"limit": 5}).revision()
    assert manifest["roots"] == ["order3", "settings"]
    assert manifest["metadata"] == {"policy_data_version": 3}
    [token] = json.loads(files[".signatures.json"])["signatures"]
    header, payload, signature = token.split(".")
    assert json.loads(unpadded(header)) == {"alg": "ES256", "kid": "order3-test", "typ": "JWT"}
    public = serialization.load_pem_public_key(key.public_pem().encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    raw = unpadded(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    signed = {f["name"]: f["hash"] for f in json.loads(unpadded(payload))["files"]}
    assert signed == {
        name: hashlib.sha256(body).hexdigest()
        for name, body in files.items()
        if name != ".signatures.json"
    }


def test_json_is_written_as_opa_hashes_it() -> None:
    """Sorted keys, no whitespace, no HTML escaping, and the two line separators escaped."""
    document = {"b": [1, "<&>"], "a": {"z": None, "y": True}, "c": "\u2028é"}

    assert go_json(document) == '{"a":{"y":true,"z":null},"b":[1,"<&>"],"c":"\\u2028é"}'.encode()


def test_opa_activates_the_signed_bundle_and_reports_its_revision(
    policy_dir: Path, key: BundleKey, tmp_path: Path
) -> None:
    bundle = build_bundle(read_modules(policy_dir), {"limit": 100}, 1, key)

    async def scenario() -> dict[str, Any]:
        with BundleHttpServer(bundle.archive) as server:
            opa = start_opa(tmp_path, server.url, key, token=None)
            await opa.start(timeout=15)
            try:
                return await ask(opa.url, 50)
            finally:
                await opa.stop()

    answer = asyncio.run(scenario())

    assert answer["result"]["outcome"] == "allowed"
    assert answer["provenance"]["bundles"] == {"order3": {"revision": bundle.revision}}


@pytest.mark.parametrize("forgery", ["another key", "tampered data"])
def test_opa_refuses_a_bundle_it_cannot_verify(
    policy_dir: Path, key: BundleKey, tmp_path: Path, forgery: str
) -> None:
    """Signed with another key under the same key id, or changed after signing: OPA never
    activates it, so it never decides under it."""
    modules = read_modules(policy_dir)
    if forgery == "another key":
        other = BundleKey.load_or_create(tmp_path / "other.pem", key.key_id)
        archive = build_bundle(modules, {"limit": 100}, 1, other).archive
    else:
        files = members(build_bundle(modules, {"limit": 100}, 1, key).archive)
        files["settings/data.json"] = b'{"limit":999999999}'
        archive = repack(files)

    async def scenario() -> None:
        with BundleHttpServer(archive) as server:
            opa = start_opa(tmp_path, server.url, key, token=None)
            try:
                with pytest.raises(OpaStartError, match="was not healthy"):
                    await opa.start(timeout=4)
            finally:
                await opa.stop()
            assert server.requests >= 1

    asyncio.run(scenario())


@pytest.fixture
def supervised(tmp_path: Path, policy_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'order3.db'}",
        policy_dir=policy_dir,
        bundle_poll_seconds=1,
        policy_refresh_seconds=3600,
        expiry_sweep_seconds=3600,
    )


@pytest.fixture
def supervised_api(supervised: Settings) -> Iterator[Api]:
    workspace = asyncio.run(create_workspace(supervised))
    with TestClient(create_app(supervised)) as client:
        api = Api(client, workspace, {"admin": Member(workspace.admin_id, workspace.admin_token)})
        api.members["sidecar"] = api.add_member("opa-sidecar", "integration", ["sidecar"])
        api.members["viewer"] = api.add_member("vera", "user", ["viewer"])
        yield api


def test_bundle_endpoint_answers_304_to_its_etag_and_only_to_bundle_tokens(
    supervised_api: Api,
) -> None:
    api = supervised_api

    first = api.get("sidecar", BUNDLE_PATH)
    again = api.client.get(
        BUNDLE_PATH,
        headers={**api.headers("sidecar"), "If-None-Match": first.headers["etag"]},
    )
    anonymous = api.client.get(BUNDLE_PATH)
    viewer = api.get("viewer", BUNDLE_PATH)

    assert first.status_code == 200
    assert first.headers["content-type"] == "application/gzip"
    revision = json.loads(members(first.content)[".manifest"])["revision"]
    assert first.headers["etag"] == f'"{revision}"'
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert anonymous.status_code == 401
    assert viewer.status_code == 403
    assert viewer.json()["required_scope"] == "bundle"


def test_decisions_record_the_revision_the_supervised_opa_reports(
    supervised_api: Api, supervised: Settings
) -> None:
    """The supervised OPA loads the signed bundle from the service, and the decision's audit
    record names the bundle revision OPA answered under."""
    api = supervised_api
    bundle = api.get("sidecar", BUNDLE_PATH)
    revision = json.loads(members(bundle.content)[".manifest"])["revision"]

    submitted = api.submit("admin", purchase_order(api.id("admin"), unit_cost=100, quantity=1))
    policies = api.get("viewer", "/v1/policies")

    assert submitted.status_code == 201, submitted.text
    [recorded] = query(
        supervised,
        sa.select(audit_records.c.policy_revision).where(
            audit_records.c.policy_revision.is_not(None)
        ),
    )
    assert recorded.policy_revision == revision
    assert policies.json()["policy_revision"] == revision
    assert policies.json()["source"] == "bundle"


def test_policies_lists_the_active_rules_with_their_ids_and_titles(supervised_api: Api) -> None:
    answer = supervised_api.get("viewer", "/v1/policies")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["policy_data_version"] == 1
    assert body["packages"] == [
        {
            "package": "order3",
            "title": "Limit check",
            "description": "Allows a draft whose amount is within the limit in the policy data.",
        }
    ]
    assert [(rule["id"], rule["title"], rule["rule"]) for rule in body["rules"]] == [
        ("limit.over", "Over the limit", "decision"),
        ("limit.within", "Within the limit", "decision"),
    ]


def test_a_directory_loaded_opa_reports_the_revision_the_service_computes(api: Api) -> None:
    """The external OPA of the suite loads `policies/` from disk: no bundle, so the revision
    is the hash of what it has loaded, as before bundles."""
    answer = api.get("viewer", "/v1/policies")

    assert answer.status_code == 200, answer.text
    assert answer.json()["source"] == "directory"
    assert answer.json()["policy_revision"].startswith("sha256:")
    assert answer.json()["rules"], "the repository's policies annotate their rules"
    assert all(rule["id"] and rule["title"] for rule in answer.json()["rules"] if rule["id"])


def test_a_sidecar_opa_downloads_the_bundle_from_a_running_service(
    supervised: Settings, tmp_path: Path
) -> None:
    """The deploy/ layout: an OPA beside the service, configured with the service's bundle
    URL, a token holding only the `bundle` scope, and the verification key under its key id."""
    workspace = asyncio.run(create_workspace(supervised))
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(supervised.data_dir),
        "ORDER3_DATABASE_URL": str(supervised.database_url),
        "ORDER3_POLICY_DIR": str(supervised.policy_dir),
        "ORDER3_LOG_LEVEL": "warning",
    }

    async def scenario(base: str) -> tuple[dict[str, Any], str]:
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
            admin = {"Authorization": f"Bearer {workspace.admin_token}"}
            body = {"type": "integration", "name": "opa-sidecar", "roles": ["sidecar"]}
            principal = (await client.post("/v1/principals", json=body, headers=admin)).json()
            issued = await client.post(
                "/v1/tokens", json={"principal_id": principal["id"], "label": "x"}, headers=admin
            )
            token = issued.json()["token"]
            revision = (await client.get("/v1/policies", headers=admin)).json()["policy_revision"]
        key = BundleKey.load_or_create(supervised.resolved_bundle_signing_key_file, "order3-bundle")
        sidecar = start_opa(tmp_path, base, key, token=token)
        await sidecar.start(timeout=15)
        try:
            return await ask(sidecar.url, 500_000), revision
        finally:
            await sidecar.stop()

    with order3_services(env) as [base]:
        answer, revision = asyncio.run(scenario(base))

    assert answer["provenance"]["bundles"]["order3"]["revision"] == revision
    assert answer["result"]["outcome"] == "denied"
