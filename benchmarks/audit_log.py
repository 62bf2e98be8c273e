"""The audit log at scale: appends, full verification and proofs over a million records.

For each database the benchmark

1. appends through the real `AuditAppender` from many concurrent tasks for a while, one
   decision-sized record per call, as the service does;
2. fills the log up to ``--records`` by sealing the same kind of record with the real
   `seal` (hashes, Ed25519 signatures, chain) and inserting them in bulk, which is faster
   than the appender and produces exactly the rows it writes;
3. verifies the whole log (RFC 8785 form, hash, signature, continuity, Merkle root) from the
   database and from an export file, with one process and with one per available core;
4. times inclusion and consistency proofs at full size with a cold and a warm leaf cache;
5. prints peak memory (this process, and the largest worker process).

    .venv/bin/python benchmarks/audit_log.py [--records 1000000] [--databases postgresql,sqlite]

PostgreSQL comes from ``--database-url`` or a throwaway cluster started from the local server
binaries (as the test suite does).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from order3.audit.appender import AuditAppender, _record_row  # noqa: E402
from order3.audit.checkpoints import Checkpoint  # noqa: E402
from order3.audit.export import checkpoint_line, record_line, verify_export  # noqa: E402
from order3.audit.merkle import StreamingRoot, leaf_hash  # noqa: E402
from order3.audit.records import AuditEntry, ChainHead, seal  # noqa: E402
from order3.audit.signing import SigningKey  # noqa: E402
from order3.audit.verify import ChainVerifier, StoredRecord, available_cores  # noqa: E402
from order3.logging import configure_logging  # noqa: E402
from order3.storage.database import create_engine, migrate  # noqa: E402
from order3.storage.repositories import stream_audit_records  # noqa: E402
from order3.storage.schema import audit_chain_head, audit_records  # noqa: E402
from order3.workflow.audit_log import AuditLog  # noqa: E402
from support.servers import PostgresServer  # noqa: E402

console = Console(stderr=True)
FILL_CHUNK = 5000


@dataclass
class Figures:
    database: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        console.print(f"  {name}: [bold]{value}[/]")


def entry(n: int) -> AuditEntry:
    """A ``draft.submitted`` record with its decision, as the service writes (~1.3 kB)."""
    draft = {
        "id": f"drf_{n:026d}",
        "kind": "purchase_order",
        "status": "pending",
        "requester": {"id": "prn_bot", "type": "agent"},
        "payload": {
            "supplier_id": "sup_1",
            "location_id": "loc_1",
            "currency": "USD",
            "lines": [
                {
                    "sku": f"SKU-{n % 97}",
                    "quantity": 1 + n % 50,
                    "unit_cost": {"minor_units": 12500, "currency": "USD"},
                }
            ],
        },
        "rationale": "Below reorder point.",
        "affected_records": [{"type": "item", "id": f"SKU-{n % 97}"}],
        "approval_owner": "prn_mia",
    }
    decision_input = {
        "action": "submit",
        "draft": draft,
        "actor": {"id": "prn_bot", "type": "agent", "roles": ["requester"]},
        "approval": None,
        "approvals": [],
        "context": {"now": "2026-01-01T00:00:00.000000Z"},
    }
    result = {
        "allow": True,
        "outcome": "allowed",
        "reasons": [{"rule": "submit.accepted", "message": "The draft awaits approval."}],
        "required": [{"role": "manager", "count": 1}],
    }
    return AuditEntry(
        workspace_id="wsp_bench",
        actor={"id": "prn_bot", "type": "agent"},
        action="draft.submitted",
        subject={"type": "draft", "id": draft["id"]},
        outcome="allowed",
        decision={
            "id": f"dec_{n:026d}",
            "input": decision_input,
            "result": result,
            "rules": ["submit.accepted"],
            "engine": "opa",
            "policy_revision": "rev_bench",
            "decision_id": None,
        },
    )


def progress(label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def head(db: AsyncEngine) -> ChainHead:
    async with db.connect() as connection:
        row = (await connection.execute(sa.select(audit_chain_head))).one()
    return ChainHead(row.seq, row.hash)


async def append_sample(
    db: AsyncEngine, key: SigningKey, tasks: int, seconds: float, figures: Figures
) -> None:
    appender = AuditAppender(db, key)
    await appender.start()
    counter = itertools.count()
    stop_at = time.perf_counter() + seconds

    async def task() -> int:
        done = 0
        while time.perf_counter() < stop_at:
            await appender.record([entry(next(counter))])
            done += 1
        return done

    started = time.perf_counter()
    try:
        appended = sum(await asyncio.gather(*(task() for _ in range(tasks))))
    finally:
        await appender.stop()
    elapsed = time.perf_counter() - started
    figures.add(
        f"append through AuditAppender ({tasks} tasks, {seconds:.0f} s)",
        f"{appended} records, {appended / elapsed:,.0f} records/s",
    )


async def fill(db: AsyncEngine, key: SigningKey, records: int, figures: Figures) -> None:
    """Seal with the real `seal` and insert in bulk until the log holds ``records``."""
    chain = await head(db)
    missing = records - chain.seq
    if missing <= 0:
        return
    started = time.perf_counter()
    with progress("sealing and inserting") as bar:
        task = bar.add_task("fill", total=missing)
        for first in range(chain.seq, records, FILL_CHUNK):
            entries = [entry(n) for n in range(first, min(first + FILL_CHUNK, records))]
            sealed = list(seal(entries, chain, key))
            async with db.begin() as connection:
                await connection.execute(
                    audit_records.insert(),
                    [_record_row(e, r) for e, r in zip(entries, sealed, strict=True)],
                )
                await connection.execute(
                    audit_chain_head.update()
                    .where(audit_chain_head.c.id == 1)
                    .values(seq=sealed[-1].seq, hash=sealed[-1].hash)
                )
            chain = ChainHead(sealed[-1].seq, sealed[-1].hash)
            bar.advance(task, len(sealed))
    elapsed = time.perf_counter() - started
    figures.add(
        "fill by seal + bulk insert (not the appender)",
        f"{missing:,} records in {elapsed:,.0f} s, {missing / elapsed:,.0f} records/s",
    )


async def verify_database(
    db: AsyncEngine, keys: dict[str, Any], jobs: int, expected_root: bytes
) -> tuple[int, float]:
    """What ``order3 audit verify`` does, plus the Merkle root, which it must match."""
    started = time.perf_counter()
    tree = StreamingRoot()
    with ChainVerifier(keys, jobs=jobs) as verifier, progress(f"verify db, jobs={jobs}") as bar:
        task = bar.add_task("verify", total=None)
        async for record in stream_audit_records(db):
            if not verifier.feed(record):
                break
            tree.append(leaf_hash(record.body.encode()))
            if record.seq % FILL_CHUNK == 0:
                bar.update(task, completed=record.seq)
        report = verifier.report()
    elapsed = time.perf_counter() - started
    if not report.ok or tree.root() != expected_root:
        raise RuntimeError(f"the log did not verify: {report}")
    return report.records, elapsed


async def write_export(db: AsyncEngine, checkpoint: Checkpoint, path: Path) -> None:
    with path.open("wb") as out, progress("exporting") as bar:
        task = bar.add_task("export", total=checkpoint.tree_size)
        out.write(checkpoint_line(checkpoint))
        async for record in records_up_to(db, checkpoint.tree_size):
            out.write(record_line(record))
            if record.seq % FILL_CHUNK == 0:
                bar.update(task, completed=record.seq)


async def records_up_to(db: AsyncEngine, size: int) -> AsyncIterator[StoredRecord]:
    async for record in stream_audit_records(db):
        if record.seq > size:
            return
        yield record


def verify_file(path: Path, key: SigningKey, jobs: int) -> tuple[int, float]:
    started = time.perf_counter()
    with path.open("rb") as lines:
        report = verify_export(lines, {key.key_id: key.public_key}, key.public_key, jobs=jobs)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the export did not verify: {report}")
    return report.records, elapsed


def rate(name: str, records: int, elapsed: float, jobs: int, figures: Figures) -> None:
    per_second = records / elapsed
    figures.add(
        f"{name}, jobs={jobs}",
        f"{records:,} records in {elapsed:,.1f} s: {per_second:,.0f} records/s, "
        f"{per_second / jobs:,.0f} per core",
    )


async def proofs(log: AuditLog, size: int, samples: int, figures: Figures) -> None:
    """Proof sizes and times at ``size``; ``log`` has read nothing yet (a cold cache)."""
    started = time.perf_counter()
    await log.inclusion_proof_for(size // 3, size)
    figures.add(
        "inclusion proof, cold cache (reads every leaf)", f"{time.perf_counter() - started:.2f} s"
    )
    seqs = [1 + (n * 7919) % size for n in range(samples)]
    started = time.perf_counter()
    sizes = [len(await log.inclusion_proof_for(seq, size)) for seq in seqs]
    warm = (time.perf_counter() - started) / samples
    figures.add(
        f"inclusion proof, warm cache (mean of {samples})",
        f"{warm * 1e6:,.0f} µs; {min(sizes)}-{max(sizes)} hashes, {32 * max(sizes)} bytes at most",
    )
    started = time.perf_counter()
    answer = await log.consistency(size // 2 + 1, size)
    figures.add(
        f"consistency proof {size // 2 + 1} -> {size}, warm (with its size query)",
        f"{(time.perf_counter() - started) * 1e3:.2f} ms; {len(answer['proof'])} hashes, "
        f"{32 * len(answer['proof'])} bytes",
    )
    started = time.perf_counter()
    answer = await log.inclusion("wsp_bench", size - 1, size)
    figures.add(
        "inclusion proof through AuditLog.inclusion, warm (with its queries)",
        f"{(time.perf_counter() - started) * 1e3:.2f} ms",
    )


async def bench(url: str, name: str, args: argparse.Namespace, workdir: Path) -> Figures:
    figures = Figures(name)
    db = create_engine(url)
    key = SigningKey(Ed25519PrivateKey.generate())
    keys = {key.key_id: key.public_key}
    try:
        await migrate(db)
        console.print(f"[bold]{name}[/]: {args.records:,} records")
        await append_sample(db, key, args.appenders, args.append_seconds, figures)
        await fill(db, key, args.records, figures)
        appender = AuditAppender(db, key)
        log = AuditLog(db, appender, key, "bench/audit")
        await proofs(log, (await head(db)).seq, args.proof_samples, figures)
        await appender.start()
        try:
            checkpoint = await log.sign_checkpoint()
        finally:
            await appender.stop()
        for jobs in sorted({1, args.jobs}):
            records, elapsed = await verify_database(db, keys, jobs, checkpoint.root_hash)
            rate("verify from the database", records, elapsed, jobs, figures)
        export = workdir / f"{name}.jsonl"
        await write_export(db, checkpoint, export)
        figures.add("export file", f"{export.stat().st_size / 2**20:,.0f} MiB")
        for jobs in sorted({1, args.jobs}):
            records, elapsed = verify_file(export, key, jobs)
            rate("verify an export file", records, elapsed, jobs, figures)
        export.unlink()
    finally:
        await db.dispose()
    return figures


def peak_memory() -> Iterator[tuple[str, str]]:
    # Only this process: a spawned worker's own figure includes the parent it was forked from.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    yield "peak RSS, this process", f"{own:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--databases", default="postgresql", help="postgresql,sqlite")
    parser.add_argument("--database-url", help="a PostgreSQL URL instead of a throwaway one")
    parser.add_argument("--append-seconds", type=float, default=20)
    parser.add_argument("--appenders", type=int, default=64, help="concurrent appending tasks")
    parser.add_argument("--jobs", type=int, default=available_cores())
    parser.add_argument("--proof-samples", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("warning", "console")

    results: list[Figures] = []
    with TemporaryDirectory(prefix="order3-bench-audit-") as tmp:
        for name in args.databases.split(","):
            if name == "postgresql":
                with PostgresServer() as postgres:
                    url = args.database_url or postgres.create_database("bench_audit")
                    results.append(asyncio.run(bench(url, name, args, Path(tmp))))
            else:
                url = f"sqlite:///{Path(tmp) / 'audit.db'}"
                results.append(asyncio.run(bench(url, name, args, Path(tmp))))
    table = Table(title=f"audit log, {args.records:,} records, {available_cores()} cores")
    table.add_column("database")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    for figures in results:
        for measure, value in figures.rows:
            table.add_row(figures.database, measure, value)
    for measure, value in peak_memory():
        table.add_row("", measure, value)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
