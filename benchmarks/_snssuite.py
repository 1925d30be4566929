"""The SNS scenarios (6. publish, 7. fan-out latency, 8. HTTP delivery) on one cluster, as report rows.

Each subscriber count gets a topic and queues of its own, deleted afterwards (fan-out leaves tens of
thousands of messages behind). Between measurements the run waits for the server's workers to finish
what the last one left (the outbox is asynchronous), so one measurement's backlog never loads the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks._cluster import Cluster
from benchmarks._fanout import FanoutResult, run_fanout
from benchmarks._httpdelivery import HttpDeliveryResult, run_http_delivery, subscribe_http
from benchmarks._load import LoadResult, closed_loop
from benchmarks._procs import postgres_cpu_s
from benchmarks._profile import profiling
from benchmarks._receiver import Receiver
from benchmarks._report import Row, machine_rows
from benchmarks._sns import create_topic, delete_topic, publish, queue_arn, subscribe, total_stats
from benchmarks._sqs import Endpoint, create_queue, delete_queue, message_body

SNS_SCENARIOS = ("publish", "fanout-latency", "http-delivery")
PUBLISH_RATE_TARGET = 3_000.0  # publishes/s with 10 subscribers
PUBLISH_P99_TARGET_MS = 10.0
FANOUT_P99_TARGET_MS = 50.0  # at 50 subscribers


@dataclass(frozen=True)
class SnsSettings:
    subscribers: tuple[int, ...] = (1, 10, 50)
    fanout_subscribers: tuple[int, ...] = (10, 50)
    http_subscribers: tuple[int, ...] = (1, 10)
    http_deliveries: int = 20_000  # per subscription count: publishes = deliveries / subscriptions
    drain_timeout_s: float = 120.0


@dataclass
class SnsRun:
    """What the SNS scenarios need from the suite: its settings, the cluster, and the reference."""

    cluster: Cluster
    label: str
    run_id: str
    sns: SnsSettings
    connections: int
    duration_s: float
    warmup_s: float
    samples: int
    database: str | None
    remeasure_reference: Callable[[], Awaitable[LoadResult]]
    profile_target: Callable[[str, int], Path | None]  # (scenario, subscribers) -> py-spy output, if profiled
    rows: list[Row]

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.cluster.endpoints

    async def run(self, scenarios: frozenset[str]) -> None:
        if "publish" in scenarios:
            p99s = {n: await self._publish(n) for n in self.sns.subscribers}
            self._flatness_row(p99s)
        if "fanout-latency" in scenarios:
            for n in self.sns.fanout_subscribers:
                await self._fanout(n)
        if "http-delivery" in scenarios:
            for n in self.sns.http_subscribers:
                await self._http_delivery(n)

    # -- set-up -----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _subscribed_queues(self, role: str, count: int) -> AsyncIterator[tuple[str, list[str]]]:
        """A topic with ``count`` distinct standard queues subscribed (RawMessageDelivery off), deleted after."""
        ep = self.endpoints[0]
        topic = await create_topic(ep, f"bench-{self.run_id}-{role}")
        queues: list[str] = []
        try:
            for i in range(count):
                queues.append(await create_queue(ep, f"bench-{self.run_id}-{role}-{i}"))
                await subscribe(ep, topic, "sqs", await queue_arn(ep, queues[-1]))
            yield topic, queues
        finally:
            await _best_effort(delete_topic(ep, topic), *(delete_queue(ep, url) for url in queues))

    async def _wait_counter(self, key: str, target: int, timeout_s: float) -> float | None:
        """Seconds until the nodes' ``key`` counter reaches ``target``; None on timeout."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if await total_stats(self.endpoints, key) >= target:
                return time.perf_counter() - t0
            await asyncio.sleep(0.02)
        return None

    # -- 6. publish ---------------------------------------------------------------------------------

    async def _publish(self, subscribers: int) -> float:
        scenario = f"6. Publish, {subscribers} SQS subscriber{'s' if subscribers > 1 else ''} ({self.label})"
        async with self._subscribed_queues(f"pub{subscribers}", subscribers) as (topic, _):
            return await self._measure_publish(scenario, subscribers, topic)

    async def _measure_publish(self, scenario: str, subscribers: int, topic: str) -> float:
        ref = await self.remeasure_reference()
        base = await total_stats(self.endpoints, "publications")
        servers = self.cluster.servers
        cpu0, t0 = sum(s.cpu_s() for s in servers), time.perf_counter()
        body = message_body(256)
        with profiling(self.profile_target("publish", subscribers), servers[0].pid, self.warmup_s + self.duration_s):
            load = await closed_loop(
                self.endpoints,
                lambda ep: publish(ep, topic, body),
                servers,
                self.connections,
                self.duration_s,
                self.warmup_s,
                db_cpu=postgres_cpu_s if self.database else None,
            )
        t_load = time.perf_counter()
        drain_s = await self._wait_counter("publications", base + load.acknowledged, self.sns.drain_timeout_s)
        cpu1, t1 = sum(s.cpu_s() for s in servers), time.perf_counter()
        self._publish_rows(scenario, subscribers, load, ref)
        self._drain_rows(scenario, subscribers, load, drain_s, t_load - t0, t1 - t0, cpu1 - cpu0)
        return load.p99_ms

    def _publish_rows(self, scenario: str, subscribers: int, r: LoadResult, ref: LoadResult) -> None:
        rate_target = subscribers == 10
        note = f"{r.errors} errors: {r.first_error}" if r.errors else ""
        self.rows += [
            Row(
                scenario,
                f"publishes/s, {self.connections} conns",
                r.rate,
                "req/s",
                r.rate / ref.rate,
                "≥ 3,000/s" if rate_target else "",
                r.rate >= PUBLISH_RATE_TARGET if rate_target else None,
                note,
            ),
            Row(scenario, "p50 publish latency", r.p50_ms, "ms", r.p50_ms / ref.p50_ms),
            Row(
                scenario,
                "p99 publish latency",
                r.p99_ms,
                "ms",
                r.p99_ms / ref.p99_ms,
                "≤ 10 ms",
                r.p99_ms <= PUBLISH_P99_TARGET_MS,
            ),
            Row(
                scenario,
                "server CPU per publish (window)",
                r.cpu_us_per_request,
                "µs",
                r.cpu_us_per_request / ref.cpu_us_per_request,
                note="includes the fan-out done during the window",
            ),
            *(
                [Row(scenario, "PostgreSQL CPU per publish", r.db_cpu_s / max(r.requests, 1) * 1e6, "µs")]
                if self.database
                else []
            ),
            *machine_rows(scenario, r),
            Row(
                scenario,
                "reference req/s, latest measurement",
                ref.rate,
                "req/s",
                note=f"reference p99 {ref.p99_ms:.2f} ms",
            ),
        ]

    def _drain_rows(
        self,
        scenario: str,
        subscribers: int,
        r: LoadResult,
        drain_s: float | None,
        load_s: float,
        total_s: float,
        cpu_s: float,
    ) -> None:
        """How far fan-out trailed publishing: if it keeps up, the sustained rate is the publish rate."""
        messages = r.acknowledged * subscribers
        if drain_s is None:
            self.rows.append(
                Row(scenario, "fan-out finished after the load", float("nan"), "s", note="TIMED OUT", met=False)
            )
            return
        self.rows += [
            Row(
                scenario,
                "fan-out finished after the load stopped",
                drain_s,
                "s",
                note=f"{r.acknowledged:,} publishes → {messages:,} SQS messages in {load_s:.1f} s of load",
            ),
            Row(scenario, "publishes/s with fan-out complete", r.acknowledged / total_s, "req/s"),
            Row(scenario, "SQS messages fanned out/s", messages / total_s, "msg/s"),
            Row(scenario, "server CPU per publish incl. fan-out", cpu_s / max(r.acknowledged, 1) * 1e6, "µs"),
        ]

    def _flatness_row(self, p99s: dict[int, float]) -> None:
        if len(p99s) < 2:
            return
        low, high = min(p99s), max(p99s)
        ratio = p99s[high] / p99s[low] if p99s[low] else float("nan")
        self.rows.append(
            Row(
                f"6. Publish ({self.label})",
                f"p99 with {high} subscribers / with {low}",
                ratio,
                "x",
                target="flat (≤ 1.5)",
                met=ratio <= 1.5,
            )
        )

    # -- 7. fan-out latency ---------------------------------------------------------------------------

    async def _fanout(self, subscribers: int) -> None:
        scenario = f"7. fan-out latency, {subscribers} SQS subscribers ({self.label})"
        if len(self.endpoints) > 1:
            scenario = scenario[:-1] + ", cross-node)"
        consumers, publisher = self.endpoints[:1], self.endpoints[-1]
        budget = self.duration_s * 3
        async with self._subscribed_queues(f"fan{subscribers}", subscribers) as (topic, queues):
            with profiling(self.profile_target("fanout-latency", subscribers), self.cluster.servers[0].pid, budget):
                result = await run_fanout(consumers, publisher, topic, queues, self.samples, budget_s=budget)
        self._fanout_rows(scenario, subscribers, result)

    def _fanout_rows(self, scenario: str, subscribers: int, f: FanoutResult) -> None:
        target = subscribers >= 50
        note = f"{f.samples} samples" + (f", {f.timeouts} timed out (5 s)" if f.timeouts else "")
        self.rows += [
            Row(scenario, "p50 publish-ack → in every queue", f.p50_ms, "ms"),
            Row(
                scenario,
                "p99 publish-ack → in every queue",
                f.p99_ms,
                "ms",
                target="≤ 50 ms" if target else "",
                met=(f.p99_ms <= FANOUT_P99_TARGET_MS and not f.timeouts) if target else None,
            ),
            Row(scenario, "max publish-ack → in every queue", f.max_ms, "ms", note=note),
            Row(scenario, "p99 publish-start → in every queue", f.from_publish_start_p99_ms, "ms"),
            Row(scenario, "p50 Publish round trip (idle server)", f.publish_p50_ms, "ms"),
        ]

    # -- 8. HTTP delivery --------------------------------------------------------------------------------

    async def _http_delivery(self, subscriptions: int) -> None:
        scenario = f"8. HTTP delivery, {subscriptions} subscription{'s' if subscriptions > 1 else ''} ({self.label})"
        ep = self.endpoints[0]
        topic = await create_topic(ep, f"bench-{self.run_id}-http{subscriptions}")
        receiver = Receiver()
        try:
            await subscribe_http(ep, topic, receiver, subscriptions, timeout_s=10.0)
            publishes = max(1, self.sns.http_deliveries // subscriptions)
            servers = self.cluster.servers
            timeout = max(60.0, self.sns.http_deliveries / 100)
            deferred0 = await total_stats(self.endpoints, "deferred")
            with profiling(self.profile_target("http-delivery", subscriptions), servers[0].pid, timeout):
                result = await run_http_delivery(
                    self.endpoints,
                    servers,
                    topic,
                    receiver,
                    subscriptions,
                    publishes,
                    produce_s=self.duration_s * 2,
                    timeout_s=timeout,
                    producers=self.connections,
                )
            deferred = await total_stats(self.endpoints, "deferred") - deferred0
            self._http_rows(scenario, result, deferred)
        finally:
            receiver.close()
            await _best_effort(delete_topic(ep, topic))

    def _http_rows(self, scenario: str, h: HttpDeliveryResult, deferred: int) -> None:
        accounted = h.complete and h.delivered == h.expected
        self.rows += [
            Row(
                scenario,
                "HTTP deliveries/s (first publish → last delivery)",
                h.rate,
                "deliveries/s",
                note="" if h.complete else "INCOMPLETE (timed out)",
            ),
            Row(
                scenario,
                "every delivery arrived",
                float(accounted),
                "",
                target="yes",
                met=accounted,
                note=f"{h.publishes:,} publishes x {h.subscriptions} = {h.expected:,} expected, "
                f"{h.delivered:,} arrived, {h.duplicates} duplicates",
                shown="yes" if accounted else "no",
            ),
            Row(
                scenario,
                f"publishes/s meanwhile ({self.connections} conns)",
                h.publishes / h.publish_s if h.publish_s else 0.0,
                "req/s",
            ),
            Row(
                scenario,
                "server CPU per delivery",
                h.server_cpu_s / max(h.delivered, 1) * 1e6,
                "µs",
                note=f"includes the publishes; {h.connections} TCP connections opened to the receiver",
            ),
            Row(
                scenario,
                "claimed deliveries handed back (endpoint busy)",
                deferred,
                "",
                note="counter `deferred`: each is a claim and a release written to the store, no attempt",
            ),
        ]


async def _best_effort(*cleanups: Awaitable[None]) -> None:
    """Run every clean-up; a failure must not hide the measurement (or the error) that came before."""
    for cleanup in cleanups:
        try:
            await cleanup
        except Exception:  # clean-up is best effort: names are unique per run
            pass
