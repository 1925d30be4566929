"""In-process CPU cost of the SQS hot path: the ASGI app called directly, no HTTP, no load generator.

``python -m benchmarks.inproc`` starts the real application (`loosely.server.app.build_app`) on a
SQLite store in a temporary directory, calls it as uvicorn would (an ASGI scope, a ``receive`` that
hands over the pre-built body, a ``send`` that keeps the answer), and reports for each action the
wall time and the CPU the process spent per request, split into the event-loop thread and every
other thread (the SQLite writer). The requests are the benchmark suite's (SQS JSON 1.0, 256-byte
bodies). No socket, no parser, no client: what remains is loosely's own cost, which is what a
profile of the hot path should look at.

    python -m benchmarks.inproc                       # every action, 3 rounds
    python -m benchmarks.inproc --actions send --rounds 5 --requests 4000
    python -m benchmarks.inproc --actions send --profile /tmp/send.prof   # cProfile of the loop thread
    python -m benchmarks.inproc --synchronous NORMAL  # how much of it is the fsync

Actions: ``send`` (SendMessage, `--concurrency` tasks), ``batch`` (SendMessageBatch of 10, 4 tasks),
``receive`` (ReceiveMessage of 10 without waiting, 8 tasks, on a queue filled beforehand) and
``delete`` (DeleteMessageBatch of the handles those receives returned, 8 tasks). Numbers vary with
what else runs on the machine; compare runs made moments apart, and prefer the minimum of rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop

from benchmarks._asgi import call, post_scope
from benchmarks._sqs import AUTHORIZATION, message_body
from loosely.config import Settings
from loosely.server.app import App, build_app

ACTIONS = ("send", "batch", "receive", "delete")
HOST = "localhost:4566"
Message = MutableMapping[str, Any]


@dataclass(slots=True)
class Sample:
    """One measured round of one action."""

    action: str
    requests: int
    messages: int
    wall_s: float
    loop_cpu_s: float
    process_cpu_s: float
    commits: int

    @property
    def other_cpu_s(self) -> float:
        return max(self.process_cpu_s - self.loop_cpu_s, 0.0)

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.requests * 1e6

    def per_message_us(self, seconds: float) -> float:
        return seconds / max(self.messages, 1) * 1e6


class Caller:
    """Calls the ASGI app the way uvicorn does, with a pre-built scope per action."""

    def __init__(self, app: App) -> None:
        self.app = app

    @staticmethod
    def scope(action: str, body: bytes) -> dict[str, Any]:
        headers = [
            (b"content-type", b"application/x-amz-json-1.0"),
            (b"x-amz-target", f"AmazonSQS.{action}".encode()),
            (b"x-amz-date", b"20260101T000000Z"),
            (b"authorization", AUTHORIZATION.encode()),
        ]
        return post_scope(HOST, headers, body)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(payload)
        return await self.call_raw(self.scope(action, body), body)

    async def call_raw(self, scope: dict[str, Any], body: bytes) -> dict[str, Any]:
        payload = await call(self.app, scope, body)
        decoded: dict[str, Any] = orjson.loads(payload) if payload else {}
        return decoded


def commits(app: App) -> int:
    """Group commits the SQLite writer has made so far (0 for other stores)."""
    return int(getattr(app._store, "groups_committed", 0))


async def measure(
    app: App, action: str, messages_per_request: int, tasks: list[Callable[[], Awaitable[int]]]
) -> Sample:
    """Run ``tasks`` concurrently; each returns how many requests it made."""
    commits_before = commits(app)
    loop_clock = time.thread_time()
    process_clock = time.process_time()
    start = time.perf_counter()
    counts = await asyncio.gather(*(task() for task in tasks))
    wall = time.perf_counter() - start
    requests = sum(counts)
    return Sample(
        action=action,
        requests=requests,
        messages=requests * messages_per_request,
        wall_s=wall,
        loop_cpu_s=time.thread_time() - loop_clock,
        process_cpu_s=time.process_time() - process_clock,
        commits=commits(app) - commits_before,
    )


class Bench:
    """One application on one temporary store, and the four actions against one queue."""

    def __init__(self, caller: Caller, queue_url: str, requests: int, concurrency: int) -> None:
        self.caller = caller
        self.queue_url = queue_url
        self.requests = requests
        self.concurrency = concurrency
        self.body = message_body(256)
        self.handles: list[str] = []

    def _split(self, total: int, workers: int) -> list[int]:
        return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]

    async def send(self) -> Sample:
        payload = orjson.dumps({"QueueUrl": self.queue_url, "MessageBody": self.body})
        scope = self.caller.scope("SendMessage", payload)

        def worker(n: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                for _ in range(n):
                    await self.caller.call_raw(scope, payload)
                return n

            return run

        return await measure(
            self.caller.app, "send", 1, [worker(n) for n in self._split(self.requests, self.concurrency)]
        )

    async def batch(self) -> Sample:
        entries = [{"Id": str(i), "MessageBody": self.body} for i in range(10)]
        payload = orjson.dumps({"QueueUrl": self.queue_url, "Entries": entries})
        scope = self.caller.scope("SendMessageBatch", payload)

        def worker(n: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                for _ in range(n):
                    await self.caller.call_raw(scope, payload)
                return n

            return run

        return await measure(self.caller.app, "batch", 10, [worker(n) for n in self._split(self.requests // 10, 4)])

    async def receive(self) -> Sample:
        payload = orjson.dumps(
            {"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, "VisibilityTimeout": 300}
        )
        scope = self.caller.scope("ReceiveMessage", payload)
        handles = self.handles

        def worker(n: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                for _ in range(n):
                    answer = await self.caller.call_raw(scope, payload)
                    handles.extend(m["ReceiptHandle"] for m in answer.get("Messages", ()))
                return n

            return run

        return await measure(self.caller.app, "receive", 10, [worker(n) for n in self._split(self.requests // 10, 8)])

    async def delete(self) -> Sample:
        groups = [self.handles[i : i + 10] for i in range(0, len(self.handles), 10)]
        self.handles = []
        requests = []
        for group in groups:
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(group)]
            payload = orjson.dumps({"QueueUrl": self.queue_url, "Entries": entries})
            requests.append((self.caller.scope("DeleteMessageBatch", payload), payload))
        shares = [requests[i::8] for i in range(8)]

        def worker(share: list[tuple[dict[str, Any], bytes]]) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                for scope, payload in share:
                    await self.caller.call_raw(scope, payload)
                return len(share)

            return run

        return await measure(self.caller.app, "delete", 10, [worker(share) for share in shares])


async def run(args: argparse.Namespace) -> list[Sample]:
    with tempfile.TemporaryDirectory(prefix="loosely-inproc-") as tmp:
        settings = Settings(data_dir=Path(tmp), sqlite_synchronous=args.synchronous, log_level="warning")
        app = build_app(settings, background=False)
        await app.startup()
        try:
            caller = Caller(app)
            created = await caller.call("CreateQueue", {"QueueName": "inproc"})
            bench = Bench(caller, str(created["QueueUrl"]), args.requests, args.concurrency)
            return await _rounds(bench, args)
        finally:
            await app.shutdown()


async def _rounds(bench: Bench, args: argparse.Namespace) -> list[Sample]:
    actions = [a for a in args.actions.split(",") if a]
    samples: list[Sample] = []
    profiler = cProfile.Profile() if args.profile else None
    needed = set(actions)
    if needed & {"receive", "delete"}:
        needed |= {"batch", "receive"}  # receives need messages; deletes need receipt handles
    for round_no in range(args.rounds + 1):  # round 0 warms up (imports, caches, the first pages)
        for action in (a for a in ACTIONS if a in needed):
            measured = action in actions and round_no > 0
            if measured and profiler is not None:
                profiler.enable()
            sample = await getattr(bench, action)()
            if measured and profiler is not None:
                profiler.disable()
            if measured:
                samples.append(sample)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    return samples


def report(samples: list[Sample]) -> None:
    print(f"threads at exit: {threading.active_count()}")
    header = (
        f"{'action':8} {'rounds':>6} {'req/s':>9} {'msg/s':>9} {'wall µs/req':>12} "
        f"{'CPU µs/req':>11} {'loop µs/req':>12} {'other µs/req':>13} {'CPU µs/msg':>11}"
    )
    print(header)
    for action in ACTIONS:
        mine = [s for s in samples if s.action == action]
        if not mine:
            continue
        best = min(mine, key=lambda s: s.per_request_us(s.process_cpu_s))
        rps = statistics.median(s.requests / s.wall_s for s in mine)
        mps = statistics.median(s.messages / s.wall_s for s in mine)
        print(
            f"{action:8} {len(mine):>6} {rps:>9,.0f} {mps:>9,.0f} "
            f"{statistics.median(s.per_request_us(s.wall_s) for s in mine):>12.1f} "
            f"{best.per_request_us(best.process_cpu_s):>11.1f} {best.per_request_us(best.loop_cpu_s):>12.1f} "
            f"{best.per_request_us(best.other_cpu_s):>13.1f} {best.per_message_us(best.process_cpu_s):>11.1f} "
            f"{best.requests / max(best.commits, 1):>10.1f}"
        )
    print("CPU columns: the round with the least process CPU per request; rates and wall: medians of rounds.")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inproc", description=__doc__.split("\n\n")[0])
    p.add_argument("--actions", default=",".join(ACTIONS), help=f"comma list of {', '.join(ACTIONS)}")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds after one warm-up round (default 3)")
    p.add_argument("--requests", type=int, default=3000, help="SendMessage requests (and messages) per round")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent SendMessage tasks (default 16)")
    p.add_argument("--synchronous", default="FULL", help="SQLite synchronous: FULL (default), NORMAL, OFF")
    p.add_argument("--profile", help="write a cProfile of the measured actions (loop thread only) here")
    args = p.parse_args(argv)
    report(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
