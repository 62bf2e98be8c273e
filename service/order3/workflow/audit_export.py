"""Writing audit exports: the whole log or a filtered part of it, as JSON Lines or CSV.

A JSON Lines export starts with the checkpoint it is verified against and the policy
revisions its decisions name, then its records in sequence order. An export of the whole log
is checked as a chain and by rebuilding the checkpoint's root. A filtered export (one
workspace, one actor, one rule...) skips records, so each of its records carries its RFC 9162
inclusion proof against the checkpoint instead; ``docs/audit-format.md`` section 7 says how
both are verified.

CSV is for spreadsheets: one row per record with the columns an auditor sorts and filters
on, and the signed body in the last column. Cells that a spreadsheet would read as a formula
are prefixed with an apostrophe.

Everything is produced page by page, so memory does not grow with the size of the export.
"""

from __future__ import annotations

import base64
import csv
import enum
import io
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from order3.audit.checkpoints import Checkpoint
from order3.audit.export import checkpoint_line
from order3.storage.repositories import AnyRow, AuditFilter, query_audit
from order3.storage.revisions import revision_lines
from order3.workflow.audit_log import AuditLog

_PAGE = 2000

CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "workspace_id",
    "actor_type",
    "actor_id",
    "action",
    "subject_type",
    "subject_id",
    "draft_id",
    "outcome",
    "rules",
    "policy_revision",
    "decision_id",
    "hash",
    "signature",
    "key_id",
    "body",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(enum.StrEnum):
    JSONL = "jsonl"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        return "application/x-ndjson" if self is ExportFormat.JSONL else "text/csv"


def is_whole_log(where: AuditFilter) -> bool:
    """Whether ``where`` selects every record, so the export is checked as a chain."""
    return not any(msgspec.structs.astuple(where))


class ExportChunk(msgspec.Struct, frozen=True):
    data: bytes
    records: int
    """How many records ``data`` holds, for progress reports."""


async def export_chunks(
    audit_log: AuditLog,
    db: AsyncEngine,
    checkpoint: Checkpoint,
    where: AuditFilter,
    fmt: ExportFormat,
) -> AsyncIterator[ExportChunk]:
    """The export of the records ``where`` selects among the ``checkpoint``'s, in order."""
    with_proofs = not is_whole_log(where)
    if fmt is ExportFormat.JSONL:
        yield ExportChunk(checkpoint_line(checkpoint), 0)
        async for line in revision_lines(db, checkpoint.tree_size):
            yield ExportChunk(line, 0)
    else:
        yield ExportChunk(_csv_row(CSV_COLUMNS), 0)
    async for rows in _pages(db, where, checkpoint.tree_size):
        if fmt is ExportFormat.CSV:
            data = b"".join(_csv_row(_csv_cells(row)) for row in rows)
        else:
            lines = []
            for row in rows:
                proof = None
                if with_proofs:
                    proof = await audit_log.inclusion_proof_for(row.seq, checkpoint.tree_size)
                lines.append(_record_line(row, proof))
            data = b"".join(lines)
        yield ExportChunk(data, len(rows))


async def _pages(db: AsyncEngine, where: AuditFilter, upto: int) -> AsyncIterator[list[AnyRow]]:
    after = 0
    while True:
        async with db.connect() as connection:
            rows = await query_audit(connection, where, after=after, limit=_PAGE)
        rows = [row for row in rows if row.seq <= upto]
        if rows:
            yield rows
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


def _record_line(row: AnyRow, proof: list[bytes] | None) -> bytes:
    line: dict[str, Any] = {
        "type": "record",
        "seq": row.seq,
        "body": row.body,
        "hash": row.hash,
        "signature": row.signature,
        "key_id": row.key_id,
    }
    if proof is not None:
        line["proof"] = [base64.b64encode(node).decode() for node in proof]
    return msgspec.json.encode(line) + b"\n"


def _csv_cells(row: AnyRow) -> list[Any]:
    decision = msgspec.json.decode(row.body).get("decision") or {}
    values = {
        **row._mapping,
        "rules": " ".join(decision.get("rules") or ()),
    }
    return [values[column] for column in CSV_COLUMNS]


def _csv_row(cells: tuple[Any, ...] | list[Any]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerow([_spreadsheet_safe(c) for c in cells])
    return text.getvalue().encode()


def _spreadsheet_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
