"""The audit log as a transparency log: signed checkpoints, inclusion and consistency proofs.

Leaves are the stored record bodies (their RFC 8785 bytes) in sequence order. Records never
change once written, so each process keeps the leaf hashes it has read, and the roots of the
complete subtrees they form, in a `MerkleTree`: a proof reads only the records appended since
the last one and costs O(log n) hashing; see ``order3.audit.merkle``.

XXX: a process therefore never rereads a record it has hashed. A record rewritten in the
database behind its back still breaks the proofs of every process that reads it afresh, and
``order3 audit verify``, but not those of a process that hashed it before the rewrite.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.checkpoints import Checkpoint, sign_checkpoint
from order3.audit.merkle import MerkleTree, leaf_hash
from order3.audit.records import AuditEntry, utc_timestamp
from order3.audit.signing import SigningKey
from order3.domain.errors import Conflict, InvalidInput, NotFound
from order3.storage.schema import audit_chain_head, audit_checkpoints, audit_records
from order3.workflow.witnessing import with_cosignatures

log = structlog.get_logger(__name__)

_PAGE = 5000


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class AuditLog:
    def __init__(
        self, db: AsyncEngine, appender: AuditAppender, key: SigningKey, origin: str
    ) -> None:
        self._db = db
        self._appender = appender
        self._key = key
        self.origin = origin
        self._tree = MerkleTree()
        self._tree_lock = asyncio.Lock()

    async def size(self) -> int:
        """How many records the log holds."""
        async with self._db.connect() as connection:
            return int((await connection.execute(sa.select(audit_chain_head.c.seq))).scalar_one())

    async def leaf_hashes(self, size: int) -> list[bytes]:
        """The leaf hashes of the first ``size`` records."""
        return (await self._tree_of(size)).leaves(size)

    async def inclusion_proof_for(self, seq: int, size: int) -> list[bytes]:
        """The inclusion proof of record ``seq`` in the log of ``size``, of any workspace.

        The caller checks the record may be shown. Once the log of ``size`` has been read,
        each call costs O(log size) hashing and no database access.

        Raises:
            InvalidInput: ``seq`` is not a record of the log of ``size``.
            Conflict: the log has fewer than ``size`` records.
        """
        if not 1 <= seq <= size:
            raise InvalidInput("seq", f"must be from 1 to {size}")
        return (await self._tree_of(size)).inclusion_proof(seq - 1, size)

    async def _tree_of(self, size: int) -> MerkleTree:
        """The cached tree, after reading whatever records it lacks up to ``size``."""
        if size > self._tree.size:
            async with self._tree_lock:
                await self._read_leaves(size)
        return self._tree

    async def _read_leaves(self, size: int) -> None:
        async with self._db.connect() as connection:
            while self._tree.size < size:
                rows = await connection.execute(
                    sa.select(audit_records.c.body)
                    .where(audit_records.c.seq > self._tree.size, audit_records.c.seq <= size)
                    .order_by(audit_records.c.seq)
                    .limit(_PAGE)
                )
                page = [leaf_hash(row.body.encode()) for row in rows]
                if not page:
                    raise Conflict(f"the log has fewer than {size} records")
                self._tree.extend(page)

    async def sign_checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of the log as it is now."""
        size = await self.size()
        if size == 0:
            raise Conflict("the audit log is empty")
        root = (await self._tree_of(size)).root(size)
        checkpoint = Checkpoint(
            origin=self.origin,
            tree_size=size,
            root_hash=root,
            note=sign_checkpoint(self.origin, size, root, self._key),
            key_id=self._key.key_id,
            created_at=utc_timestamp(),
        )

        async def store(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            await connection.execute(
                audit_checkpoints.insert(),
                {
                    "origin": checkpoint.origin,
                    "tree_size": checkpoint.tree_size,
                    "root_hash": checkpoint.root_hash.hex(),
                    "key_id": checkpoint.key_id,
                    "note": checkpoint.note,
                    "created_at": checkpoint.created_at,
                },
            )
            return None, []

        await self._appender.commit(store)
        log.info("audit.checkpoint_signed", tree_size=size, root_hash=root.hex())
        # Witnesses may have cosigned the same size and root already: their lines still hold.
        [cosigned] = await with_cosignatures(self._db, [checkpoint])
        return cosigned

    async def latest(self) -> Checkpoint | None:
        newest = await self.checkpoints(limit=1)
        return newest[0] if newest else None

    async def checkpoints(self, *, limit: int, below: int | None = None) -> list[Checkpoint]:
        """Stored checkpoints, largest tree first; ``below`` keeps those smaller than it."""
        query = sa.select(audit_checkpoints).order_by(
            audit_checkpoints.c.tree_size.desc(), audit_checkpoints.c.id.desc()
        )
        if below is not None:
            query = query.where(audit_checkpoints.c.tree_size < below)
        async with self._db.connect() as connection:
            rows = list(await connection.execute(query.limit(limit)))
        stored = [
            Checkpoint(
                origin=row.origin,
                tree_size=row.tree_size,
                root_hash=bytes.fromhex(row.root_hash),
                note=row.note,
                key_id=row.key_id,
                created_at=row.created_at,
            )
            for row in rows
        ]
        return await with_cosignatures(self._db, stored)

    async def inclusion(self, workspace_id: str, seq: int, size: int | None) -> dict[str, Any]:
        """The proof that record ``seq`` (of this workspace) is in the log of ``size``."""
        async with self._db.connect() as connection:
            owner = (
                await connection.execute(
                    sa.select(audit_records.c.workspace_id).where(audit_records.c.seq == seq)
                )
            ).one_or_none()
        if owner is None or owner.workspace_id != workspace_id:
            raise NotFound(f"no audit record {seq} in this workspace", seq=seq)
        size = size if size is not None else await self.size()
        if not seq <= size <= await self.size():
            raise InvalidInput("size", f"must be from {seq} to the log's size")
        tree = await self._tree_of(size)
        return {
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_hash": b64(tree.leaf(seq - 1)),
            "root_hash": b64(tree.root(size)),
            "proof": [b64(node) for node in tree.inclusion_proof(seq - 1, size)],
        }

    async def consistency(self, old_size: int, new_size: int) -> dict[str, Any]:
        """The proof that the log at ``new_size`` extends the log at ``old_size``."""
        if not 0 < old_size <= new_size:
            raise InvalidInput("from", "must be at least 1 and at most `to`")
        if new_size > await self.size():
            raise InvalidInput("to", "is beyond the log's size")
        tree = await self._tree_of(new_size)
        return {
            "from": old_size,
            "to": new_size,
            "from_root": b64(tree.root(old_size)),
            "to_root": b64(tree.root(new_size)),
            "proof": [b64(node) for node in tree.consistency_proof(old_size, new_size)],
        }
