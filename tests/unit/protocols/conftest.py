"""Fixtures of the protocol tests: botocore clients served in process (see `_support`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ._support import Bridge, make_bridge


@pytest.fixture(params=["json", "query"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bridge(protocol: str) -> Bridge:
    return make_bridge(protocol)


@pytest.fixture
def bridge_factory() -> Callable[..., Bridge]:
    return make_bridge
