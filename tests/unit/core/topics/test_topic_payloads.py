"""The outbox payload of a Publish: written by hand, it must be the text ``json.dumps`` writes, and read back."""

from __future__ import annotations

import pytest

from loosely.core.topics.envelope import iso_timestamp
from loosely.core.topics.models import PublishedMessage, decode_publication

CASES = [
    PublishedMessage("m1", "arn:aws:sns:us-east-1:1:t", "hello", 1_764_120_000_123),
    PublishedMessage(
        "m2",
        "arn:aws:sns:us-east-1:1:t.fifo",
        'héllo "wörld" \\ \n\t\u2028 🎉 \ud800 \x00',
        0,
        subject="Sübject",
        message_structure="json",
        attributes={"a": {"Type": "String", "Value": "vé"}, "b\n": {"Type": "Binary", "Value": "AAE="}},
        group_id="g",
        dedup_id="d",
        sequence_number="00000000000000000001",
        replay_subscription="arn:aws:sns:us-east-1:1:t.fifo:s",
        trace_header="Root=1-abc",
    ),
    PublishedMessage("m3", "arn", "", 5, trace_header="t"),
    PublishedMessage("m4", "arn", "x", 1.5),  # type: ignore[arg-type]  # not an int: json.dumps writes it
    PublishedMessage("m5", "arn", "x", 1, attributes={"n": {"Type": "Number", "Value": 7}}),  # type: ignore[dict-item]
]


@pytest.mark.parametrize("message", CASES)
def test_a_payload_is_the_text_json_dumps_writes_and_reads_back(message: PublishedMessage) -> None:
    assert message.to_json() == message._to_json_dumps()
    assert decode_publication(message.to_json()) == message


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_764_120_000_123, "2025-11-26T01:20:00.123Z"),
        (951_825_599_999, "2000-02-29T11:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_envelope_timestamps(epoch_ms: int, text: str) -> None:
    assert iso_timestamp(epoch_ms) == text
