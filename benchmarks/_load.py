"""Closed-loop load: N keep-alive connections, each sending its next request as soon as the last answer is in.

A measurement window opens after a warm-up; only requests completed inside the window count, and the
server's CPU time is sampled at the window's edges.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks._http import Client
from benchmarks._procs import ServerProcess, machine_busy_s
from benchmarks._sqs import Endpoint


@dataclass
class Window:
    """Shared state between the load workers and the coordinator."""

    recording: bool = False
    stopping: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    acknowledged: int = 0  # every 200 answer, warm-up and tail included (what the server has taken on)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    generator_cpu_s: float
    other_cpu_s: float
    db_cpu_s: float
    first_error: str
    acknowledged: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else 0.0


def own_cpu_s() -> float:
    """CPU seconds used by this (the generator's) process, to show how much of the 2 cores it took."""
    times = os.times()
    return times.user + times.system


def percentile_ms(sorted_ns: Sequence[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    index = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[index] / 1e6


async def _worker(endpoint: Endpoint, raw: bytes, window: Window) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    clock = time.perf_counter_ns
    record = window.latencies_ns.append
    try:
        while not window.stopping:
            t0 = clock()
            response = await client.request(raw)
            t1 = clock()
            if response.status == 200:
                window.acknowledged += 1
            if not window.recording:
                continue
            if response.status == 200:
                record(t1 - t0)
            else:
                window.errors += 1
                window.first_error = window.first_error or f"HTTP {response.status}: {response.body[:200]!r}"
    finally:
        client.close()


async def closed_loop(
    endpoints: Sequence[Endpoint],
    make_request: Callable[[Endpoint], bytes],
    servers: Sequence[ServerProcess],
    connections: int,
    duration_s: float,
    warmup_s: float,
    db_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    """Spread ``connections`` over ``endpoints`` round-robin and measure one window."""
    window = Window()
    raws = {ep: make_request(ep) for ep in endpoints}
    tasks = [
        asyncio.create_task(_worker(endpoints[i % len(endpoints)], raws[endpoints[i % len(endpoints)]], window))
        for i in range(connections)
    ]
    try:
        await asyncio.sleep(warmup_s)
        _raise_failed(tasks)
        db = db_cpu or (lambda: 0.0)
        cpu0, gen0, busy0, db0 = sum(s.cpu_s() for s in servers), own_cpu_s(), machine_busy_s(), db()
        t0 = time.perf_counter()
        window.recording = True
        await asyncio.sleep(duration_s)
        window.recording = False
        cpu1, gen1, busy1, db1 = sum(s.cpu_s() for s in servers), own_cpu_s(), machine_busy_s(), db()
        t1 = time.perf_counter()
        _raise_failed(tasks)
    finally:
        window.stopping = True
        await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()
    lat = sorted(window.latencies_ns)
    return LoadResult(
        requests=len(lat),
        errors=window.errors,
        elapsed_s=t1 - t0,
        p50_ms=percentile_ms(lat, 0.50),
        p99_ms=percentile_ms(lat, 0.99),
        server_cpu_s=cpu1 - cpu0,
        generator_cpu_s=gen1 - gen0,
        other_cpu_s=max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (gen1 - gen0) - (db1 - db0)),
        db_cpu_s=db1 - db0,
        first_error=window.first_error,
        acknowledged=window.acknowledged,
    )


def _raise_failed(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a load connection failed") from task.exception()
