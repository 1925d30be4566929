"""The processing-time share of fair queues' noisy-tenant detection, as pure bookkeeping (storage._fair)."""

from __future__ import annotations

import pytest

from loosely.storage._fair import PROCESSING_WINDOW_MS as W
from loosely.storage._fair import FairQueues, ProcessingTimes, slow_tenants


@pytest.mark.parametrize(
    ("processing", "slow"),
    [
        ({}, set()),
        ({"A": 11, "B": 89}, {"A", "B"}),
        ({"A": 10, "B": 90}, {"B"}),  # exactly 10 % is not more than 10 %
        ({None: 1_000, "A": 50}, set()),  # ungrouped messages are each their own tenant: never noisy
        ({None: 100, "A": 12}, {"A"}),
        ({"A": 0, "B": 0}, set()),
    ],
)
def test_slow_tenants(processing: dict[str | None, int], slow: set[str]) -> None:
    assert slow_tenants(processing) == slow


def test_times_count_in_their_window_and_the_next() -> None:
    times = ProcessingTimes(start_ms=0)
    times.add(10, [("A", 100), ("B", 5)])
    times.add(W + 10, [("A", 1)])
    assert times.recent(W + 20) == {"A": 101, "B": 5}
    assert times.recent(2 * W) == {"A": 1}
    assert times.recent(2 * W + W // 2) == {"A": 1}
    assert times.recent(3 * W) == {}


def test_a_long_pause_forgets_both_windows() -> None:
    times = ProcessingTimes(start_ms=0)
    times.add(1, [("A", 100)])
    times.add(5 * W + 1, [("B", 7)])
    assert times.recent(5 * W + 2) == {"B": 7}


def test_a_clock_that_went_back_counts_into_the_current_window() -> None:
    times = ProcessingTimes(start_ms=W)
    times.add(W - 5, [("A", 3), ("A", -4)])  # negative: a receive stamped after the delete counts nothing
    assert times.recent(W) == {"A": 3}


def test_a_detection_adds_slow_tenants_with_their_in_flight_counts() -> None:
    fair = FairQueues()
    fair.processed(7, 0, [("A", 900), ("B", 100), ("C", 5)])
    assert fair.record(7, 10, [("A", 2), ("C", 1)]) == {"A": 2}
    fair.processed(7, 20, [("B", 1_000)])
    assert fair.record(7, 30, [("A", 2), (None, 40)]) == {"A": 2, "B": 0}
    fair.forget(7)
    assert not fair.knows(7)
