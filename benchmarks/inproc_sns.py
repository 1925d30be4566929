"""In-process CPU cost of SNS: Publish through the ASGI app, then fan-out to SQS subscribers, no HTTP.

``python -m benchmarks.inproc_sns`` starts the real application (`loosely.server.app.build_app`) on a
SQLite store in a temporary directory, with a topic and ``--subscribers`` SQS subscriptions (distinct
queues, raw delivery off), and measures in rounds:

* **publish**: ``--publishes`` Publish requests (Query form, XML answer, 256-byte message) called as
  uvicorn would, from ``--concurrency`` tasks; fan-out is not running;
* **fan-out**: the node's `FanOut` working those publications off (`FanOut.run_once` until none is
  left), alone on the loop.

For each: CPU per publication on the event-loop thread and in the whole process (the SQLite writer
and the signing threads are the other threads). Fan-out writes full chunks throughout (its pacing
reads wall time, which would make what it writes per commit vary with the machine's load).
``--fake-signer`` signs with HMAC instead of RSA-2048, which takes the signature (a fixed cost per
publication, on threads) out of the totals.
Numbers vary with what else runs on the machine: compare runs made moments apart, old and new code
alternated, and prefer the minimum of rounds.

    python -m benchmarks.inproc_sns --subscribers 10
    python -m benchmarks.inproc_sns --subscribers 10 --profile /tmp/fanout.prof --profile-phase fanout

Instruction counts, which machine noise does not change: run it under cachegrind with ``--rounds 0``
(the warm-up round only) for two numbers of publishes, with ``--phases publish`` and without; the
difference per publication is the cost of the phase.

    valgrind --tool=cachegrind --cache-sim=no python -m benchmarks.inproc_sns --rounds 0 --fake-signer \
        --subscribers 10 --publishes 400
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import dataclasses
import hashlib
import hmac
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvloop

from benchmarks._asgi import call, post_scope
from benchmarks._sqs import message_body
from benchmarks.inproc import HOST
from loosely.config import Settings
from loosely.server.app import App, build_app

PHASES = ("publish", "fanout")
_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sns/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=9c1f4b8a2e7d3f60b5a4c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5"
)


@dataclass(slots=True)
class Sample:
    phase: str
    publications: int
    wall_s: float
    loop_cpu_s: float
    process_cpu_s: float

    def us(self, seconds: float) -> float:
        return seconds / max(self.publications, 1) * 1e6


class _HmacSigner:
    """A stand-in for the RSA signer: the same interface, microseconds instead of a third of a millisecond."""

    certificate_name = "SimpleNotificationService-fake.pem"
    certificate_pem = b""

    def sign(self, string_to_sign: bytes, signature_version: str) -> str:
        return base64.b64encode(hmac.digest(b"k", string_to_sign, hashlib.sha256)).decode()


def _scope(body: bytes) -> dict[str, Any]:
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded; charset=utf-8"),
        (b"x-amz-date", b"20260101T000000Z"),
        (b"authorization", _AUTHORIZATION.encode()),
    ]
    return post_scope(HOST, headers, body)


async def _call(app: App, body: bytes) -> bytes:
    return await call(app, _scope(body), body)


async def _measure(phase: str, publications: int, work: Any) -> Sample:
    loop_clock = time.thread_time()
    process_clock = time.process_time()
    start = time.perf_counter()
    await work()
    return Sample(
        phase,
        publications,
        time.perf_counter() - start,
        time.thread_time() - loop_clock,
        time.process_time() - process_clock,
    )


async def run(args: argparse.Namespace) -> list[Sample]:
    from loosely.core.queues.models import QueueKey
    from loosely.core.topics.values import AccountScope
    from loosely.server.delivery import build_delivery, load_signer

    with tempfile.TemporaryDirectory(prefix="loosely-inproc-sns-") as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="warning")
        app = build_app(settings, background=False)
        await app.startup()
        try:
            await app.sns_ready()
            context = app._context
            store = app._store
            assert context is not None and context.topics is not None and store is not None
            signer: Any = _HmacSigner() if args.fake_signer else load_signer(settings)
            delivery = build_delivery(settings, store, context.queues, signer)
            assert delivery is not None
            delivery.runtime.advertise("http://localhost:4566")
            fanout = delivery.runtime.fanout
            # Chunks as large, and no pause at the store, whatever fan-out finds the loop doing: its
            # pacing reads wall time, and on a busy machine would vary what it writes per commit.
            fanout.options = dataclasses.replace(
                fanout.options, fanout_rows_yielding=fanout.options.fanout_rows, fanout_share=1.0
            )
            fanout.loop_share.share = 1.0
            scope = AccountScope(settings.account_id, settings.region)
            topic_arn = await context.topics.create_topic(scope, "inproc", {})
            for i in range(args.subscribers):
                queue = await context.queues.create_queue(
                    QueueKey(settings.account_id, settings.region, f"inproc-{i}"), {}, {}
                )
                await context.topics.subscribe(scope, topic_arn, "sqs", queue.key.arn, {}, return_subscription_arn=True)
            body = urlencode(
                {"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic_arn, "Message": message_body(256)}
            ).encode()
            return await _rounds(app, fanout, body, args)
        finally:
            await app.shutdown()


async def _rounds(app: App, fanout: Any, body: bytes, args: argparse.Namespace) -> list[Sample]:
    samples: list[Sample] = []
    profiler = cProfile.Profile() if args.profile else None
    n = args.publishes
    shares = [n // args.concurrency + (1 if i < n % args.concurrency else 0) for i in range(args.concurrency)]

    async def publish() -> None:
        async def worker(count: int) -> None:
            for _ in range(count):
                await _call(app, body)

        await asyncio.gather(*(worker(c) for c in shares))

    async def fan_out() -> None:
        while await fanout.run_once():
            pass

    for round_no in range(args.rounds + 1):  # round 0 warms up
        for phase, work in (("publish", publish), ("fanout", fan_out)):
            if phase not in args.phases:
                continue
            profiled = profiler is not None and round_no > 0 and phase == args.profile_phase
            if profiled:
                assert profiler is not None
                profiler.enable()
            sample = await _measure(phase, n, work)
            if profiled:
                assert profiler is not None
                profiler.disable()
            if round_no > 0:
                samples.append(sample)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    return samples


def report(samples: list[Sample], args: argparse.Namespace) -> None:
    signer = "HMAC" if args.fake_signer else "RSA"
    print(f"subscribers {args.subscribers}, {args.publishes} publishes per round, signer {signer}")
    print(f"{'phase':8} {'rounds':>6} {'loop µs/pub (min)':>18} {'process µs/pub (min)':>21} {'all loop µs':>24}")
    for phase in PHASES:
        mine = [s for s in samples if s.phase == phase]
        if not mine:
            continue
        loops = " ".join(f"{s.us(s.loop_cpu_s):.0f}" for s in mine)
        print(
            f"{phase:8} {len(mine):>6} {min(s.us(s.loop_cpu_s) for s in mine):>18.1f} "
            f"{min(s.us(s.process_cpu_s) for s in mine):>21.1f}   {loops}"
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inproc_sns", description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=10)
    p.add_argument("--publishes", type=int, default=2000, help="publications per round (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds after one warm-up round (default 3)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--phases", default="publish,fanout", help="which to run (publish alone leaves the outbox full)")
    p.add_argument("--fake-signer", action="store_true", help="sign with HMAC: leaves the RSA signature out")
    p.add_argument("--profile", help="write a cProfile of one phase (loop thread only) here")
    p.add_argument("--profile-phase", choices=PHASES, default="fanout")
    args = p.parse_args(argv)
    args.phases = set(args.phases.split(","))
    samples = uvloop.run(run(args))
    report(samples, args)


if __name__ == "__main__":
    main()
