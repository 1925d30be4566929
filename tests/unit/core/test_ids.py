"""Production and test identifiers: shape, version bits and uniqueness."""

from __future__ import annotations

import uuid

from loosely.core.ids import RandomIds, SequentialIds


def test_random_uuid_is_a_canonical_version_4_uuid() -> None:
    ids = RandomIds()

    for _ in range(600):  # crosses a refill of the random pool
        text = ids.uuid()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_random_uuids_do_not_repeat() -> None:
    ids = RandomIds()

    drawn = {ids.uuid() for _ in range(5000)}

    assert len(drawn) == 5000


def test_random_token_is_url_safe_and_fresh() -> None:
    ids = RandomIds()

    first, second = ids.token(16), ids.token(16)

    assert first != second
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_sequential_ids_count_up_in_uuid_shape() -> None:
    ids = SequentialIds()

    assert ids.uuid() == "00000000-0000-4000-8000-000000000001"
    assert ids.uuid() == "00000000-0000-4000-8000-000000000002"
