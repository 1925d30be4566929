"""The hand-written fast paths of the send and receive paths give what the general code gives."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import threading

from hypothesis import given
from hypothesis import strategies as st

from loosely.core.queues import meta, receipts
from loosely.core.queues.models import MessageAttributeValue as Attr
from loosely.core.queues.models import MessageRef


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


# ---- receipt handles ----


def _earlier_handle(queue_id: int, row_id: int, count: int, received_ms: int) -> str:
    """A handle as the previous version made it: the filler was a hash of the header."""
    header = struct.pack(">BQQIQ", 1, queue_id, row_id, count, received_ms)
    body = header + hashlib.sha512(b"loosely-receipt-handle" + header).digest()[:59]
    checksum = hashlib.sha256(b"loosely-receipt-handle" + body).digest()[-8:]
    return base64.urlsafe_b64encode(body + checksum).decode("ascii")


def _earlier_accepts(handle: str) -> bool:
    """The previous version's character rule: decode leniently, then require the canonical encoding."""
    if len(handle) != 128 or not handle.isascii():
        return False
    try:
        raw = base64.urlsafe_b64decode(handle.encode("ascii"))
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 96 and base64.urlsafe_b64encode(raw).decode("ascii") == handle


def test_handles_of_the_earlier_format_still_decode() -> None:
    handle = _earlier_handle(3, 41, 2, 1_700_000_000_123)
    receipt = receipts.decode(handle, 3)
    assert receipt.ref == MessageRef(41, 2)
    assert receipt.received_ms == 1_700_000_000_123


def test_handles_are_fresh_per_receive_and_round_trip() -> None:
    handles = {receipts.encode_parts(1, 5, 1, 0) for _ in range(200)}  # crosses a refill of the filler pool
    assert len(handles) == 200
    assert all(receipts.decode(h, 1).ref == MessageRef(5, 1) for h in handles)


def test_filler_chunks_are_handed_out_once_across_threads() -> None:
    """The lock-free pool: threads taking chunks through several refills never share one."""
    filler = receipts._Filler()
    taken: list[list[bytes]] = [[] for _ in range(4)]

    def take(into: list[bytes]) -> None:
        into.extend(filler.take() for _ in range(500))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    chunks = [chunk for into in taken for chunk in into]
    assert len(chunks) == 2000 and len(set(chunks)) == 2000
    assert {len(chunk) for chunk in chunks} == {59}


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n"


@given(st.data())
def test_handle_characters_are_judged_as_before(data: st.DataObject) -> None:
    """Change characters of a valid handle: strict decoding accepts exactly what the old rule accepted."""
    chars = list(_earlier_handle(1, 2, 3, 4))
    for _ in range(data.draw(st.integers(0, 3))):
        chars[data.draw(st.integers(0, 127))] = data.draw(st.sampled_from(_ALPHABET))
    handle = "".join(chars)
    assert (receipts._raw_bytes(handle) is not None) == _earlier_accepts(handle)


# ---- the digest a plain receive reads from meta ----


@given(sender=st.text(max_size=10), dedup=st.none() | st.text(max_size=5))
def test_stored_md5_is_the_decoded_one(sender: str, dedup: str | None) -> None:
    md5 = "9e107d9d372bb6826bd81d3542a419d6"
    text = meta.encode_meta_fields(md5, sender, {}, {}, None, None, dedup)
    assert meta.stored_md5_of_body(text, "b") == meta.decode_meta(text, "b").md5_of_body == md5


def test_stored_md5_of_other_texts_falls_back_to_decoding() -> None:
    spaced = '{"v": 1, "md5": "9e107d9d372bb6826bd81d3542a419d6", "sender": "s"}'  # a database's re-serialisation
    assert meta.stored_md5_of_body(spaced, "b") == "9e107d9d372bb6826bd81d3542a419d6"
    assert meta.stored_md5_of_body("not json", "a") == "0cc175b9c0f1b6a831c399e269772661"
    assert meta.stored_md5_of_body('{"v":1,"md5":"short","sender":""} extra', "a") == "0cc175b9c0f1b6a831c399e269772661"
    assert meta.decode_meta(' {"v":1,"md5":"x","sender":"s"} ', "a").sender_id == "s"
