#!/usr/bin/env python
"""Run moto's own SQS and SNS tests against a live ``loosely serve`` (docs/compatibility-audit.md).

One command repeats the compatibility audit:

    python scripts/audit_moto.py                      # SQLite, every run
    python scripts/audit_moto.py --database 'postgresql://postgres@127.0.0.1:5432/test?schema=audit'
    python scripts/audit_moto.py --runs sns -k filter  # one run, some tests

It downloads moto's source distribution (its tests) and installs moto into a virtual environment of
its own under ``--work-dir``, so neither moto's code nor its tests live in this repository and the
project's environment is untouched. For each run it starts a fresh server, runs pytest in that
environment with ``scripts/moto_audit_plugin.py`` loaded, stops the server and prints the counts and
every failure (test id and the first line of its error); ``--report`` also writes them as JSON.

Runs:

- ``verified``: the tests moto checks against AWS, run as moto runs them against AWS
  (``MOTO_TEST_ALLOW_AWS_REQUEST=true``, ``AWS_ENDPOINT_URL``), on a server with its default account.
- ``sqs-json`` / ``sqs-query``: moto's other SQS tests with ``mock_aws`` made a no-op, over AWS JSON and
  over the Query protocol (botocore's Query-era SQS model kept by the protocol tests), on a server with
  ``--account-id 123456789012``, the account moto's tests hard-code.
- ``sns``: moto's SNS tests the same way, waiting ``--receive-wait`` seconds before each short-poll
  receive because SNS delivers after ``Publish`` returns.

It is not part of the test suite: moto's non-verified tests encode moto's understanding, so their
failures are leads to check against AWS, not verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from loosely.server.testing import ServerProcess  # noqa: E402

MOTO_VERSION = "5.2.5"
QUERY_MODELS = REPO / "tests" / "unit" / "protocols" / "data"
SQS_TESTS = ("tests/test_sqs/test_sqs.py", "tests/test_sqs/test_sqs_message_attributes.py")
SNS_TESTS = tuple(
    f"tests/test_sns/{name}.py"
    for name in ("test_application", "test_publish_batch", "test_publishing", "test_subscriptions", "test_topics")
)
MOTO_ACCOUNT = "123456789012"
DEFAULT_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class Run:
    name: str
    tests: tuple[str, ...]
    mode: str  # "verified" or "mocked"
    account: str
    query: bool = False
    receive_wait: bool = False


RUNS = {
    run.name: run
    for run in (
        Run("verified", SQS_TESTS + SNS_TESTS, "verified", DEFAULT_ACCOUNT),
        Run("sqs-json", SQS_TESTS, "mocked", MOTO_ACCOUNT),
        Run("sqs-query", SQS_TESTS, "mocked", MOTO_ACCOUNT, query=True),
        Run("sns", SNS_TESTS, "mocked", MOTO_ACCOUNT, receive_wait=True),
    )
}


@dataclass
class Result:
    run: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def prepare(work_dir: Path) -> tuple[Path, Path]:
    """The venv's python (moto installed) and the unpacked source tree with moto's tests."""
    work_dir.mkdir(parents=True, exist_ok=True)
    venv = work_dir / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        # system site packages: boto3, pytest and the rest come from the project's environment
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import moto, freezegun; print(moto.__version__)"], capture_output=True, text=True
    )
    if probe.stdout.strip() != MOTO_VERSION:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"moto=={MOTO_VERSION}", "freezegun"], check=True)
    source = work_dir / f"moto-{MOTO_VERSION}"
    if not (source / "tests" / "test_sqs").is_dir():
        with tempfile.TemporaryDirectory() as download:
            download_sdist = ["pip", "download", "-q", "--no-binary", ":all:", "--no-deps", "-d", download]
            subprocess.run([sys.executable, "-m", *download_sdist, f"moto=={MOTO_VERSION}"], check=True)
            (sdist,) = Path(download).glob("moto-*.tar.gz")
            with tarfile.open(sdist) as archive:
                archive.extractall(work_dir, filter="data")
    return python, source


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    env["LOOSELY_LOG_LEVEL"] = "warning"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def pytest_env(run: Run, endpoint: str, receive_wait_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "LOOSELY_"))}
    env.update(
        PYTHONPATH=str(REPO / "scripts"),
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="audit",
        AWS_SECRET_ACCESS_KEY="audit",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        MOTO_AUDIT_ENDPOINT=endpoint,
        MOTO_AUDIT_MODE=run.mode,
        MOTO_AUDIT_ACCOUNT=run.account,
        MOTO_AUDIT_RECEIVE_WAIT=str(receive_wait_s if run.receive_wait else 0),
    )
    if run.mode == "verified":
        env["MOTO_TEST_ALLOW_AWS_REQUEST"] = "true"
    if run.query:
        env["AWS_DATA_PATH"] = str(QUERY_MODELS)
    return env


def read_junit(path: Path, name: str) -> Result:
    result = Result(name)
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            result.passed += 1
        elif outcome.tag == "skipped":
            result.skipped += 1
        else:
            result.failed += 1
            message = (outcome.get("message") or outcome.text or "").strip().splitlines()
            result.failures[test_id] = message[0][:300] if message else outcome.tag
    return result


def audit(run: Run, python: Path, source: Path, args: argparse.Namespace) -> Result:
    server_args = ["--queue-recreate-delay", "0"]
    if run.account != DEFAULT_ACCOUNT:
        server_args += ["--account-id", run.account]
    if args.database:
        server_args += ["--database", args.database]
    with tempfile.TemporaryDirectory(prefix=f"moto-audit-{run.name}-") as scratch:
        junit = Path(scratch) / "junit.xml"
        with ServerProcess(Path(scratch) / "data", args=server_args, env=server_env()) as server:
            command = [str(python), "-m", "pytest", "-p", "moto_audit_plugin", "-p", "no:cacheprovider"]
            command += ["-q", "--no-header", "-o", "addopts=", f"--junitxml={junit}", "--timeout", "120"]
            if args.k:
                command += ["-k", args.k]
            command += list(run.tests)
            say(f"== {run.name}: {server.endpoint}")
            output = None if args.verbose else subprocess.DEVNULL
            env = pytest_env(run, server.endpoint, args.receive_wait)
            subprocess.run(command, cwd=source, env=env, stdout=output, check=False)
        return read_junit(junit, run.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--database", help="the server's --database (PostgreSQL URL); SQLite when unset")
    parser.add_argument("--receive-wait", type=float, default=1.0, help="seconds before a short poll (sns run)")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "loosely-moto-audit")
    parser.add_argument("-k", help="pytest -k expression, to run some tests only")
    parser.add_argument("--report", type=Path, help="write counts and failures as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args()
    runs = [RUNS[name] for name in args.runs.split(",") if name]

    python, source = prepare(args.work_dir)
    results = [audit(run, python, source, args) for run in runs]

    for result in results:
        say(f"\n{result.run}: {result.passed} passed, {result.failed} failed, {result.skipped} skipped")
        for test_id, message in sorted(result.failures.items()):
            say(f"  FAILED {test_id}: {message}")
    if args.report:
        args.report.write_text(json.dumps([result.__dict__ for result in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
