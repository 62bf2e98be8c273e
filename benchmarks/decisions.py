"""Decisions per second through the service, next to the same decisions asked of OPA directly.

For each database, the benchmark starts an OPA sidecar and ``order3 serve`` processes on
loopback (each client keeps to one process, as a load balancer would spread them), then
drives N concurrent clients, each looping submit -> approve -> execute (three decisions) for a
fixed time. It then replays the very decision inputs the service recorded, with the same
number of clients, along two shorter paths:

- the **decision core** (``benchmarks/decision_core.py``): one process that asks OPA through
  the service's policy engine and commits one signed audit record per decision through the
  service's audit appender, with no tokens, drafts or context reads;
- **OPA directly**, through its REST API.

So the service's overhead shows as a ratio to OPA, and the draft workflow's own cost as the
gap to the decision core.

That closed loop measures the most the service sustains; its latency is then mostly time
spent queueing. ``--rate`` offers a fixed number of decisions a second instead (an open
loop), and the latency it prints is what a client sees at that load; give several rates to
find the highest whose p99 stays under a bound. On Linux the benchmark also prints the CPU
time each kind of process (the service or decision core, OPA, PostgreSQL, this load
generator) spent per decision on each path; every process of that kind on the machine counts.

    .venv/bin/python benchmarks/decisions.py [--clients 32] [--seconds 20] [--processes 2]
        [--rate 60,120,180]

PostgreSQL comes from ``--postgres-url`` or a throwaway cluster started from the local server
binaries (as the test suite does), reached through its Unix socket as a service on the same
machine would be. Each workspace is loaded with the demo inventory, since drafts may only
name records that exist, and every executed order is placed in it. The OPA loads the
repository's policies with two thresholds raised (`BENCH_SETTINGS`): otherwise the
location's monthly budget and the agent's daily drafting cap would refuse the loop within
seconds, and the benchmark would measure refusals.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.servers import ORDER3, OpaServer, PostgresServer, order3_services  # noqa: E402

DECISION_CORE = [
    *(sys.executable, "-m", "uvicorn", "decision_core:create_app", "--factory"),
    *("--app-dir", str(REPO / "benchmarks"), "--log-level", "warning", "--no-access-log"),
]
"""The command that serves `decision_core` (given ``--port N``)."""

Step = Callable[[aiohttp.ClientSession, int], Awaitable[list[float]]]
"""One step of a client's loop (given its step number): the latencies of its requests, ms."""

CLIENT_STRIDE = 1_000_000  # step numbers are client * stride + iteration
DECISIONS_PER_LOOP = 3  # submit, approve, execute
BENCH_SETTINGS = {"location_budgets": "default", "agents": "daily_spend_limit"}
"""Settings raised to 10^15 minor units in every currency for the benchmark's OPA."""
console = Console(stderr=True)


class UnexpectedAnswer(Exception):
    """A request in the loop got an answer the benchmark did not expect."""


@dataclass
class Run:
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str = ""
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per decision, by component (`cpu_seconds`)."""

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


CPU_GROUPS = ("service", "OPA", "PostgreSQL", "load generator")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this machine's processes, by what they are: ``order3
    serve`` and decision core processes (as "service"), OPA servers, PostgreSQL processes
    and this load generator. Linux only (it reads /proc); empty elsewhere."""
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        program = Path(argv[0].decode(errors="replace")).name
        if int(entry.name) == os.getpid():
            group = "load generator"
        elif b"order3 serve" in b" ".join(argv) or b"decision_core:create_app" in argv:
            group = "service"
        elif program == "opa":
            group = "OPA"
        elif program.startswith("postgres"):
            group = "PostgreSQL"
        else:
            continue
        used[group] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return used


def create_workspace(env: dict[str, str]) -> str:
    """A new workspace with the demo inventory; its admin token."""
    out = subprocess.run(
        [str(ORDER3), "workspace", "create", "Bench", "--admin", "Ada"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    printed = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    workspace = printed["workspace"].strip()
    demo = [str(ORDER3), "demo", "load", "--workspace", workspace]
    subprocess.run(demo, env=env, capture_output=True, text=True, check=True)
    return printed["token"].strip()


def bench_policies(workdir: Path) -> Path:
    """A copy of policies/ whose budget and agent cap never bind (`BENCH_SETTINGS`)."""
    folder = workdir / "policies"
    shutil.copytree(REPO / "policies", folder, ignore=shutil.ignore_patterns("corpus"))
    data_file = folder / "settings" / "data.json"
    data = json.loads(data_file.read_text())
    for key, limits in BENCH_SETTINGS.items():
        data[key][limits] = {currency: 10**15 for currency in data[key][limits]}
    data_file.write_text(json.dumps(data))
    return folder


def member(base: str, admin: str, kind: str, name: str, roles: list[str]) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {admin}"}
    principal = httpx.post(
        f"{base}/v1/principals", headers=headers, json={"type": kind, "name": name, "roles": roles}
    ).json()
    token = httpx.post(
        f"{base}/v1/tokens", headers=headers, json={"principal_id": principal["id"], "label": name}
    ).json()
    return principal["id"], token["token"]


async def drive(
    clients: int,
    seconds: float,
    step: Step,
    label: str,
    loops_per_second: float | None = None,
) -> Run:
    """Run ``step`` in a loop on each client until time is up; gather per-decision latency.

    Without ``loops_per_second`` the loop is closed: each client starts its next step as soon
    as the last one answers, so the run measures the most the target sustains. With it the
    load is open: the clients together start that many steps a second on a fixed schedule,
    each client on its own slot, whether or not the target keeps up. A step that starts late,
    because its client was still busy with the one before, counts the wait in its first
    latency, so a backlog shows as latency instead of silently lowering the load.
    """
    run = Run(label)
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        stop_at = started + seconds
        # Slot k of the open loop starts at k / loops_per_second; client n takes the slots
        # n, n + clients, n + 2 * clients, ... Counting slots, rather than adding up periods,
        # keeps rounding from squeezing an extra slot in before the end.
        slots = round(seconds * loops_per_second) if loops_per_second else 0

        async def client(number: int) -> None:
            iteration = 0
            while True:
                if loops_per_second:
                    slot = number + iteration * clients
                    if slot >= slots:
                        return
                    scheduled = started + slot / loops_per_second
                    now = time.perf_counter()
                    if now < scheduled:
                        await asyncio.sleep(scheduled - now)
                    late_ms = max(0.0, time.perf_counter() - scheduled) * 1000
                elif time.perf_counter() < stop_at:
                    late_ms = 0.0
                else:
                    return
                try:
                    latencies = await step(session, number * CLIENT_STRIDE + iteration)
                    latencies[0] += late_ms
                    run.latencies_ms.extend(latencies)
                except UnexpectedAnswer as exc:
                    run.errors += 1
                    run.first_error = run.first_error or str(exc)[:300]
                iteration += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
        run.elapsed = time.perf_counter() - started
    return run


def service_step(bases: list[str], bot: str, mia: str, mia_id: str) -> Step:
    order = {
        "kind": "purchase_order",
        "payload": {
            "supplier_id": "sup_northwind",
            "location_id": "loc_main",
            "currency": "USD",
            "lines": [
                {
                    "sku": "SKU-0001",
                    "quantity": 10,
                    "unit_cost": {"minor_units": 12500, "currency": "USD"},
                }
            ],
        },
        "rationale": "Below reorder point.",
        "affected_records": [{"type": "item", "id": "SKU-0001"}],
        "approval_owner": mia_id,
    }
    as_bot = {"Authorization": f"Bearer {bot}"}
    as_mia = {"Authorization": f"Bearer {mia}"}
    approval = {"verdict": "approve", "role": "manager"}
    keys = itertools.count()
    run_id = os.urandom(6).hex()

    async def timed(
        session: aiohttp.ClientSession,
        base: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        expect: int,
    ) -> tuple[float, Any]:
        started = time.perf_counter()
        async with session.post(f"{base}{path}", json=body, headers=headers) as response:
            answer = await response.json()
            if response.status != expect:
                raise UnexpectedAnswer(answer)
        return (time.perf_counter() - started) * 1000, answer

    async def step(session: aiohttp.ClientSession, n: int) -> list[float]:
        base = bases[(n // CLIENT_STRIDE) % len(bases)]  # each client sticks to one process
        key = {"Idempotency-Key": f"{run_id}-{next(keys)}"}
        submit_ms, submitted = await timed(session, base, "/v1/drafts", as_bot | key, order, 201)
        draft = f"/v1/drafts/{submitted['draft']['id']}"
        approve_ms, _ = await timed(session, base, f"{draft}/approvals", as_mia, approval, 200)
        execute_ms, _ = await timed(session, base, f"{draft}/execute", as_mia, None, 200)
        return [submit_ms, approve_ms, execute_ms]

    return step


def recorded_inputs(base: str, admin: str, limit: int) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as client:
        while len(inputs) < limit:
            params: dict[str, Any] = {"limit": 500, "outcome": "allowed"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/audit", params=params).json()
            inputs += [
                item["record"]["decision"]["input"]
                for item in page["items"]
                if item["record"]["decision"]
            ]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return inputs[:limit]


def replay_step(
    url: str, inputs: list[dict[str, Any]], answered: Callable[[int, Any], bool]
) -> Step:
    """Post recorded decision inputs to ``url`` in turn, each as ``{"input": ...}``."""
    bodies = [json.dumps({"input": i}).encode() for i in inputs]
    headers = {"Content-Type": "application/json"}

    async def step(session: aiohttp.ClientSession, n: int) -> list[float]:
        started = time.perf_counter()
        async with session.post(url, data=bodies[n % len(bodies)], headers=headers) as response:
            answer = await response.json()
            if not answered(response.status, answer):
                raise UnexpectedAnswer(answer)
        return [(time.perf_counter() - started) * 1000]

    return step


def opa_answered(status: int, answer: Any) -> bool:
    return status == 200 and "result" in answer


def core_answered(status: int, answer: Any) -> bool:
    return status == 200 and answer.get("outcome") != "error"


PATHS = ("service", "decision core", "OPA directly")


def measured(
    clients: int, seconds: float, step: Step, label: str, rate: float | None, per_loop: int = 1
) -> Run:
    """One `drive`, with the CPU each kind of process spent per decision (`cpu_seconds`)."""
    before = cpu_seconds()
    loops = rate / per_loop if rate else None
    run = asyncio.run(drive(clients, seconds, step, label, loops))
    after = cpu_seconds()
    decided = len(run.latencies_ms) or 1
    run.cpu_ms = {group: 1000 * (after[group] - before[group]) / decided for group in after}
    if run.errors:
        console.print(f"  {label}: {run.errors} errors; first: {run.first_error}")
    return run


def bench_database(
    name: str, database_url: str | None, opa_url: str, args: argparse.Namespace, workdir: Path
) -> list[dict[str, Run]]:
    """One closed-loop run, or one open-loop run per offered rate: each through the service,
    then through the decision core and straight to OPA with the decision inputs the service
    recorded."""
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(workdir / name),
        "ORDER3_OPA_URL": opa_url,
        "ORDER3_LOG_LEVEL": "warning",
        "ORDER3_POLICY_REFRESH_SECONDS": "3600",
    }
    if database_url:
        env["ORDER3_DATABASE_URL"] = database_url
    admin = create_workspace(env)
    runs: list[dict[str, Run]] = [{} for _ in args.rates]
    with order3_services(env, args.processes) as bases:
        base = bases[0]
        mia_id, mia = member(base, admin, "user", "Mia", ["manager"])
        _, bot = member(base, admin, "agent", "bot", ["requester"])
        step = service_step(bases, bot, mia, mia_id)
        asyncio.run(drive(args.clients, 2, step, "warm-up"))
        for rate, by_path in zip(args.rates, runs, strict=True):
            offered = f"{rate:.0f}/s offered" if rate else "closed loop"
            console.print(f"[bold]{name}[/]: {args.clients} clients, {offered}, {args.seconds}s")
            by_path["service"] = measured(
                args.clients, args.seconds, step, "service", rate, DECISIONS_PER_LOOP
            )
        inputs = recorded_inputs(base, admin, 3000)
    with order3_services(env, 1, DECISION_CORE) as [core]:
        core_step = replay_step(f"{core}/decide", inputs, core_answered)
        asyncio.run(drive(args.clients, 2, core_step, "warm-up"))
        for rate, by_path in zip(args.rates, runs, strict=True):
            by_path["decision core"] = measured(
                args.clients, args.seconds, core_step, "decision core", rate
            )
    opa = replay_step(f"{opa_url}/v1/data/order3/decision", inputs, opa_answered)
    for rate, by_path in zip(args.rates, runs, strict=True):
        by_path["OPA directly"] = measured(args.clients, args.seconds, opa, "OPA directly", rate)
    verify = subprocess.run(
        [str(ORDER3), "audit", "verify"], env=env, capture_output=True, text=True
    )
    console.print(f"  audit verify: {(verify.stdout or verify.stderr).strip()}")
    return runs


def offered_rates(text: str) -> list[float]:
    """``--rate`` values: decisions a second, comma-separated; none means a closed loop."""
    rates = [float(part) for part in text.split(",") if part.strip()] if text else []
    if any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates are decisions per second, above zero")
    return rates or [0.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--processes", type=int, default=2, help="service processes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("ORDER3_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--rate",
        dest="rates",
        type=offered_rates,
        default=[0.0],
        help="offer this many decisions a second (open loop) instead of as many as are "
        "answered; comma-separate several to run each in turn",
    )
    args = parser.parse_args()

    table = Table(title=f"decisions a second, {args.clients} clients")
    for column in ["database", "offered/s", "path", "processes", "decisions/s", "p50 ms"]:
        table.add_column(column, justify="right")
    for column in ["p99 ms", "errors", "of OPA directly"]:
        table.add_column(column, justify="right")
    cpu = Table(title="CPU ms per decision, by process, on this machine")
    for column in ["database", "offered/s", "path", *CPU_GROUPS, "total"]:
        cpu.add_column(column, justify="right")
    with TemporaryDirectory(prefix="order3-bench-") as tmp, OpaServer() as opa:
        opa.start(bench_policies(Path(tmp)))
        for name in args.databases.split(","):
            if name == "postgresql":
                with PostgresServer() as postgres:
                    url = args.postgres_url or postgres.over_unix_socket(
                        postgres.create_database("bench")
                    )
                    runs = bench_database(name, url, opa.url, args, Path(tmp))
            else:
                runs = bench_database(name, None, opa.url, args, Path(tmp))
            for rate, by_path in zip(args.rates, runs, strict=True):
                offered = f"{rate:.0f}" if rate else "closed"
                for path in PATHS:
                    run = by_path[path]
                    processes = args.processes if path == "service" else 1
                    table.add_row(
                        name,
                        offered,
                        path,
                        str(processes) if path != "OPA directly" else "",
                        f"{run.rate:.0f}",
                        f"{run.percentile(50):.1f}",
                        f"{run.percentile(99):.1f}",
                        str(run.errors),
                        f"{run.rate / by_path['OPA directly'].rate:.2f}",
                    )
                    if run.cpu_ms:
                        shares = [f"{run.cpu_ms[group]:.2f}" for group in CPU_GROUPS]
                        total = f"{sum(run.cpu_ms.values()):.2f}"
                        cpu.add_row(name, offered, path, *shares, total)
    Console(width=180).print(table)
    if cpu.row_count:
        Console(width=180).print(cpu)


if __name__ == "__main__":
    main()
