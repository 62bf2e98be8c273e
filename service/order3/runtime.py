"""Starting and stopping what the service runs on: the database, the policy engine (a
supervised OPA or the operator's sidecar), the audit appender and the workflows."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.masking import DecisionMasker, load_or_create_mask_key
from order3.audit.signing import SigningKey
from order3.audit.witness import parse_witnesses
from order3.config import Settings
from order3.policy.binary import ensure_opa
from order3.policy.bundle_server import LoopbackBundleServer
from order3.policy.bundles import BundleKey, opa_config, read_modules
from order3.policy.engine import PolicyEngine
from order3.policy.supervisor import OpaSupervisor
from order3.storage.database import create_engine, migrate, reader
from order3.storage.revisions import store_revision
from order3.workflow.access import AccessWorkflow
from order3.workflow.audit_keys import register_signing_key
from order3.workflow.audit_log import AuditLog
from order3.workflow.drafts import DraftWorkflow
from order3.workflow.exceptions import sweep_exceptions
from order3.workflow.policy_data import PolicyDataWorkflow, read_json, revision_is_stored

log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    db: AsyncEngine
    reads: AsyncEngine
    key: SigningKey
    appender: AuditAppender
    policy: PolicyEngine
    supervisor: OpaSupervisor | None
    access: AccessWorkflow
    drafts: DraftWorkflow
    audit_log: AuditLog
    policy_data: PolicyDataWorkflow


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.signing_key_pem:
        return SigningKey.from_pem(settings.signing_key_pem.encode())
    return SigningKey.load_or_create(settings.resolved_signing_key_file)


def load_bundle_key(settings: Settings) -> BundleKey:
    if settings.bundle_signing_key_pem:
        return BundleKey.from_pem(settings.bundle_signing_key_pem.encode(), settings.bundle_key_id)
    return BundleKey.load_or_create(
        settings.resolved_bundle_signing_key_file, settings.bundle_key_id
    )


async def _start_supervised_opa(
    settings: Settings, policy_data: PolicyDataWorkflow, stack: contextlib.AsyncExitStack
) -> OpaSupervisor:
    """Serve the bundle on loopback, then start an OPA that downloads it from there."""
    bundles = LoopbackBundleServer(policy_data.bundle)
    await bundles.start()
    stack.push_async_callback(bundles.stop)
    config = opa_config(
        bundles.url,
        policy_data.bundle_key,
        token=bundles.token,
        poll_seconds=settings.bundle_poll_seconds,
    )
    config_file = settings.data_dir / "opa-config.json"
    config_file.unlink(missing_ok=True)
    # It holds the loopback token: readable by this user only, from the first byte.
    with os.fdopen(os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(config)
    supervisor = OpaSupervisor(
        ensure_opa(), config_file=config_file, log_path=settings.data_dir / "opa.log"
    )
    await supervisor.start()
    stack.push_async_callback(supervisor.stop)
    return supervisor


def load_masker(settings: Settings) -> DecisionMasker | None:
    """The masker for the configured fields, or None when nothing is to be masked."""
    fields = [field.strip() for field in settings.audit_mask_fields.split(",") if field.strip()]
    if not fields:
        return None
    key = load_or_create_mask_key(settings.audit_mask_key, settings.data_dir / "audit-mask-key")
    try:
        return DecisionMasker(fields, key)
    except ValueError as exc:
        raise ValueError(f"setting ORDER3_AUDIT_MASK_FIELDS is invalid: {exc}") from None


@contextlib.asynccontextmanager
async def open_storage(
    settings: Settings,
) -> AsyncIterator[tuple[AsyncEngine, SigningKey, AuditAppender]]:
    """The migrated database and a running audit appender (enough for the CLI)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = create_engine(settings.resolved_database_url)
    try:
        await migrate(db)
        key = load_signing_key(settings)
        appender = AuditAppender(db, key, masker=load_masker(settings))
        await appender.start()
        try:
            await register_signing_key(appender, key)
            yield db, key, appender
        finally:
            await appender.stop()
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Everything the HTTP service needs, started in order and stopped in reverse."""
    try:
        parse_witnesses(settings.audit_witnesses)
    except ValueError as exc:
        raise ValueError(f"setting ORDER3_AUDIT_WITNESSES is invalid: {exc}") from None
    async with contextlib.AsyncExitStack() as stack:
        db, key, appender = await stack.enter_async_context(open_storage(settings))
        reads = reader(db)
        policy_data = PolicyDataWorkflow(
            reads,
            appender,
            schema=read_json(settings.policy_dir / "settings" / "schema.json"),
            modules=read_modules(settings.policy_dir),
            key=load_bundle_key(settings),
            keep_revision=functools.partial(store_revision, db),
        )
        await policy_data.seed(read_json(settings.policy_dir / "settings" / "data.json"))
        supervisor, opa_url = None, settings.opa_url
        if opa_url is None:
            supervisor = await _start_supervised_opa(settings, policy_data, stack)
            opa_url = supervisor.url
        policy = PolicyEngine(
            opa_url,
            timeout=settings.opa_timeout,
            refresh_interval=settings.policy_refresh_seconds,
            keep_revision=functools.partial(store_revision, db),
            is_kept=functools.partial(revision_is_stored, reads),
        )
        await policy.start()
        stack.push_async_callback(policy.stop)
        services = Services(
            settings=settings,
            db=db,
            reads=reads,
            key=key,
            appender=appender,
            policy=policy,
            supervisor=supervisor,
            access=AccessWorkflow(
                reads, appender, token_cache_seconds=settings.token_cache_seconds
            ),
            drafts=DraftWorkflow(reads, policy, appender),
            audit_log=AuditLog(reads, appender, key, settings.audit_origin),
            policy_data=policy_data,
        )
        for background in (
            _sweep_expired(services),
            _sign_checkpoints(services),
            sweep_exceptions(reads, appender, services.drafts, settings),
        ):
            stack.callback(asyncio.create_task(background).cancel)
        log.info(
            "service.started",
            database=db.dialect.name,
            opa=policy.url,
            supervised=supervisor is not None,
            key_id=key.key_id,
        )
        yield services


async def _sign_checkpoints(services: Services) -> None:
    """Sign a checkpoint once the log has grown by ``checkpoint_records`` records, or when
    ``checkpoint_seconds`` have passed since the last one and the log has grown at all."""
    settings, audit_log = services.settings, services.audit_log
    loop = asyncio.get_running_loop()
    last_signed = loop.time()
    while True:
        await asyncio.sleep(min(1.0, settings.checkpoint_seconds))
        try:
            latest, size = await audit_log.latest(), await audit_log.size()
            grown = size - (latest.tree_size if latest is not None else 0)
            due = loop.time() - last_signed >= settings.checkpoint_seconds
            if grown >= settings.checkpoint_records or (grown > 0 and due):
                await audit_log.sign_checkpoint()
                last_signed = loop.time()
        except Exception as exc:
            log.warning("audit.checkpoint_failed", error=repr(exc))


async def _sweep_expired(services: Services) -> None:
    """Escalate, then expire, the pending drafts whose time the policy set has come."""
    while True:
        await asyncio.sleep(services.settings.expiry_sweep_seconds)
        try:
            await services.drafts.escalate_due()
            await services.drafts.expire_due()
        except Exception as exc:
            log.warning("draft.expiry_sweep_failed", error=repr(exc))
