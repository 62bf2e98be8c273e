"""The registry of audit signing keys: every public key that has signed, with its window.

Private keys never reach the database; they come from a file or the environment. At startup
the configured key is registered if it is new: the key active until then is retired, the new
one activated, and an ``audit.key_activated`` record, signed by the new key, names both. A
record names the key that signed it by ``key_id``, so a verifier holding every registered key
verifies records from before and after a rotation alike.

The first key a log is started with is registered without a record: there is no earlier key
to hand over from, and the log's first records are its first workspace's.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.records import AuditEntry, utc_timestamp
from order3.audit.signing import SigningKey, load_public_key
from order3.domain.principals import SYSTEM_ACTOR_ID
from order3.storage.schema import audit_chain_head, audit_keys

log = structlog.get_logger(__name__)


class KeyRetired(RuntimeError):
    """The configured signing key was retired: signing with it again would reopen a window."""


class AuditKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    public_key: str
    """PEM (SubjectPublicKeyInfo)."""

    activated_at: str
    retired_at: str | None


async def register_signing_key(appender: AuditAppender, key: SigningKey) -> bool:
    """Register ``key`` if it is new, retiring the active key; True if it was new.

    It runs in one transaction through the appender, with the chain head locked before the
    registry is read, so processes starting together with the same new key register it once.

    Raises:
        KeyRetired: the key was registered before and has been retired since.
    """
    registered, _ = await appender.commit(lambda connection: _register(connection, key))
    return registered


async def _register(connection: AsyncConnection, key: SigningKey) -> tuple[bool, list[AuditEntry]]:
    # The head row is the lock every writer of the chain takes; taking it first serializes
    # registrations across processes (PostgreSQL). SQLite's write lock already does.
    await connection.execute(
        sa.select(audit_chain_head.c.seq).where(audit_chain_head.c.id == 1).with_for_update()
    )
    known = (
        await connection.execute(
            sa.select(audit_keys.c.retired_at).where(audit_keys.c.key_id == key.key_id)
        )
    ).one_or_none()
    if known is not None:
        if known.retired_at is not None:
            raise KeyRetired(
                f"audit key {key.key_id} was retired at {known.retired_at}; "
                "write a new key with `order3 audit new-key`"
            )
        return False, []
    now = utc_timestamp()
    previous = (
        await connection.execute(
            sa.select(audit_keys.c.key_id).where(audit_keys.c.retired_at.is_(None))
        )
    ).scalar_one_or_none()
    await connection.execute(
        audit_keys.update().where(audit_keys.c.retired_at.is_(None)).values(retired_at=now)
    )
    await connection.execute(
        audit_keys.insert().values(
            key_id=key.key_id, public_key=key.public_pem(), activated_at=now, retired_at=None
        )
    )
    log.info("audit.key_activated", key_id=key.key_id, previous_key_id=previous)
    if previous is None:
        return True, []
    return True, [_activation(key, previous)]


def _activation(key: SigningKey, previous: str) -> AuditEntry:
    details: dict[str, Any] = {"public_key": key.public_pem(), "previous_key_id": previous}
    return AuditEntry(
        workspace_id=None,
        actor={"id": SYSTEM_ACTOR_ID, "type": "system"},
        action="audit.key_activated",
        subject={"type": "audit_key", "id": key.key_id},
        details=details,
    )


async def registered_keys(db: AsyncEngine) -> list[AuditKey]:
    """Every registered key, oldest first."""
    async with db.connect() as connection:
        rows = await connection.execute(
            sa.select(audit_keys).order_by(audit_keys.c.activated_at, audit_keys.c.key_id)
        )
        return [
            AuditKey(
                key_id=row.key_id,
                public_key=row.public_key,
                activated_at=row.activated_at,
                retired_at=row.retired_at,
            )
            for row in rows
        ]


async def trusted_keys(db: AsyncEngine) -> dict[str, Ed25519PublicKey]:
    """The registered public keys by key id, to verify records with."""
    return {
        key.key_id: load_public_key(key.public_key.encode()) for key in await registered_keys(db)
    }
