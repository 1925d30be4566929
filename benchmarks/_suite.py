"""The scenarios from the product requirements, run in order against one backend, as report rows."""

from __future__ import annotations

import asyncio
import compileall
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import loosely
from benchmarks._cluster import Cluster, Node, start_reference
from benchmarks._http import Client
from benchmarks._load import LoadResult, closed_loop
from benchmarks._pgref import run_pg_reference
from benchmarks._pipeline import PipelineResult, run_pipeline
from benchmarks._procs import postgres_cpu_s
from benchmarks._profile import profiling
from benchmarks._report import Row, machine_rows
from benchmarks._sns import sns_call, sns_request
from benchmarks._snssuite import SNS_SCENARIOS, SnsRun, SnsSettings
from benchmarks._sqs import (
    Endpoint,
    call,
    create_queue,
    delete_queue,
    message_body,
    queue_depth,
    send_batch,
    send_message,
)
from benchmarks._wake import run_wake

ALL_SCENARIOS = ("send", "pipeline", "wake", "depth", "memory", *SNS_SCENARIOS)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    scenarios: frozenset[str]
    database: str | None
    nodes: tuple[int, ...]
    depth: int
    duration_s: float
    warmup_s: float
    connections: int
    pipeline_messages: int
    wake_samples: int
    server_argv: tuple[str, ...]
    data_root: Path
    log_dir: Path
    body_size: int = 256
    # (producers, consumers) levels: the pipeline runs at each and scores the best, the server's capacity
    pipeline_clients: tuple[tuple[int, int], ...] = ((4, 8), (8, 16), (16, 32))
    profile: Path | None = None
    depth_rounds: int = 2
    profile_scenario: str = "send"
    sns: SnsSettings = field(default_factory=SnsSettings)

    @property
    def backend(self) -> str:
        return "postgresql" if self.database else "sqlite"


@dataclass
class _Refs:
    """The reference app stays up (idle) all run, and is re-measured right before each loosely send load,
    so that each ratio compares two windows taken moments apart on a machine others may be loading."""

    node: Node
    send: LoadResult
    pg_rate: float | None


class Suite:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.rows: list[Row] = []
        self.run_id = uuid.uuid4().hex[:8]
        self.body = message_body(settings.body_size)

    async def run(self) -> list[Row]:
        _compile_loosely()
        node = await start_reference(self.s.log_dir)
        try:
            refs = await self._references(node)
            for index, nodes in enumerate(self.s.nodes):
                await self._run_cluster(refs, nodes, first=index == 0)
        finally:
            node.server.stop()
        return self.rows

    # -- references --------------------------------------------------------------------------------

    async def _references(self, node: Node) -> _Refs:
        send = await self._reference_send(node)
        self._send_rows("reference app", send, None)
        pg_rate = None
        if self.s.database:
            pg = await run_pg_reference(self.s.database, self.s.duration_s)
            pg_rate = pg.rate
            per_message = 1e6 / max(pg.messages, 1)
            self.rows += [
                Row("storage reference (Postgres)", "messages/s insert→claim→delete, 4 conns", pg.rate, "msg/s"),
                Row("storage reference (Postgres)", "PostgreSQL CPU per message", pg.db_cpu_s * per_message, "µs"),
                Row("storage reference (Postgres)", "client CPU per message", pg.client_cpu_s * per_message, "µs"),
            ]
        return _Refs(node, send, pg_rate)

    async def _reference_send(self, node: Node) -> LoadResult:
        return await self._send_load([node.endpoint], [node], "http://reference/000000000000/q")

    async def _measured_send(
        self, refs: _Refs, cluster: Cluster, queue_url: str, profile: Path | None = None
    ) -> LoadResult:
        """Scenario 1 on ``queue_url``, preceded by a fresh reference window (kept in ``refs.send``)."""
        refs.send = await self._reference_send(refs.node)
        with profiling(profile, cluster.servers[0].pid, self.s.warmup_s + self.s.duration_s):
            return await self._send_load(cluster.endpoints, cluster.nodes, queue_url)

    # -- loosely ------------------------------------------------------------------------------------

    async def _run_cluster(self, refs: _Refs, nodes: int, first: bool) -> None:
        cluster = Cluster(self.s.server_argv, self.s.database, self.s.data_root, self.s.log_dir)
        label = f"{self.s.backend}, {nodes} node{'s' if nodes > 1 else ''}"
        queues: list[str] = []
        try:
            await cluster.start(nodes)
            if first and "memory" in self.s.scenarios:
                await self._startup_rows(cluster, label)
            if "send" in self.s.scenarios:
                queues.append(await self._queue(cluster, "send"))
                profile = self.s.profile if first and self.s.profile_scenario == "send" else None
                result = await self._measured_send(refs, cluster, queues[-1], profile)
                self._send_rows(f"1. SendMessage ({label})", result, refs.send)
            if "pipeline" in self.s.scenarios:
                queues.append(await self._queue(cluster, "pipe"))
                profile = self.s.profile if first and self.s.profile_scenario == "pipeline" else None
                await self._pipeline_levels(cluster, queues[-1], f"2. pipeline ({label})", refs, profile)
            if "wake" in self.s.scenarios:
                queues.append(await self._queue(cluster, "wake"))
                await self._wake(cluster, queues[-1], label)
            if first and ("depth" in self.s.scenarios or "memory" in self.s.scenarios):
                for role in ("deep", "empty-send", "empty-pipe"):
                    queues.append(await self._queue(cluster, role))
                await self._depth(cluster, queues[-3:], label, refs)
            if self.s.scenarios & set(SNS_SCENARIOS):
                await self._sns(refs, cluster, label, first)
        finally:
            if self.s.database and cluster.nodes and cluster.schema is None:
                await _cleanup(cluster.endpoints[0], queues)
            cluster.stop()
            await cluster.drop_schema()

    async def _sns(self, refs: _Refs, cluster: Cluster, label: str, first: bool) -> None:
        """Scenarios 6-8; the reference is re-measured before each Publish window, as for SendMessage."""

        async def remeasure() -> LoadResult:
            refs.send = await self._reference_send(refs.node)
            return refs.send

        def profile_target(scenario: str, subscribers: int) -> Path | None:
            wanted = first and self.s.profile_scenario == scenario
            return self.s.profile if wanted and subscribers == _largest(self.s.sns, scenario) else None

        run = SnsRun(
            cluster=cluster,
            label=label,
            run_id=self.run_id,
            sns=self.s.sns,
            connections=self.s.connections,
            duration_s=self.s.duration_s,
            warmup_s=self.s.warmup_s,
            samples=self.s.wake_samples,
            database=self.s.database,
            remeasure_reference=remeasure,
            profile_target=profile_target,
            rows=self.rows,
        )
        await run.run(self.s.scenarios)

    async def _queue(self, cluster: Cluster, role: str) -> str:
        return await create_queue(cluster.endpoints[0], f"bench-{self.run_id}-{role}")

    async def _send_load(self, endpoints: Sequence[Endpoint], nodes: Sequence[Node], queue_url: str) -> LoadResult:
        return await closed_loop(
            endpoints,
            lambda ep: send_message(ep, queue_url, self.body),
            [n.server for n in nodes],
            self.s.connections,
            self.s.duration_s,
            self.s.warmup_s,
            db_cpu=postgres_cpu_s if self.s.database else None,
        )

    async def _pipeline_levels(
        self, cluster: Cluster, queue_url: str, scenario: str, refs: _Refs, profile: Path | None
    ) -> None:
        """Run the pipeline at each client level and score the best: with few clients the rate is bound by
        their round trips (over PostgreSQL most of all, where a request waits on the database), so a
        single level would measure the clients, not the server."""
        results: list[tuple[tuple[int, int], PipelineResult]] = []
        for level in self.s.pipeline_clients:
            last = level == self.s.pipeline_clients[-1]
            with profiling(profile if last else None, cluster.servers[0].pid, self._pipeline_timeout_s):
                results.append((level, await self._pipeline(cluster, queue_url, strict=True, clients=level)))
        for (producers, consumers), piped in results:
            self.rows.append(
                Row(
                    scenario,
                    f"messages/s, {producers} producers + {consumers} consumers",
                    piped.rate,
                    "msg/s",
                    note=f"server CPU {piped.server_cpu_s / max(piped.messages, 1) * 1e6:.0f} µs/message"
                    + ("" if piped.accounted else "; NOT ACCOUNTED"),
                )
            )
        (producers, consumers), best = max(results, key=lambda r: (r[1].accounted, r[1].rate))
        self._pipeline_rows(scenario, best, refs, level=f"best level: {producers} producers + {consumers} consumers")

    @property
    def _pipeline_timeout_s(self) -> float:
        return max(60.0, self.s.pipeline_messages / 500)

    async def _pipeline(
        self, cluster: Cluster, queue_url: str, strict: bool, clients: tuple[int, int] | None = None
    ) -> PipelineResult:
        producers, consumers = clients or self.s.pipeline_clients[-1]
        return await run_pipeline(
            cluster.endpoints,
            cluster.servers,
            queue_url,
            self.s.pipeline_messages,
            produce_s=self.s.duration_s * 2,
            producers=producers,
            consumers=consumers,
            wait_s=2,
            timeout_s=self._pipeline_timeout_s,
            strict=strict,
            db_cpu=postgres_cpu_s if self.s.database else None,
        )

    async def _wake(self, cluster: Cluster, queue_url: str, label: str) -> None:
        receiver, sender = cluster.endpoints[0], cluster.endpoints[-1]
        wake = await run_wake(receiver, sender, queue_url, self.s.wake_samples, budget_s=self.s.duration_s * 3)
        scenario = f"3. long-poll wake ({label}{', cross-node' if receiver != sender else ''})"
        limit = 10.0 if self.s.database else 2.0
        met = wake.p99_ms <= limit
        self.rows += [
            Row(scenario, "p50 send-ack → receive", wake.p50_ms, "ms"),
            # PostgreSQL's target is for a wake-up across nodes (issue "PostgreSQL backend"); SQLite's is in process.
            Row(scenario, "p99 send-ack → receive", wake.p99_ms, "ms", target=f"≤ {limit:g} ms", met=met),
            Row(scenario, "max send-ack → receive", wake.max_ms, "ms", note=f"{wake.samples} samples"),
            Row(scenario, "p99 send-start → receive", wake.from_send_start_p99_ms, "ms"),
        ]

    async def _depth(self, cluster: Cluster, queues: list[str], label: str, refs: _Refs) -> None:
        """Fill one queue, then compare it with empty queues in alternating windows (empty, deep, empty,
        deep, ...) so that both sides see the same machine: others' load drifts over a minute."""
        deep_q, send_q, pipe_q = queues
        scenario = f"4. depth {self.s.depth:,} ({label})"
        fill_s = await _prefill(cluster.endpoints, deep_q, self.body, self.s.depth)
        depth_now = await queue_depth(cluster.endpoints[0], deep_q)
        self.rows.append(Row(scenario, "pre-fill SendMessageBatch(10), 8 conns", self.s.depth / fill_s, "msg/s"))
        if "memory" in self.s.scenarios:
            rss = sum(s.rss_bytes() for s in cluster.servers) / MIB
            self.rows.append(
                Row(
                    "5. memory", f"RSS with {depth_now:,} stored (live)", rss, "MiB", target="≤ 150 MiB", met=rss <= 150
                )
            )
        if "depth" in self.s.scenarios:
            await self._depth_windows(cluster, scenario, deep_q, send_q, pipe_q, refs)
        if "memory" in self.s.scenarios:
            await self._restart_rows(cluster, depth_now)

    async def _depth_windows(
        self, cluster: Cluster, scenario: str, deep_q: str, send_q: str, pipe_q: str, refs: _Refs
    ) -> None:
        rates: dict[str, list[float]] = {"send empty": [], "send deep": [], "pipe empty": [], "pipe deep": []}
        deep_send: LoadResult | None = None
        deep_pipe: PipelineResult | None = None
        for _ in range(self.s.depth_rounds):
            rates["send empty"].append((await self._send_load(cluster.endpoints, cluster.nodes, send_q)).rate)
            deep_send = await self._send_load(cluster.endpoints, cluster.nodes, deep_q)
            rates["send deep"].append(deep_send.rate)
            rates["pipe empty"].append((await self._pipeline(cluster, pipe_q, strict=True)).rate)
            deep_pipe = await self._pipeline(cluster, deep_q, strict=False)
            rates["pipe deep"].append(deep_pipe.rate)
        assert deep_send is not None and deep_pipe is not None
        self._send_rows(scenario + " SendMessage", deep_send, refs.send)
        self._pipeline_rows(scenario + " pipeline", deep_pipe, refs)
        for metric, key in (("SendMessage", "send"), ("pipeline", "pipe")):
            empty, deep = sum(rates[f"{key} empty"]), sum(rates[f"{key} deep"])
            ratio = deep / empty if empty else 0.0
            note = f"{self.s.depth_rounds} alternating rounds; empty {empty / self.s.depth_rounds:,.0f}/s"
            self.rows.append(
                Row(scenario, f"{metric} deep / empty", ratio, "x", target="≥ 0.95", met=ratio >= 0.95, note=note)
            )

    async def _restart_rows(self, cluster: Cluster, stored: int) -> None:
        count = len(cluster.nodes)
        cluster.stop()
        await cluster.start(count)
        node = cluster.nodes[0]
        rss = node.server.rss_bytes() / MIB
        self.rows += [
            Row("5. memory", f"start-up to healthy with {stored:,} stored", node.healthy_s * 1000, "ms"),
            Row(
                "5. memory", f"RSS after restart with {stored:,} stored", rss, "MiB", target="≤ 150 MiB", met=rss <= 150
            ),
        ]

    # -- rows ---------------------------------------------------------------------------------------

    async def _startup_rows(self, cluster: Cluster, label: str) -> None:
        """Start-up times, then the idle RSS once everything is loaded: SNS starts in the background
        after the node answers health, and one SNS request waits for it."""
        node = cluster.nodes[0]
        client = await Client.connect(node.endpoint.host, node.endpoint.port)
        try:
            await sns_call(client, sns_request(node.endpoint, "ListTopics", {}))
        finally:
            client.close()
        rss = node.server.rss_bytes() / MIB
        self.rows += [
            Row("5. memory", f"start-up to listening ({label}, empty)", node.listening_s * 1000, "ms"),
            Row("5. memory", f"start-up to healthy ({label}, empty)", node.healthy_s * 1000, "ms"),
            Row("5. memory", "idle RSS", rss, "MiB", target="≤ 80 MiB", met=rss <= 80, note="SNS started"),
        ]

    def _send_rows(self, scenario: str, r: LoadResult, ref: LoadResult | None) -> None:
        ratio = r.rate / ref.rate if ref else None
        note = f"{r.errors} errors: {r.first_error}" if r.errors else ""
        self.rows += [
            Row(
                scenario,
                f"req/s, {self.s.connections} conns",
                r.rate,
                "req/s",
                ratio,
                "≥ 0.50 x ref" if ref else "",
                (ratio >= 0.5) if ratio is not None else None,
                note,
            ),
            Row(scenario, "p50 latency", r.p50_ms, "ms", r.p50_ms / ref.p50_ms if ref else None),
            Row(scenario, "p99 latency", r.p99_ms, "ms", r.p99_ms / ref.p99_ms if ref else None),
            Row(
                scenario,
                "server CPU per request",
                r.cpu_us_per_request,
                "µs",
                r.cpu_us_per_request / ref.cpu_us_per_request if ref else None,
            ),
            *(
                [Row(scenario, "PostgreSQL CPU per request", r.db_cpu_s / max(r.requests, 1) * 1e6, "µs")]
                if self.s.database and ref
                else []
            ),
            *machine_rows(scenario, r),
        ]
        if ref:
            self.rows.append(
                Row(
                    scenario,
                    "reference req/s, latest measurement",
                    ref.rate,
                    "req/s",
                    note=f"reference p99 {ref.p99_ms:.2f} ms, other CPU {ref.other_cpu_s / ref.elapsed_s * 100:.0f} %",
                )
            )

    def _pipeline_rows(self, scenario: str, p: PipelineResult, refs: _Refs, level: str = "") -> None:
        base = refs.pg_rate or refs.send.rate
        note = "ratio to Postgres storage reference" if refs.pg_rate else "ratio to reference req/s"
        if level:
            note += f"; {level}"
        if not p.complete:
            note += "; INCOMPLETE (timed out)"
        self.rows += [
            Row(
                scenario,
                "messages fully processed/s",
                p.rate,
                "msg/s",
                p.rate / base,
                "≥ 5,000/s and ≥ 0.8 x storage ref" if refs.pg_rate else "≥ 20,000/s durable",
                p.rate >= 5_000 and p.rate / base >= 0.8 if refs.pg_rate else p.rate >= 20_000,
                note,
            ),
            Row(
                scenario,
                "every message accounted for",
                float(p.accounted),
                "",
                None,
                "yes",
                p.accounted,
                f"{p.sent:,} sent, {p.messages:,} deleted, {p.missing} missing, "
                f"{p.double_deletes} double, {p.failed_entries} failed",
                shown="yes" if p.accounted else "no",
            ),
            Row(scenario, "server CPU per message", p.server_cpu_s / max(p.messages, 1) * 1e6, "µs"),
            Row(
                scenario,
                "messages per ReceiveMessage",
                p.messages / max(p.receives, 1),
                "",
                note=f"{p.receives:,} receives, {p.empty_receives:,} empty",
            ),
            *(
                [Row(scenario, "PostgreSQL CPU per message", p.db_cpu_s / max(p.messages, 1) * 1e6, "µs")]
                if self.s.database
                else []
            ),
        ]


async def _prefill(endpoints: Sequence[Endpoint], queue_url: str, body: str, depth: int, conns: int = 8) -> float:
    """Fill a queue with ``depth`` messages as fast as the server takes batches; seconds taken."""
    left = [(depth + 9) // 10]

    async def worker(endpoint: Endpoint) -> None:
        client = await Client.connect(endpoint.host, endpoint.port)
        raw = send_batch(endpoint, queue_url, body)
        try:
            while left[0] > 0:
                left[0] -= 1
                await call(client, raw)
        finally:
            client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(endpoints[i % len(endpoints)]) for i in range(conns)))
    return time.perf_counter() - t0


def _compile_loosely() -> None:
    """Cache loosely's bytecode before any node starts, as installing the package does.

    Nodes run from this checkout, where nothing may have written ``__pycache__`` yet (or
    ``PYTHONDONTWRITEBYTECODE`` keeps it from being written): every start would then compile all of
    loosely's sources, about 250 ms of start-up on the 2-core machine that an installed server never pays.
    """
    for directory in loosely.__path__:
        compileall.compile_dir(directory, quiet=1)


def _largest(sns: SnsSettings, scenario: str) -> int:
    """The subscriber count whose run a ``--profile`` of an SNS scenario records (the heaviest one)."""
    counts = {
        "publish": sns.subscribers,
        "fanout-latency": sns.fanout_subscribers,
        "http-delivery": sns.http_subscribers,
    }
    return max(counts[scenario])


async def _cleanup(endpoint: Endpoint, queues: Sequence[str]) -> None:
    for url in queues:
        try:
            await delete_queue(endpoint, url)
        except Exception:  # cleanup is best effort: a failed benchmark must still report
            pass
