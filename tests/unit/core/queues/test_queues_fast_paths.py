"""The hand-written fast paths of the send and receive paths give what the general code gives."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from loosely.core.queues import meta
from loosely.core.queues.models import MessageAttributeValue as Attr


def _general(md5: str, sender: str, dedup: str | None) -> str:
    document: dict[str, object] = {"v": 1, "md5": md5, "sender": sender}
    if dedup is not None:
        document["dedup"] = dedup
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


@given(sender=st.text(max_size=20))
def test_meta_without_attributes_is_the_json_document_byte_for_byte(sender: str) -> None:
    md5 = "0cc175b9c0f1b6a831c399e269772661"
    text = meta.encode_meta_fields(md5, sender, {}, {}, None, None, None)
    assert text == _general(md5, sender, None)
    decoded = meta.decode_meta(text, "a")
    assert (decoded.md5_of_body, decoded.sender_id, decoded.message_attributes) == (md5, sender, {})


def test_meta_with_attributes_or_dedup_takes_the_general_path() -> None:
    attrs = {"n": Attr("Number", string_value="1")}
    text = meta.encode_meta_fields("m", "s", attrs, {}, "d1", None, "dd")
    assert json.loads(text) == {
        "v": 1,
        "md5": "m",
        "sender": "s",
        "attrs": {"n": {"t": "Number", "s": "1"}},
        "md5_attrs": "d1",
        "dedup": "dd",
    }
    assert meta.encode_meta_fields("m", 's"\n', {}, {}, None, None, "x") == _general("m", 's"\n', "x")
