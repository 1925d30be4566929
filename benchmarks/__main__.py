"""``python -m benchmarks``: run the scenarios against a real loosely server and write a results page.

Examples::

    python -m benchmarks --quick                          # SQLite, every scenario, well under a minute
    python -m benchmarks --scenarios send,wake            # a subset
    python -m benchmarks --database postgresql://postgres@127.0.0.1:5432/test --nodes 1,2
    python -m benchmarks --reference-only --quick         # check the generator against the trivial app
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import tempfile
from pathlib import Path

import uvloop

from benchmarks import _machine
from benchmarks._cluster import DEFAULT_SERVER_ARGV
from benchmarks._report import Row, as_json, busiest_other_cpu, markdown_table
from benchmarks._snssuite import SnsSettings
from benchmarks._suite import ALL_SCENARIOS, Settings, Suite

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short smoke run: 2 s windows, small depth")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help=f"comma list of {', '.join(ALL_SCENARIOS)}")
    p.add_argument("--database", help="PostgreSQL URL; default is SQLite in a temporary data dir")
    p.add_argument("--nodes", help="comma list of node counts (Postgres only), default 1 (SQLite) or 1,2 (Postgres)")
    p.add_argument("--depth", type=int, help="messages for scenario 4 (default 1,000,000; --quick 10,000)")
    p.add_argument("--duration", type=float, help="seconds per measurement window (default 10; --quick 2)")
    p.add_argument("--connections", type=int, default=16, help="connections for scenario 1 (default 16)")
    p.add_argument("--pipeline-messages", type=int, help="messages per pipeline run (default 200,000; --quick 20,000)")
    p.add_argument(
        "--pipeline-clients",
        default="4,8/8,16/16,32",
        help="pipeline producers,consumers levels separated by / (default %(default)s): the pipeline runs at "
        "each and is scored at the best, since with few clients the rate is bound by their round trips",
    )
    p.add_argument("--wake-samples", type=int, help="long-poll wake samples (default 500; --quick 50)")
    p.add_argument(
        "--server-cmd",
        default=shlex.join(DEFAULT_SERVER_ARGV),
        help="command that starts one node; {data_dir} is replaced (default: %(default)s)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy record node 0 during --profile-scenario into FILE: .svg flame graph, .json speedscope, .txt raw",
    )
    p.add_argument(
        "--profile-scenario",
        default="send",
        choices=("send", "pipeline", "publish", "fanout-latency", "http-delivery"),
        help="the scenario --profile records (SNS ones: their largest subscriber count; default %(default)s)",
    )
    p.add_argument("--subscribers", default="1,10,50", help="SQS subscriber counts for publish (default %(default)s)")
    p.add_argument(
        "--fanout-subscribers", default="10,50", help="SQS subscriber counts for fanout-latency (default %(default)s)"
    )
    p.add_argument(
        "--http-subscribers", default="1,10", help="HTTP subscription counts for http-delivery (default %(default)s)"
    )
    p.add_argument("--http-deliveries", type=int, help="deliveries per http-delivery run (20,000; --quick 3,000)")
    p.add_argument("--reference-only", action="store_true", help="measure only the reference app(s)")
    p.add_argument("--output", type=Path, help="results file (default benchmarks/results/<date>-<backend>.md)")
    p.add_argument("--no-write", action="store_true", help="print the table, write no file")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace, root: Path) -> Settings:
    quick = args.quick
    scenarios = frozenset(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = scenarios - set(ALL_SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    nodes_default = "1,2" if args.database else "1"
    nodes = tuple(int(n) for n in (args.nodes or nodes_default).split(","))
    if not args.database and nodes != (1,):
        raise SystemExit("more than one node needs --database (SQLite is single-node)")
    (root / "logs").mkdir()
    return Settings(
        scenarios=frozenset() if args.reference_only else scenarios,
        database=args.database,
        nodes=() if args.reference_only else nodes,
        depth=args.depth or (10_000 if quick else 1_000_000),
        duration_s=args.duration or (2.0 if quick else 10.0),
        warmup_s=0.5 if quick else 2.0,
        connections=args.connections,
        pipeline_messages=args.pipeline_messages or (20_000 if quick else 200_000),
        pipeline_clients=_pipeline_clients(args.pipeline_clients),
        wake_samples=args.wake_samples or (50 if quick else 500),
        server_argv=tuple(shlex.split(args.server_cmd)),
        data_root=root / "data",
        log_dir=root / "logs",
        profile=args.profile.resolve() if args.profile else None,
        depth_rounds=1 if quick else 2,
        profile_scenario=args.profile_scenario,
        sns=SnsSettings(
            subscribers=_counts(args.subscribers),
            fanout_subscribers=_counts(args.fanout_subscribers),
            http_subscribers=_counts(args.http_subscribers),
            http_deliveries=args.http_deliveries or (3_000 if quick else 20_000),
        ),
    )


def _pipeline_clients(text: str) -> tuple[tuple[int, int], ...]:
    levels = []
    for level in text.split("/"):
        counts = _counts(level)
        if len(counts) != 2 or min(counts) < 1:
            raise SystemExit("--pipeline-clients takes levels of two positive counts: producers,consumers/...")
        levels.append((counts[0], counts[1]))
    return tuple(levels)


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(",") if n.strip())


def render(settings: Settings, rows: list[Row], quick: bool, elapsed_s: float, error: str) -> str:
    machine = _machine.describe(settings.database)
    lines = [
        f"# loosely benchmark: {settings.backend} ({'quick' if quick else 'full'} run)",
        "",
        f"Run {dt.datetime.now().astimezone().isoformat(timespec='seconds')}, took {elapsed_s:.0f} s.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        "",
        "The load generator is one Python process (uvloop, raw keep-alive HTTP/1.1) on the same machine: it",
        "shares the cores with the server, so absolute numbers are a floor. Ratios are to the reference app",
        "(a trivial ASGI app on the same uvicorn + uvloop + httptools stack) measured in this same run.",
        f"Windows of {settings.duration_s:g} s after {settings.warmup_s:g} s warm-up.",
        *_sqs_description(settings),
        *_sns_description(settings),
        "",
        *_noise_warning(rows),
        markdown_table(rows),
        "",
    ]
    if error:
        lines += ["## Run stopped early", "", "```", error, "```", ""]
    return "\n".join(lines)


def _sqs_description(settings: Settings) -> list[str]:
    if not settings.scenarios & {"send", "pipeline", "wake", "depth", "memory"}:
        return []
    levels = ", ".join(
        f"{producers} producers + {consumers} consumers" for producers, consumers in settings.pipeline_clients
    )
    return [
        f"SQS: {settings.connections} connections for SendMessage; pipeline at {levels} (scored at the best), "
        f"{settings.pipeline_messages:,} messages each; depth {settings.depth:,}.",
    ]


def _sns_description(settings: Settings) -> list[str]:
    sns = settings.sns
    if not settings.scenarios & {"publish", "fanout-latency", "http-delivery"}:
        return []
    return [
        f"SNS: Publish of a 256-byte message over {settings.connections} connections to a standard topic with "
        f"{', '.join(map(str, sns.subscribers))} SQS subscribers (distinct queues, raw delivery off); fan-out "
        f"latency with {', '.join(map(str, sns.fanout_subscribers))} long-polling subscribers, "
        f"{settings.wake_samples} samples; HTTP delivery to {', '.join(map(str, sns.http_subscribers))} "
        f"subscriptions (one local receiver port each), {sns.http_deliveries:,} deliveries per run.",
    ]


def _noise_warning(rows: list[Row]) -> list[str]:
    busiest = busiest_other_cpu(rows)
    if busiest < 30:
        return []
    return [
        f"**The machine was busy**: other processes took up to {busiest:.0f} % of a core during a window "
        '(see the rows "other processes\' CPU"). Absolute numbers are low and noisy; ratios compare windows '
        "taken moments apart and are the better guide, but still rough.",
        "",
    ]


async def _run(settings: Settings) -> tuple[list[Row], str]:
    suite = Suite(settings)
    try:
        await suite.run()
        return suite.rows, ""
    except Exception as exc:  # keep what was measured; the report says where it stopped
        return suite.rows, f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loosely-bench-") as tmp:
        settings = settings_from(args, Path(tmp))
        t0 = dt.datetime.now()
        rows, error = uvloop.run(_run(settings))
        elapsed = (dt.datetime.now() - t0).total_seconds()
        if error:
            logs = [log for log in sorted(settings.log_dir.glob("*.log")) if log.stem not in error]
            error += "".join(f"\n--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}" for log in logs)
    page = render(settings, rows, args.quick, elapsed, error)
    print(page)
    if not args.no_write:
        out = args.output or RESULTS / f"{dt.date.today().isoformat()}-{settings.backend}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page)
        out.with_suffix(".json").write_text(json.dumps(as_json(rows), indent=2) + "\n")
        print(f"wrote {out}")
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
