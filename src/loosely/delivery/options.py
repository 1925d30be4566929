"""Tuning knobs and counters shared by the fan-out and delivery workers."""

from __future__ import annotations

from dataclasses import asdict

from loosely.core.frozen import record

__all__ = ["DeliveryOptions", "DeliveryStats"]


@record
class DeliveryOptions:
    """How hard one node works the outbox. The defaults suit a small server; tests shrink the waits."""

    fanout_batch: int = 32  # publications claimed at once
    fanout_rows: int = 200  # SQS messages and deliveries written per store transaction by fan-out when behind
    # The same while fan-out gives way to requests: a request that shares a commit group with a chunk
    # waits for its rows, so they stay few (50 served 7-25 % fewer publishes/s at 10 subscribers).
    fanout_rows_yielding: int = 20
    fanout_share: float = 0.2  # most of the event loop's busy time fan-out takes while requests are served
    fanout_max_lag_ms: int = 5_000  # fan-out this far behind (oldest publication's age) takes the lead instead
    fanout_share_behind: float = 0.9  # its share then: requests keep at least the rest
    # Fan-out this far behind holds Publish back (`FanOutBacklog`): well above ``fanout_max_lag_ms``, so
    # that a burst is acknowledged at the publish path's speed and only sustained overload slows publishers.
    publish_hold_lag_ms: int = 30_000
    publish_hold_max_s: float = 5.0  # while held back, a Publish waits at most this long to be admitted
    fanout_lease_ms: int = 30_000  # a node that dies mid fan-out loses its claim after this
    claim_batch: int = 64  # deliveries claimed at once
    max_in_flight: int = 512  # deliveries one node holds (running or waiting for their endpoint)
    endpoint_concurrency: int = 8  # attempts running at once against one endpoint
    endpoint_backlog: int = 32  # deliveries one endpoint may hold; more are handed back
    lease_ms: int = 120_000  # lease of a claimed delivery; longer than the longest attempt plus its wait
    defer_ms: int = 1_000  # how far a delivery handed back for its throttle is put off
    busy_defer_ms: int = 50  # how far a delivery handed back because its endpoint's backlog was full is put off
    lane_wait_ms: int = 200  # how long a delivery whose endpoint's backlog is full waits for a place first
    max_throttle_wait_s: float = 5.0
    idle_poll_s: float = 0.5  # when nothing is due, look again after this (wake-ups come sooner)
    shutdown_grace_s: float = 5.0  # attempts in progress may finish within this at shutdown
    dedup_window_ms: int = 5 * 60 * 1000  # FIFO deduplication window of SQS sends
    http_timeout_s: float = 15.0  # SNS gives an HTTP/S endpoint 15 s


@record(frozen=False)
class DeliveryStats:
    """What this node's workers did since start (NumberOfNotificationsDelivered/Failed/FilteredOut and friends)."""

    publications: int = 0
    sqs_messages: int = 0
    deliveries_created: int = 0
    filtered_out: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dead_lettered: int = 0
    deferred: int = 0
    publishes_held: int = 0  # Publish requests held back while fan-out was behind (`FanOutBacklog`)
    publishes_held_too_long: int = 0  # of those, recorded after ``publish_hold_max_s`` without admission

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
