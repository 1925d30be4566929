"""FIFO topic message archiving and replay: the policies, their checks and the state of a replay.

A FIFO topic with an ``ArchivePolicy`` (``{"MessageRetentionPeriod": "<days>"}``, 1..365) keeps
every message published to it in an archive, written in the transaction of the publication and
removed by housekeeping once older than the retention. The topic remembers when archiving was
turned on (``ARCHIVE_SINCE``, never shown); ``BeginningArchiveTime`` is the later of that moment and
now less the retention: no replay can start earlier.

A subscription's ``ReplayPolicy`` (``{"PointType": "Timestamp", "StartingPoint": ..., "EndingPoint":
...}``) starts a replay: the archived messages of the window are delivered again, to that
subscription only. Its progress is a `ReplayState` document (kind ``REPLAY_KIND``, keyed by the
subscription ARN) that a background worker leases, so one node runs it and a restart resumes it.
Everything here is pure: time comes in as epoch milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from loosely.core.errors import InvalidParameter
from loosely.core.frozen import record

DAY_MS = 86_400_000
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 365

ARCHIVE_POLICY = "ArchivePolicy"
BEGINNING_ARCHIVE_TIME = "BeginningArchiveTime"
ARCHIVE_SINCE = "ArchiveSinceMs"
"""Topic attribute kept with the others but never shown: when the current archive policy took effect."""

REPLAY_POLICY = "ReplayPolicy"
REPLAY_STATUS = "ReplayStatus"
REPLAY_KIND = "sns-replay"

PENDING = "Pending"
IN_PROGRESS = "In progress"
COMPLETED = "Completed"
FAILED = "Failed"
FINISHED = frozenset({COMPLETED, FAILED})


def _invalid(attribute: str, reason: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid parameter: {attribute} Reason: {reason}")


# ---- ArchivePolicy ----


def check_archive_policy(value: str) -> str:
    """Validate an ArchivePolicy value; an empty one (``""`` or ``{}``) turns archiving off."""
    if not value.strip():
        return value
    try:
        document = json.loads(value)
    except ValueError:
        raise _invalid(ARCHIVE_POLICY, "failed to parse JSON") from None
    if not isinstance(document, dict):
        raise _invalid(ARCHIVE_POLICY, "failed to parse JSON")
    if not document:
        return value
    period = document.get("MessageRetentionPeriod")
    if set(document) - {"MessageRetentionPeriod"} or not _int_in(period, MIN_RETENTION_DAYS, MAX_RETENTION_DAYS):
        raise _invalid(ARCHIVE_POLICY, "MessageRetentionPeriod must be between 1 and 365 days")
    return value


@lru_cache(maxsize=256)
def retention_days(policy: str | None) -> int | None:
    """The retention of a stored ArchivePolicy in days; None when archiving is off (cached: read per publish)."""
    if not policy or not policy.strip():
        return None
    try:
        document = json.loads(policy)
        return int(str(document["MessageRetentionPeriod"]))
    except (ValueError, TypeError, KeyError):
        return None


def archive_attributes(attributes: dict[str, str], now_ms: int) -> dict[str, str]:
    """Topic attributes after an ArchivePolicy change: note when archiving began, forget it when it ends.

    Changing the retention of an archive in force keeps its beginning (its messages stay).
    """
    out = dict(attributes)
    if retention_days(out.get(ARCHIVE_POLICY)) is None:
        out.pop(ARCHIVE_POLICY, None)
        out.pop(ARCHIVE_SINCE, None)
    else:
        out.setdefault(ARCHIVE_SINCE, str(now_ms))
    return out


def beginning_archive_ms(attributes: Mapping[str, str], now_ms: int) -> int | None:
    """The earliest instant a replay of the topic may start from; None without an archive policy."""
    days = retention_days(attributes.get(ARCHIVE_POLICY))
    if days is None:
        return None
    since = int(attributes.get(ARCHIVE_SINCE) or now_ms)
    return max(since, now_ms - days * DAY_MS)


def archive_until_ms(attributes: Mapping[str, str], now_ms: int) -> int | None:
    """Until when a message published now stays archived; None when the topic keeps no archive."""
    days = retention_days(attributes.get(ARCHIVE_POLICY))
    return None if days is None else now_ms + days * DAY_MS


# ---- ReplayPolicy ----


@record
class ReplayWindow:
    start_ms: int
    end_ms: int | None


def parse_replay_policy(value: str) -> ReplayWindow | None:
    """Parse a ReplayPolicy on its own (shape, PointType, timestamps); None for an empty one (no replay)."""
    if not value.strip():
        return None
    try:
        document = json.loads(value)
    except ValueError:
        raise _invalid(REPLAY_POLICY, "failed to parse JSON") from None
    if not isinstance(document, dict):
        raise _invalid(REPLAY_POLICY, "failed to parse JSON")
    if not document:
        return None
    unknown = set(document) - {"PointType", "StartingPoint", "EndingPoint"}
    if unknown:
        raise _invalid(REPLAY_POLICY, f"Unrecognized key {sorted(unknown)[0]}")
    if "PointType" not in document:
        raise _invalid(REPLAY_POLICY, "PointType is required")
    if document["PointType"] != "Timestamp":
        raise _invalid(REPLAY_POLICY, f"Unsupported PointType {document['PointType']}; must be Timestamp")
    if "StartingPoint" not in document:
        raise _invalid(REPLAY_POLICY, "StartingPoint is required")
    start = _timestamp(document["StartingPoint"], "StartingPoint")
    end = None if document.get("EndingPoint") is None else _timestamp(document["EndingPoint"], "EndingPoint")
    if end is not None and end < start:
        raise _invalid(REPLAY_POLICY, "EndingPoint must be later than StartingPoint")
    return ReplayWindow(start, end)


def check_replay_window(window: ReplayWindow, topic_fifo: bool, beginning_ms: int | None, now_ms: int) -> None:
    """The checks against the topic and the clock: a FIFO topic with an archive, a start inside it."""
    if not topic_fifo:
        raise _invalid(REPLAY_POLICY, "Message replay is only supported for subscriptions to FIFO topics")
    if beginning_ms is None:
        raise _invalid(REPLAY_POLICY, "The topic has no ArchivePolicy")
    if window.start_ms > now_ms:
        raise _invalid(REPLAY_POLICY, "StartingPoint cannot be in the future")
    if window.start_ms < beginning_ms:
        raise _invalid(REPLAY_POLICY, "StartingPoint must be later than the topic's BeginningArchiveTime")


def _timestamp(value: Any, name: str) -> int:
    """An ISO-8601 instant in epoch milliseconds (without an offset: UTC)."""
    if not isinstance(value, str):
        raise _invalid(REPLAY_POLICY, f"{name} must be an ISO-8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(REPLAY_POLICY, f"{name} must be an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """An instant as AWS shows BeginningArchiveTime: ISO 8601, UTC, milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


# ---- the archive and a replay's progress ----


@record
class ArchivedMessage:
    """One archived publication: its outbox sequence (publish order), when it was published, its payload."""

    sequence: int
    published_ms: int
    payload: str


@record
class ReplayState:
    """The durable progress of one subscription's replay.

    ``end_ms`` is the policy's EndingPoint, or the moment the replay was asked for: what was
    published later reaches the subscription live. ``cursor`` is the archive sequence delivered up
    to (None before the first page). A lease (owner, until) makes one node in a cluster run it.
    """

    subscription_arn: str
    topic_arn: str
    start_ms: int
    end_ms: int
    status: str = PENDING
    cursor: int | None = None
    replayed: int = 0
    lease_owner: str | None = None
    lease_until_ms: int = 0

    @classmethod
    def start(cls, subscription_arn: str, topic_arn: str, window: ReplayWindow, now_ms: int) -> ReplayState:
        end = now_ms if window.end_ms is None else min(window.end_ms, now_ms)
        return cls(subscription_arn, topic_arn, window.start_ms, end)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def leased(self, owner: str, now_ms: int, lease_ms: int) -> ReplayState:
        status = IN_PROGRESS if self.status == PENDING else self.status
        return replace(self, status=status, lease_owner=owner, lease_until_ms=now_ms + lease_ms)

    def to_json(self) -> str:
        return json.dumps(
            {
                "subscription_arn": self.subscription_arn,
                "topic_arn": self.topic_arn,
                "start_ms": self.start_ms,
                "end_ms": self.end_ms,
                "status": self.status,
                "cursor": self.cursor,
                "replayed": self.replayed,
                "lease_owner": self.lease_owner,
                "lease_until_ms": self.lease_until_ms,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ReplayState:
        return cls(**json.loads(text))


def replay_page(
    state: ReplayState, rows: list[ArchivedMessage], limit: int
) -> tuple[list[ArchivedMessage], ReplayState]:
    """Which of a page of archived rows (read after ``state.cursor``) to replay, and the state after them.

    Rows outside the window are passed over; the first row published after the window, or a short
    page (the archive has nothing more), completes the replay.
    """
    chosen: list[ArchivedMessage] = []
    cursor = state.cursor
    for row in rows:
        if row.published_ms > state.end_ms:
            return chosen, _advanced(state, cursor, len(chosen), COMPLETED)
        cursor = row.sequence
        if row.published_ms >= state.start_ms:
            chosen.append(row)
    status = COMPLETED if len(rows) < limit else IN_PROGRESS
    return chosen, _advanced(state, cursor, len(chosen), status)


def _advanced(state: ReplayState, cursor: int | None, count: int, status: str) -> ReplayState:
    return replace(state, cursor=cursor, replayed=state.replayed + count, status=status)


def _int_in(value: object, low: int, high: int) -> bool:
    if isinstance(value, bool):
        return False
    try:
        number = int(str(value))
    except ValueError:
        return False
    return low <= number <= high
