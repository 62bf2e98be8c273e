"""The decisions benchmark's open loop offers its whole rate and counts a backlog as latency,
so a slow service cannot make its own figures look better by slowing the load down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from support.benchmarks import load_benchmark


def test_an_open_loop_starts_every_offered_step() -> None:
    """4 clients offered 40 steps a second for a second start 40 steps, each client its own
    share, whatever the steps cost."""
    benchmark = load_benchmark("decisions")
    started: list[int] = []

    async def step(_session: Any, n: int) -> list[float]:
        started.append(n // benchmark.CLIENT_STRIDE)
        return [1.0]

    run = asyncio.run(benchmark.drive(4, 1.0, step, "fixed", loops_per_second=40))

    assert len(run.latencies_ms) == 40
    assert sorted(started.count(client) for client in range(4)) == [10, 10, 10, 10]
    assert 0.95 <= run.elapsed < 1.5


def test_a_step_that_starts_late_counts_the_wait() -> None:
    """One client offered a step every 50 ms, each taking 100 ms, falls further behind with
    every step; the closed loop with the same step just runs fewer of them."""
    benchmark = load_benchmark("decisions")

    async def slow_step(_session: Any, _n: int) -> list[float]:
        began = time.perf_counter()
        await asyncio.sleep(0.1)
        return [(time.perf_counter() - began) * 1000]

    open_run = asyncio.run(benchmark.drive(1, 0.5, slow_step, "open", loops_per_second=20))
    closed_run = asyncio.run(benchmark.drive(1, 0.5, slow_step, "closed"))

    assert len(open_run.latencies_ms) == 10
    first, last = open_run.latencies_ms[0], open_run.latencies_ms[-1]
    assert first < 150
    assert last - first >= 350  # the ninth step starts about 450 ms after its slot
    assert len(closed_run.latencies_ms) <= 6
    assert max(closed_run.latencies_ms) < 250
