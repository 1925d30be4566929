"""Fixtures shared by every test directory: fake time, and the PostgreSQL server of the test run.

PostgreSQL: the URL comes from ``LOOSELY_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Tests that need it skip when it does not answer,
except under ``CI=true``, where an unreachable server fails them: CI must never pass by skipping.
"""

from __future__ import annotations

import os

import pytest

from loosely.core.clock import FakeClock

POSTGRES_URL_ENV = "LOOSELY_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail under CI=true (a missing service must not turn CI green)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: not skipping)")
    pytest.skip(reason)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of a reachable test PostgreSQL server (skips, or fails under CI, when there is none)."""
    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        skip_or_fail("psycopg is not installed")
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        skip_or_fail(f"PostgreSQL at {url} is unreachable: {exc}")
    return url
