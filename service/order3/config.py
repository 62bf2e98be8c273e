"""Settings, read from ``ORDER3_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("var")
    """Where the embedded database, the signing key and OPA's log live by default."""

    database_url: str | None = None
    """``sqlite:///...`` or ``postgresql://...``; SQLite in ``data_dir`` when unset."""

    opa_url: str | None = None
    """An OPA the operator runs (a sidecar). When unset the service supervises its own."""

    policy_dir: Path = REPO_ROOT / "policies"
    opa_timeout: float = 2.0
    policy_refresh_seconds: float = 10.0

    signing_key_file: Path | None = None
    """PEM (PKCS#8) Ed25519 key; ``data_dir/audit-signing-key.pem`` when unset."""

    signing_key_pem: str | None = None
    """The key itself, for deployments that hand secrets over in the environment."""

    bundle_signing_key_file: Path | None = None
    """PEM (PKCS#8) ECDSA P-256 key that signs policy bundles; ``data_dir/bundle-signing-key.pem``
    (created on first start) when unset. Never the audit signing key."""

    bundle_signing_key_pem: str | None = None
    """The bundle signing key itself, for deployments that hand secrets over in the environment."""

    bundle_key_id: str = "order3-bundle"
    """The ``keyid`` bundles are signed under; OPA's ``keys`` must hold the public key by it."""

    bundle_poll_seconds: int = 2
    """How often the supervised OPA asks the service for a new bundle."""

    token_cache_seconds: float = 1.0
    """How long a process may reuse a token lookup; a revocation through another process
    takes effect within this time (0 looks every token up on every request)."""

    audit_origin: str = "order3-approvals/audit"
    """The log's identity in its checkpoints (a schema-less URL, no spaces or plus signs)."""

    checkpoint_seconds: float = 60.0
    """How often a new checkpoint is signed while the log grows."""

    checkpoint_records: int = 10_000
    """A checkpoint is also signed as soon as this many records follow the last one."""

    audit_mask_fields: str = ""
    """Comma-separated JSON pointers into the decision input (``/draft/payload/bank``) whose
    values audit records store only as a keyed hash."""

    audit_mask_key: str | None = None
    """The masking key; ``data_dir/audit-mask-key`` (created on first start) when unset."""

    audit_witnesses: str = ""
    """Comma-separated C2SP verifier keys (``name+keyid+base64``) of witnesses whose
    cosignatures the service accepts."""

    host: str = "127.0.0.1"
    port: int = 8080
    expiry_sweep_seconds: float = 60.0
    """How often each process expires and escalates pending drafts (the policy sets when)."""
    exception_sweep_seconds: float = 300.0
    """How often every workspace is searched for inventory exceptions."""

    count_drift_percent: float = 5.0
    count_drift_units: int = 0
    """A count drifts when it is off the book by more than both: this percent of the book,
    and this many units."""

    log_level: str = "info"
    log_format: str = "console"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'order3.db').resolve()}"

    @property
    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "audit-signing-key.pem"

    @property
    def resolved_bundle_signing_key_file(self) -> Path:
        return self.bundle_signing_key_file or self.data_dir / "bundle-signing-key.pem"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``ORDER3_<FIELD>`` variables, then ``overrides``."""
        environ = dict(os.environ if environ is None else environ)
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = environ.get(f"ORDER3_{name.upper()}")
            if value not in (None, ""):
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(raw, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as exc:
            field = str(exc).rpartition("$.")[2].rstrip("`")
            raise ValueError(f"setting ORDER3_{field.upper()} is invalid: {exc}") from None


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError
