"""End-to-end fixtures: a real ``python -m loosely serve`` subprocess and real AWS clients.

`loosely` (one server for the whole session) and `start_loosely` (a fresh server per call, for
restart tests) yield a `Loosely` handle: its endpoint and data directory, boto3 clients speaking
AWS JSON or, with botocore 1.31.0's SQS model, the Query protocol, and an AWS CLI runner.
Every process started here is stopped at teardown (SIGTERM, then SIGKILL on timeout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from loosely.server.testing import ServerProcess

# botocore 1.31.0's SQS model (Query protocol), kept by the protocol tests.
QUERY_MODELS = Path(__file__).resolve().parents[1] / "unit" / "protocols" / "data"
PROTOCOLS = ("json", "query")
CREDENTIALS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "secret"}
REGION = "us-east-1"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None


@dataclass
class Loosely:
    """A running server, as tests see it."""

    process: ServerProcess
    home: Path

    @property
    def endpoint(self) -> str:
        return self.process.endpoint

    @property
    def data_dir(self) -> Path:
        return self.process.data_dir

    def boto3_client(self, service: str = "sqs", protocol: str = "json", **config: Any) -> Any:
        """A boto3 client for this server; ``protocol="query"`` loads the Query-era model.

        ``config`` adds botocore `Config` options, e.g. ``parameter_validation=False``.
        """
        client = self._session(protocol).client(service, **self._client_options(config))
        assert client.meta.service_model.protocol == protocol
        return client

    def boto3_resource(self, service: str = "sqs", protocol: str = "json") -> Any:
        """boto3's resource layer (``sqs.Queue``, ``sns.Topic``, ...) over a client like `boto3_client`'s."""
        resource = self._session(protocol).resource(service, **self._client_options({}))
        assert resource.meta.client.meta.service_model.protocol == protocol
        return resource

    @staticmethod
    def _session(protocol: str) -> boto3.Session:
        if protocol not in PROTOCOLS:
            raise ValueError(protocol)
        session = botocore.session.get_session()
        if protocol == "query":
            session.set_config_variable("data_path", str(QUERY_MODELS))
        return boto3.Session(botocore_session=session, region_name=REGION)

    def _client_options(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            "config": Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30, **config),
            **CREDENTIALS,
        }

    def aws(self, *args: str, timeout_s: float = 60) -> CliResult:
        """Run ``aws --endpoint-url <server> ...`` with test credentials, no pager, JSON output."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": str(self.home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws-credentials"),
        }
        command = [sys.executable, "-m", "awscli", "--endpoint-url", self.endpoint, "--output", "json", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
        return CliResult(done.returncode, done.stdout, done.stderr)


def _server_env() -> dict[str, str]:
    """The parent's environment minus any LOOSELY_* setting that would change what tests expect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOSELY_")}
    env["LOOSELY_LOG_LEVEL"] = "warning"
    return env


@pytest.fixture(scope="session")
def loosely(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loosely]:
    """One server shared by the session's compat tests (tests use unique queue names)."""
    process = ServerProcess(tmp_path_factory.mktemp("loosely-data"), env=_server_env())
    process.start()
    try:
        yield Loosely(process, tmp_path_factory.mktemp("home"))
    finally:
        process.stop()


@pytest.fixture
def start_loosely(tmp_path: Path) -> Iterator[Callable[..., Loosely]]:
    """Start a fresh server (``data_dir`` and extra CLI ``args`` optional); all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, args: tuple[str, ...] = ()) -> Loosely:
        process = ServerProcess(data_dir or tmp_path / "data", args=args, env=_server_env())
        started.append(process)
        process.start()
        return Loosely(process, tmp_path)

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture(params=PROTOCOLS)
def sqs(request: pytest.FixtureRequest, loosely: Loosely) -> Iterator[Any]:
    """A boto3 SQS client of the shared server, once per wire protocol (a test module may override it)."""
    client = loosely.boto3_client("sqs", protocol=request.param)
    yield client
    client.close()


@pytest.fixture
def sns(loosely: Loosely) -> Any:
    """A boto3 SNS client of the shared server (SNS speaks only Query)."""
    return loosely.boto3_client("sns", protocol="query")


@pytest.fixture
def raw_sns(loosely: Loosely) -> Any:
    """An SNS client without client-side parameter validation, to send what SDKs would refuse."""
    return loosely.boto3_client("sns", protocol="query", parameter_validation=False)
