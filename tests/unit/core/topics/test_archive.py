"""The pure rules of FIFO message archiving and replay: policies, the archive's beginning, replay pages."""

from __future__ import annotations

import pytest

from loosely.core.errors import InvalidParameter
from loosely.core.topics.archive import (
    ARCHIVE_SINCE,
    COMPLETED,
    DAY_MS,
    IN_PROGRESS,
    PENDING,
    ArchivedMessage,
    ReplayState,
    ReplayWindow,
    archive_attributes,
    archive_until_ms,
    beginning_archive_ms,
    check_archive_policy,
    check_replay_window,
    iso_ms,
    parse_replay_policy,
    replay_page,
    retention_days,
)

NOW = 1_700_000_000_000
_RANGE = "MessageRetentionPeriod must be between 1 and 365 days"
_BACKWARDS = (
    '{"PointType": "Timestamp", "StartingPoint": "2023-11-14T22:13:20Z", "EndingPoint": "2023-11-14T22:13:19Z"}'
)


@pytest.mark.parametrize("value", ["", "{}", '{"MessageRetentionPeriod": "1"}', '{"MessageRetentionPeriod": 365}'])
def test_valid_archive_policies(value: str) -> None:
    assert check_archive_policy(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{", "failed to parse JSON"),
        ("[]", "failed to parse JSON"),
        ('{"MessageRetentionPeriod": "0"}', _RANGE),
        ('{"MessageRetentionPeriod": "366"}', _RANGE),
        ('{"MessageRetentionPeriod": true}', _RANGE),
        ('{"MessageRetentionPeriod": "7", "Other": 1}', _RANGE),
    ],
)
def test_invalid_archive_policies(value: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_archive_policy(value)
    assert caught.value.message == f"Invalid parameter: ArchivePolicy Reason: {reason}"


def test_archiving_begins_when_the_policy_is_set_and_keeps_its_beginning_on_a_change() -> None:
    on = archive_attributes({"ArchivePolicy": '{"MessageRetentionPeriod": "3"}'}, NOW)
    assert on[ARCHIVE_SINCE] == str(NOW)
    changed = archive_attributes({**on, "ArchivePolicy": '{"MessageRetentionPeriod": "9"}'}, NOW + 5)
    assert changed[ARCHIVE_SINCE] == str(NOW)
    off = archive_attributes({**on, "ArchivePolicy": "{}"}, NOW + 10)
    assert "ArchivePolicy" not in off and ARCHIVE_SINCE not in off


def test_beginning_archive_time_is_the_later_of_the_policy_and_the_retention() -> None:
    attributes = archive_attributes({"ArchivePolicy": '{"MessageRetentionPeriod": "2"}'}, NOW)
    assert beginning_archive_ms(attributes, NOW + DAY_MS) == NOW
    assert beginning_archive_ms(attributes, NOW + 3 * DAY_MS) == NOW + DAY_MS
    assert beginning_archive_ms({}, NOW) is None
    assert archive_until_ms(attributes, NOW) == NOW + 2 * DAY_MS
    assert archive_until_ms({}, NOW) is None
    assert retention_days("not json") is None


def test_replay_policy_parsing() -> None:
    window = parse_replay_policy(
        '{"PointType": "Timestamp", "StartingPoint": "2023-11-14T22:13:20.000Z", "EndingPoint": "2023-11-14T22:13:21Z"}'
    )
    assert window == ReplayWindow(NOW, NOW + 1000)
    assert parse_replay_policy('{"PointType": "Timestamp", "StartingPoint": "2023-11-14T23:13:20+01:00"}') == (
        ReplayWindow(NOW, None)
    )
    assert parse_replay_policy("") is None
    assert parse_replay_policy("{}") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("nope", "failed to parse JSON"),
        ('{"StartingPoint": "2023-11-14T22:13:20Z"}', "PointType is required"),
        ('{"PointType": "timestamp", "StartingPoint": "2023-11-14T22:13:20Z"}', "Unsupported PointType"),
        ('{"PointType": "Timestamp"}', "StartingPoint is required"),
        ('{"PointType": "Timestamp", "StartingPoint": 5}', "must be an ISO-8601 timestamp"),
        ('{"PointType": "Timestamp", "StartingPoint": "x", "Extra": 1}', "Unrecognized key Extra"),
        (_BACKWARDS, "EndingPoint must be later than StartingPoint"),
    ],
)
def test_invalid_replay_policies(value: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_replay_policy(value)
    assert caught.value.message.startswith("Invalid parameter: ReplayPolicy Reason: ")
    assert reason in caught.value.message


def test_replay_window_checks_against_the_topic_and_the_clock() -> None:
    check_replay_window(ReplayWindow(NOW, None), True, NOW, NOW)
    with pytest.raises(InvalidParameter, match="FIFO topics"):
        check_replay_window(ReplayWindow(NOW, None), False, NOW, NOW)
    with pytest.raises(InvalidParameter, match="no ArchivePolicy"):
        check_replay_window(ReplayWindow(NOW, None), True, None, NOW)
    with pytest.raises(InvalidParameter, match="in the future"):
        check_replay_window(ReplayWindow(NOW + 1, None), True, NOW, NOW)
    with pytest.raises(InvalidParameter, match="BeginningArchiveTime"):
        check_replay_window(ReplayWindow(NOW - 1, None), True, NOW, NOW)


def test_a_replay_without_an_ending_point_ends_where_live_delivery_took_over() -> None:
    state = ReplayState.start("sub", "topic", ReplayWindow(NOW - 10, None), NOW)
    assert (state.end_ms, state.status) == (NOW, PENDING)
    later = ReplayState.start("sub", "topic", ReplayWindow(NOW - 10, NOW + 99), NOW)
    assert later.end_ms == NOW
    assert ReplayState.from_json(state.to_json()) == state
    assert state.leased("me", NOW, 5).status == IN_PROGRESS


def rows(*published: int) -> list[ArchivedMessage]:
    return [ArchivedMessage(sequence=i + 1, published_ms=ms, payload="{}") for i, ms in enumerate(published)]


def test_replay_pages_skip_rows_before_the_window_and_stop_after_it() -> None:
    state = ReplayState("sub", "topic", start_ms=100, end_ms=300, status=IN_PROGRESS)
    chosen, after = replay_page(state, rows(90, 100, 200), limit=3)
    assert [r.sequence for r in chosen] == [2, 3]
    assert (after.cursor, after.status, after.replayed) == (3, IN_PROGRESS, 2)
    chosen, after = replay_page(after, [ArchivedMessage(4, 300, "{}"), ArchivedMessage(5, 301, "{}")], limit=3)
    assert [r.sequence for r in chosen] == [4]
    assert (after.cursor, after.status, after.replayed) == (4, COMPLETED, 3)


def test_a_short_page_completes_the_replay() -> None:
    state = ReplayState("sub", "topic", start_ms=0, end_ms=1000)
    chosen, after = replay_page(state, rows(10), limit=5)
    assert len(chosen) == 1 and after.status == COMPLETED
    _, empty = replay_page(state, [], limit=5)
    assert empty.status == COMPLETED and empty.cursor is None


def test_iso_ms() -> None:
    assert iso_ms(NOW + 7) == "2023-11-14T22:13:20.007Z"
