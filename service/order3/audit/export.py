"""Audit log exports, and their verification with no database and no network.

An export is JSON Lines. The first line is a checkpoint; then come the records it covers,
from sequence number 1 in order:

    {"type": "checkpoint", "origin": ..., "tree_size": N, "root_hash": ..., "note": ...}
    {"type": "record", "seq": 1, "hash": ..., "signature": ..., "key_id": ..., "body": ...}

``body`` is the record's RFC 8785 text exactly as stored. Verifying an export checks every
record as ``docs/audit-format.md`` section 5 says, rebuilds the Merkle root as it goes and
compares it with the checkpoint's signed root, and, given an earlier checkpoint, checks that
the records it covered are still the same ones.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.checkpoints import Checkpoint, open_checkpoint
from order3.audit.excerpt import verify_excerpt
from order3.audit.merkle import StreamingRoot, leaf_hash
from order3.audit.verify import ChainVerifier, Failure, StoredRecord
from order3.audit.witness import WitnessKey, verify_cosignatures


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return (
        msgspec.json.encode(
            {
                "type": "checkpoint",
                "origin": checkpoint.origin,
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root_hash.hex(),
                "key_id": checkpoint.key_id,
                "created_at": checkpoint.created_at,
                "note": checkpoint.cosigned_note,
            }
        )
        + b"\n"
    )


def record_line(record: StoredRecord) -> bytes:
    return msgspec.json.encode({"type": "record", **msgspec.structs.asdict(record)}) + b"\n"


class ExportReport(msgspec.Struct, frozen=True, kw_only=True):
    records: int
    tree_size: int | None
    root_hash: str | None
    failure: Failure | None = None
    problem: str | None = None
    """What is wrong with the export as a whole (checkpoint, size, root, earlier checkpoint)."""

    @property
    def ok(self) -> bool:
        return self.failure is None and self.problem is None


def verify_export(
    lines: Iterable[bytes],
    keys: Mapping[str, Ed25519PublicKey],
    log_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    *,
    earlier_note: str | None = None,
    witnesses: Sequence[WitnessKey] = (),
    jobs: int = 1,
) -> ExportReport:
    """Verify an export read line by line; memory does not grow with the log.

    ``keys`` are the record keys to trust, by key id; ``log_key`` is the key, or the keys,
    one of which must have signed the checkpoint (every key the log used, when it rotated).
    Each of ``witnesses`` must have cosigned the checkpoint. ``earlier_note`` is a
    checkpoint the caller saw before. ``jobs`` worker processes check the records (see
    `ChainVerifier`).
    """
    entries = _parse(lines)
    first = next(entries, None)
    if first is None or first.get("type") != "checkpoint":
        return ExportReport(
            records=0,
            tree_size=None,
            root_hash=None,
            problem="the export does not start with a checkpoint",
        )
    origin, note = str(first.get("origin", "")), str(first.get("note", ""))
    log_keys = [log_key] if isinstance(log_key, Ed25519PublicKey) else list(log_key)
    try:
        size, root = open_checkpoint(note, origin, log_keys)
        verify_cosignatures(note, witnesses)
        earlier = None if earlier_note is None else open_checkpoint(earlier_note, origin, log_keys)
    except ValueError as exc:
        return ExportReport(records=0, tree_size=None, root_hash=None, problem=str(exc))

    entries = _records_ahead(entries)
    first_record = next(entries, None)
    if first_record is not None and "proof" in first_record:
        if earlier is not None:
            return ExportReport(
                records=0,
                tree_size=size,
                root_hash=root.hex(),
                problem="an earlier checkpoint is checked against an export of the whole log, "
                "and this one is filtered",
            )
        return _verify_filtered(itertools.chain([first_record], entries), keys, size, root)
    entries = itertools.chain([first_record] if first_record is not None else [], entries)
    chain, tree, earlier_root = ChainVerifier(keys, jobs=jobs), StreamingRoot(), None
    for entry in entries:
        if entry.get("type") != "record":
            continue
        record = msgspec.convert({k: v for k, v in entry.items() if k != "type"}, StoredRecord)
        if not chain.feed(record):
            break
        tree.append(leaf_hash(record.body.encode()))
        if earlier is not None and tree.size == earlier[0]:
            earlier_root = tree.root()
    report = chain.report()
    problem = _compare(report.failure, tree, size, root, earlier, earlier_root)
    return ExportReport(
        records=report.records,
        tree_size=size,
        root_hash=root.hex(),
        failure=report.failure,
        problem=problem,
    )


def _compare(
    failure: Failure | None,
    tree: StreamingRoot,
    size: int,
    root: bytes,
    earlier: tuple[int, bytes] | None,
    earlier_root: bytes | None,
) -> str | None:
    if failure is not None:
        return None
    if tree.size != size:
        return f"the checkpoint covers {size} records, the export holds {tree.size}"
    if tree.root() != root:
        return "the records do not hash to the checkpoint's root"
    if earlier is not None and earlier_root != earlier[1]:
        return (
            f"the first {earlier[0]} records are not those of the earlier checkpoint: "
            "the log was rewritten or truncated"
        )
    return None


def _records_ahead(entries: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The record lines of ``entries``, skipping the lines before them that are no record."""
    return (entry for entry in entries if entry.get("type") == "record")


def _verify_filtered(
    entries: Iterable[dict[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    size: int,
    root: bytes,
) -> ExportReport:
    report = verify_excerpt(entries, keys, size, root)
    return ExportReport(
        records=report.records, tree_size=size, root_hash=root.hex(), failure=report.failure
    )


def _parse(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                yield value
