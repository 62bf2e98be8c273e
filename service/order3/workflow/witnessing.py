"""Witness cosignatures of the log's checkpoints: accepted from the configured witnesses,
stored, and served with every checkpoint they cover.

A cosignature signs a checkpoint's note text (origin, size, root), not the log's signature,
so it covers every stored checkpoint with the same text: one signed again at the same size
(as an export does when the log has not grown) is served with the cosignatures already held.

Cosignatures are not audit records: recording one would grow the log, and a grown log needs
a new checkpoint and new cosignatures, without end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.checkpoints import (
    Checkpoint,
    Cosignature,
    NoteSignature,
    parse_signature_line,
    split_note,
)
from order3.audit.records import AuditEntry, utc_timestamp
from order3.audit.witness import WitnessKey, open_cosignature
from order3.domain.errors import InvalidInput, NotFound
from order3.storage.schema import audit_checkpoints, audit_cosignatures

log = structlog.get_logger(__name__)

MAX_CLOCK_SKEW_SECONDS = 300
"""A cosignature timestamped further ahead of this service's clock is refused."""


async def with_cosignatures(db: AsyncEngine, checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """``checkpoints`` with the stored cosignatures of their note texts, newest per witness."""
    if not checkpoints:
        return []
    cosigned = audit_checkpoints.join(
        audit_cosignatures, audit_cosignatures.c.checkpoint_id == audit_checkpoints.c.id
    )
    async with db.connect() as connection:
        rows = await connection.execute(
            sa.select(
                audit_checkpoints.c.origin,
                audit_checkpoints.c.tree_size,
                audit_checkpoints.c.root_hash,
                audit_cosignatures.c.witness,
                audit_cosignatures.c.signature_line,
            )
            .select_from(cosigned)
            .where(audit_checkpoints.c.tree_size.in_({c.tree_size for c in checkpoints}))
            .order_by(audit_cosignatures.c.id.desc())
        )
        newest: dict[tuple[str, int, str], dict[str, str]] = {}
        for row in rows:
            text = (row.origin, row.tree_size, row.root_hash)
            newest.setdefault(text, {}).setdefault(row.witness, row.signature_line)
    return [_cosigned(checkpoint, newest) for checkpoint in checkpoints]


def _cosigned(
    checkpoint: Checkpoint, newest: dict[tuple[str, int, str], dict[str, str]]
) -> Checkpoint:
    lines = newest.get((checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash.hex()), {})
    cosignatures = tuple(_stored(line) for _, line in sorted(lines.items()))
    return msgspec.structs.replace(checkpoint, cosignatures=cosignatures)


async def add_cosignatures(
    db: AsyncEngine,
    appender: AuditAppender,
    origin: str,
    witnesses: Sequence[WitnessKey],
    tree_size: int,
    body: str,
) -> Checkpoint:
    """Verify and store the cosignature lines in ``body`` for the checkpoint at ``tree_size``.

    Every line must be a valid cosignature, by a witness in ``witnesses``, of a checkpoint of
    that size this log signed; otherwise nothing is stored.

    Raises:
        NotFound: no checkpoint of that size was signed.
        InvalidInput: naming the line and what is wrong with it.
    """
    lines = body.strip("\n").split("\n")
    if not body.strip():
        raise InvalidInput("body", "expected one or more cosignature lines")
    checkpoints = await _checkpoints_of_size(db, origin, tree_size)
    if not checkpoints:
        raise NotFound(f"no checkpoint of size {tree_size} has been signed", tree_size=tree_size)
    accepted = [
        _accept(line, f"line {number}", witnesses, checkpoints, tree_size)
        for number, line in enumerate(lines, start=1)
    ]

    async def store(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
        for checkpoint_id, cosignature in accepted:
            await _store(connection, checkpoint_id, cosignature)
        return None, []

    await appender.commit(store)
    for _, cosignature in accepted:
        log.info("audit.cosigned", tree_size=tree_size, witness=cosignature.witness)
    [cosigned] = await with_cosignatures(db, [checkpoints[accepted[0][0]]])
    return cosigned


def _accept(
    line: str,
    field: str,
    witnesses: Sequence[WitnessKey],
    checkpoints: dict[int, Checkpoint],
    tree_size: int,
) -> tuple[int, Cosignature]:
    try:
        signature = parse_signature_line(line)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None
    witness = _witness_for(signature, witnesses, field)
    for checkpoint_id, checkpoint in checkpoints.items():
        text, _ = split_note(checkpoint.note)
        try:
            cosignature = open_cosignature(signature, text, witness)
        except ValueError:
            continue
        if cosignature.timestamp > time.time() + MAX_CLOCK_SKEW_SECONDS:
            raise InvalidInput(field, f"the cosignature by {witness.name} is dated in the future")
        return checkpoint_id, cosignature
    raise InvalidInput(
        field,
        f"the cosignature by witness {witness.name} does not verify against the checkpoint "
        f"of size {tree_size}",
    )


def _witness_for(
    signature: NoteSignature, witnesses: Sequence[WitnessKey], field: str
) -> WitnessKey:
    for witness in witnesses:
        if witness.name == signature.name and witness.key_id == signature.key_id:
            return witness
    if not witnesses:
        raise InvalidInput(field, "this service accepts no witnesses (ORDER3_AUDIT_WITNESSES)")
    raise InvalidInput(
        field,
        f"no accepted witness named {signature.name} with key ID {signature.key_id.hex()}",
    )


async def _checkpoints_of_size(
    db: AsyncEngine, origin: str, tree_size: int
) -> dict[int, Checkpoint]:
    """The checkpoints of ``tree_size``, newest first, by id; one per distinct root."""
    async with db.connect() as connection:
        rows = await connection.execute(
            sa.select(audit_checkpoints)
            .where(audit_checkpoints.c.origin == origin, audit_checkpoints.c.tree_size == tree_size)
            .order_by(audit_checkpoints.c.id.desc())
        )
        found: dict[int, Checkpoint] = {}
        roots: set[str] = set()
        for row in rows:
            if row.root_hash not in roots:
                roots.add(row.root_hash)
                found[row.id] = Checkpoint(
                    origin=row.origin,
                    tree_size=row.tree_size,
                    root_hash=bytes.fromhex(row.root_hash),
                    note=row.note,
                    key_id=row.key_id,
                    created_at=row.created_at,
                )
        return found


async def _store(connection: AsyncConnection, checkpoint_id: int, cosignature: Cosignature) -> None:
    where = sa.and_(
        audit_cosignatures.c.checkpoint_id == checkpoint_id,
        audit_cosignatures.c.witness == cosignature.witness,
    )
    values = {"signature_line": cosignature.signature_line, "created_at": utc_timestamp()}
    updated = await connection.execute(audit_cosignatures.update().where(where).values(values))
    if updated.rowcount == 0:
        await connection.execute(
            audit_cosignatures.insert().values(
                checkpoint_id=checkpoint_id, witness=cosignature.witness, **values
            )
        )


def _stored(line: str) -> Cosignature:
    """A cosignature as stored: verified when it was accepted."""
    signature = parse_signature_line(line)
    timestamp = int.from_bytes(signature.signature[:8], "big")
    return Cosignature(witness=signature.name, timestamp=timestamp, signature_line=line)
