"""Verifying a filtered export: records that skip others, each with its inclusion proof.

A filtered export cannot be checked as a chain, since records between its records are left
out. Each of its records is checked on its own instead (canonical body, hash, signature, as
for the chain) and by its RFC 9162 inclusion proof against the signed checkpoint's root;
where two exported records are neighbours in the log, the later one must also name the
earlier one's hash as its previous hash. So every record shown is one the log holds, at the
position it claims. What the export cannot show is that no matching record was left out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.merkle import leaf_hash, verify_inclusion
from order3.audit.verify import Failure, StoredRecord, check_record


class ExcerptReport(msgspec.Struct, frozen=True, kw_only=True):
    records: int
    failure: Failure | None = None


def verify_excerpt(
    entries: Iterable[dict[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    size: int,
    root: bytes,
) -> ExcerptReport:
    """Check the record lines among ``entries`` against the checkpoint of ``size``/``root``."""
    count, previous = 0, None
    for entry in entries:
        if entry.get("type") != "record":
            continue
        seq = entry.get("seq")
        reason = _problem(entry, keys, size, root, previous)
        if reason is not None:
            return ExcerptReport(
                records=count,
                failure=Failure(seq=seq if isinstance(seq, int) else 0, reason=reason),
            )
        previous = (entry["seq"], entry["hash"])
        count += 1
    return ExcerptReport(records=count)


def _problem(
    entry: dict[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    size: int,
    root: bytes,
    previous: tuple[int, str] | None,
) -> str | None:
    try:
        record = msgspec.convert(entry, StoredRecord)
        proof = [base64.b64decode(node, validate=True) for node in entry.get("proof") or ()]
    except (msgspec.ValidationError, binascii.Error, TypeError):
        return "the record line is malformed"
    if "proof" not in entry:
        return "a record of a filtered export has no inclusion proof"
    if previous is not None and record.seq <= previous[0]:
        return f"records are out of order: {record.seq} follows {previous[0]}"
    if not 1 <= record.seq <= size:
        return f"the checkpoint covers records 1 to {size}"
    body = check_record(record, keys)
    if isinstance(body, str):
        return body
    if previous is not None and previous[0] == record.seq - 1 and body["prev_hash"] != previous[1]:
        return "previous hash does not match the record before it"
    if not verify_inclusion(leaf_hash(record.body.encode()), record.seq - 1, size, proof, root):
        return "the inclusion proof does not lead to the checkpoint's root"
    return None
