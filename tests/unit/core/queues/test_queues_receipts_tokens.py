"""Receipt handles and opaque tokens: round trips, and everything malformed is rejected."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loosely.core.errors import InvalidParameterValue, ReceiptHandleIsInvalid
from loosely.core.queues import receipts, tokens
from loosely.core.queues.models import MessageRef


def test_receipt_round_trip_and_shape() -> None:
    handle = receipts.encode(7, MessageRef(row_id=123, receive_count=2), 1_700_000_000_000)
    assert len(handle) == 128
    assert set(handle) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    receipt = receipts.decode(handle, 7)
    assert receipt.ref == MessageRef(row_id=123, receive_count=2)
    assert receipt.received_ms == 1_700_000_000_000


def test_receipt_differs_per_receive() -> None:
    first = receipts.encode(1, MessageRef(1, 1), 0)
    second = receipts.encode(1, MessageRef(1, 2), 0)
    assert first != second


def test_receipt_from_another_queue_is_invalid_for_this_queue() -> None:
    """AWS's wording for a well-formed handle of another queue (recorded: PyQS issue #24, aws-sdk-java-v2 #3101)."""
    handle = receipts.encode(1, MessageRef(1, 1), 0)
    with pytest.raises(ReceiptHandleIsInvalid) as caught:
        receipts.decode(handle, 2)
    assert caught.value.message == f'The receipt handle "{handle}" is not valid for this queue.'


def test_receipt_tampered_byte_is_invalid() -> None:
    handle = receipts.encode(1, MessageRef(1, 1), 0)
    raw = bytearray(base64.urlsafe_b64decode(handle))
    raw[10] ^= 1
    with pytest.raises(ReceiptHandleIsInvalid):
        receipts.decode(base64.urlsafe_b64encode(bytes(raw)).decode(), 1)


@given(st.text(max_size=200))
def test_receipt_decode_of_arbitrary_text_never_crashes(text: str) -> None:
    with pytest.raises(ReceiptHandleIsInvalid):
        receipts.decode(text, 1)


def test_next_token_round_trip_and_garbage() -> None:
    assert tokens.decode_next_token(tokens.encode_next_token("queue-9")) == "queue-9"
    for bad in ("!!", "e30=", base64.urlsafe_b64encode(b'{"after": 3}').decode()):
        with pytest.raises(InvalidParameterValue, match="Invalid NextToken value"):
            tokens.decode_next_token(bad)


def test_task_handle_round_trip_and_garbage() -> None:
    handle = tokens.encode_task_handle("id-1", "arn:aws:sqs:us-east-1:000000000000:dlq")
    assert tokens.decode_task_handle(handle) == ("id-1", "arn:aws:sqs:us-east-1:000000000000:dlq")
    with pytest.raises(InvalidParameterValue, match=r"^Value for parameter TaskHandle is invalid\.$"):
        tokens.decode_task_handle("garbage")
