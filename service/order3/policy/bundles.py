"""Policy bundles: the policy set packed the way OPA downloads it, and signed by the service.

A bundle is a gzipped tarball holding

- every ``.rego`` module under the policy directory except ``*_test.rego``, at its path there;
- ``settings/data.json``: the current policy data version, so that it is ``data.settings``;
- ``.manifest``: ``{"revision", "roots", "metadata": {"policy_data_version"}}``;
- ``.signatures.json``: ``{"signatures": [<JWT>]}``, a JWS (ES256) over the SHA-256 of every
  other file, with ``kid`` naming the key OPA is told to verify it with.

The manifest ``revision`` is the policy revision itself (`RevisionContent.revision`): the
hash of the module sources and the policy data. OPA reports it with every answer asked for
with ``provenance=true``, so a decision names the bundle that made it, not one the service
assumes. The archive is deterministic (sorted members, zero times, no owners): every process
builds the same bytes from the same content, and the ETag is the revision.

How OPA hashes a file for its signature (its ``bundle/hash.go``): the bytes of a module; for a
JSON file, the document re-encoded with object keys sorted, no whitespace, and strings as Go's
encoder writes them without HTML escaping. The JSON files here are written in exactly that
form, so their hash is the hash of their bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import msgspec
import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from order3.policy.revisions import RevisionContent

log = structlog.get_logger(__name__)

BUNDLE_NAME = "order3"
"""The bundle's name in OPA's configuration, and in ``provenance.bundles`` of its answers."""
BUNDLE_PATH = "/v1/bundles/order3.tar.gz"
"""Where the service serves the bundle."""
SIGNING_ALGORITHM = "ES256"
DATA_FILE = "settings/data.json"

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_P256_COORDINATE_BYTES = 32


class BundleKey:
    """The ECDSA P-256 key that signs bundles (OPA verifies ES256; it has no Ed25519).

    It is never the audit signing key and never stored in the database: it comes from a file
    or the environment, like the audit key.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, key_id: str) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            curve = private_key.curve.name
            raise ValueError(f"the bundle signing key must be on P-256, not {curve}")
        if not key_id.strip():
            raise ValueError("the bundle signing key id must not be blank")
        self._key = private_key
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"BundleKey(key_id={self.key_id!r})"

    @classmethod
    def from_pem(cls, pem: bytes, key_id: str) -> BundleKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the bundle signing key is not an ECDSA (P-256) private key")
        return cls(key, key_id)

    @classmethod
    def load_or_create(cls, path: Path, key_id: str) -> BundleKey:
        """Load a PEM key; create one readable only by its owner if there is none."""
        if path.exists():
            return cls.from_pem(path.read_bytes(), key_id)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        log.info("bundle.key_created", key_id=key_id, path=str(path))
        return cls(key, key_id)

    def public_pem(self) -> str:
        """The verification key, as OPA's ``keys.<keyid>.key`` takes it."""
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, payload: dict[str, Any]) -> str:
        """A compact JWS over ``payload`` with ``alg``, ``typ`` and ``kid`` in its header."""
        header = {"alg": SIGNING_ALGORITHM, "kid": self.key_id, "typ": "JWT"}
        signing_input = f"{_b64(go_json(header))}.{_b64(go_json(payload))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(_P256_COORDINATE_BYTES, "big") + s.to_bytes(_P256_COORDINATE_BYTES, "big")
        return f"{signing_input}.{_b64(raw)}"


class SignedBundle(msgspec.Struct, frozen=True, kw_only=True):
    """One built bundle, with what it was built from."""

    revision: str
    data_version: int
    content: RevisionContent
    archive: bytes

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'

    def matches(self, if_none_match: str | None) -> bool:
        """Whether a client holding ``If-None-Match`` already has this bundle."""
        if not if_none_match:
            return False
        offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in offered or self.etag in offered


def read_modules(policy_dir: Path) -> dict[str, str]:
    """The deciding modules under ``policy_dir``, by path relative to it: every ``.rego`` file
    except the ``*_test.rego`` unit tests and anything in a hidden directory.

    Raises:
        ValueError: There is none.
    """
    modules = {}
    for path in sorted(policy_dir.rglob("*.rego")):
        relative = path.relative_to(policy_dir)
        if path.name.endswith("_test.rego") or any(p.startswith(".") for p in relative.parts):
            continue
        modules[relative.as_posix()] = path.read_text(encoding="utf-8")
    if not modules:
        raise ValueError(f"no policy modules (*.rego) under {policy_dir}")
    return modules


def build_bundle(
    modules: dict[str, str], data: Any, data_version: int, key: BundleKey
) -> SignedBundle:
    """Pack and sign ``modules`` with ``data`` as ``data.settings``."""
    content = RevisionContent.of(list(modules.values()), data)
    revision = content.revision()
    manifest = {
        "revision": revision,
        "roots": _roots(modules.values()),
        "metadata": {"policy_data_version": data_version},
    }
    files = {name: source.encode() for name, source in modules.items()}
    files[DATA_FILE] = go_json(data)
    files[".manifest"] = go_json(manifest)
    hashed = [
        {"name": name, "hash": hashlib.sha256(body).hexdigest(), "algorithm": "SHA-256"}
        for name, body in sorted(files.items())
    ]
    files[".signatures.json"] = go_json({"signatures": [key.sign({"files": hashed})]})

    return SignedBundle(
        revision=revision, data_version=data_version, content=content, archive=_tarball(files)
    )


def opa_config(service_url: str, key: BundleKey, *, token: str | None, poll_seconds: int) -> str:
    """An OPA configuration that downloads, verifies and activates the service's bundle."""
    service: dict[str, Any] = {"url": service_url}
    if token is not None:
        service["credentials"] = {"bearer": {"token": token}}
    config = {
        "services": {"order3": service},
        "bundles": {
            BUNDLE_NAME: {
                "service": "order3",
                "resource": BUNDLE_PATH,
                "polling": {"min_delay_seconds": poll_seconds, "max_delay_seconds": poll_seconds},
                "signing": {"keyid": key.key_id},
            }
        },
        "keys": {key.key_id: {"algorithm": SIGNING_ALGORITHM, "key": key.public_pem()}},
        "decision_logs": {"console": True},
    }
    return json.dumps(config, indent=2)


def go_json(value: Any) -> bytes:
    """``value`` as OPA hashes a JSON document: sorted keys, no whitespace, Go's escaping."""
    if isinstance(value, dict):
        members = [_go_string(str(k)) + b":" + go_json(value[k]) for k in sorted(value)]
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(go_json(item) for item in value) + b"]"
    if isinstance(value, str):
        return _go_string(value)

    return json.dumps(value, allow_nan=False).encode()


def _go_string(text: str) -> bytes:
    # Python and Go agree on every escape but these two, which Go always escapes.
    encoded = json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028")
    return encoded.replace("\u2029", "\\u2029").encode()


def _roots(sources: Any) -> list[str]:
    """The top-level names the bundle owns: each module's first package segment, and the
    settings. OPA refuses a bundle whose modules or data lie outside its roots."""
    roots = {"settings"}
    for source in sources:
        found = _PACKAGE.search(source)
        if found:
            roots.add(found.group(1).split(".")[0])
    return sorted(roots)


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, body in sorted(files.items()):
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.mtime = len(body), 0o644, 0
            archive.addfile(member, io.BytesIO(body))

    return gzip.compress(buffer.getvalue(), mtime=0)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
