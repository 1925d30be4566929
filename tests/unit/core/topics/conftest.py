"""Fixtures of the TopicService tests: the service over a fresh SQLite store, and a topic on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_service_support import SCOPE, Harness, topic_service


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with topic_service(tmp_path) as harness:
        yield harness


@pytest.fixture
async def topic(h: Harness) -> str:
    """The ARN of the standard topic ``orders`` in the caller's account."""
    return await h.service.create_topic(SCOPE, "orders", {})
