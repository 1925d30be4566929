"""Contract: versioned documents by kind and key (`DocumentStore`), on every backend."""

from __future__ import annotations

import asyncio

import pytest

from contract.conftest import Harness, skip_or_fail
from contract.helpers import T0
from loosely.core.documents import Document
from loosely.core.errors import ConcurrentUpdate
from loosely.core.ports import DocumentStore, QueueStore

TOPIC = "topic"
SUB = "subscription"


@pytest.fixture
def docs(store: QueueStore) -> DocumentStore:
    if not isinstance(store, DocumentStore):
        skip_or_fail(f"{type(store).__name__} does not keep documents yet")
    assert isinstance(store, DocumentStore)
    return store


async def keys(docs: DocumentStore, kind: str, **kw: object) -> list[str]:
    return [d.key for d in await docs.list_documents(kind, **kw)]  # type: ignore[arg-type]


# ---- put / get ----


async def test_put_new_document_stores_version_one(docs: DocumentStore) -> None:
    doc, wrote = await docs.put_document(TOPIC, "arn:t1", '{"a":1}', T0, parent="p")

    assert wrote
    assert doc == Document(TOPIC, "arn:t1", "p", '{"a":1}', 1, T0)
    assert await docs.get_document(TOPIC, "arn:t1") == doc


async def test_get_missing_or_other_kind_is_none(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "{}", T0)

    assert await docs.get_document(TOPIC, "other") is None
    assert await docs.get_document(SUB, "k") is None


async def test_put_existing_replaces_body_parent_and_bumps_version(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", '{"v":1}', T0, parent="p1")

    doc, wrote = await docs.put_document(TOPIC, "k", '{"v":2}', T0 + 5)

    assert wrote
    assert doc == Document(TOPIC, "k", None, '{"v":2}', 2, T0 + 5)
    assert await docs.get_document(TOPIC, "k") == doc


async def test_put_same_key_in_two_kinds_keeps_two_documents(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "1", T0)
    await docs.put_document(SUB, "k", "2", T0)

    topic, sub = await docs.get_document(TOPIC, "k"), await docs.get_document(SUB, "k")
    assert topic is not None and sub is not None
    assert (topic.body, topic.version, sub.body, sub.version) == ("1", 1, "2", 1)


async def test_put_if_absent_on_existing_writes_nothing(docs: DocumentStore) -> None:
    first, _ = await docs.put_document(TOPIC, "k", "first", T0)

    doc, wrote = await docs.put_document(TOPIC, "k", "second", T0 + 1, if_absent=True)

    assert not wrote
    assert doc == first
    assert await docs.get_document(TOPIC, "k") == first


async def test_put_if_absent_on_missing_creates(docs: DocumentStore) -> None:
    doc, wrote = await docs.put_document(TOPIC, "k", "x", T0, if_absent=True)

    assert wrote and doc.version == 1
    assert await docs.get_document(TOPIC, "k") == doc


async def test_put_expected_version_matching_writes(docs: DocumentStore) -> None:
    first, _ = await docs.put_document(TOPIC, "k", "a", T0)

    doc, wrote = await docs.put_document(TOPIC, "k", "b", T0 + 1, expected_version=first.version)

    assert wrote and (doc.body, doc.version) == ("b", 2)


async def test_put_expected_version_stale_raises_and_keeps_document(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "a", T0)
    current, _ = await docs.put_document(TOPIC, "k", "b", T0 + 1)

    with pytest.raises(ConcurrentUpdate):
        await docs.put_document(TOPIC, "k", "c", T0 + 2, expected_version=1)

    assert await docs.get_document(TOPIC, "k") == current


async def test_put_expected_version_on_missing_raises_unless_zero(docs: DocumentStore) -> None:
    with pytest.raises(ConcurrentUpdate):
        await docs.put_document(TOPIC, "k", "a", T0, expected_version=1)
    assert await docs.get_document(TOPIC, "k") is None

    doc, wrote = await docs.put_document(TOPIC, "k", "a", T0, expected_version=0)

    assert wrote and doc.version == 1


async def test_put_concurrent_compare_and_set_lets_exactly_one_win(docs: DocumentStore) -> None:
    base, _ = await docs.put_document(TOPIC, "k", "base", T0)

    async def attempt(i: int) -> bool:
        try:
            await docs.put_document(TOPIC, "k", f"w{i}", T0 + 1, expected_version=base.version)
        except ConcurrentUpdate:
            return False
        return True

    wins = await asyncio.gather(*(attempt(i) for i in range(8)))

    assert sum(wins) == 1
    stored = await docs.get_document(TOPIC, "k")
    assert stored is not None and stored.version == 2 and stored.body == f"w{wins.index(True)}"


async def test_put_concurrent_if_absent_creates_once(docs: DocumentStore) -> None:
    results = await asyncio.gather(*(docs.put_document(TOPIC, "k", f"w{i}", T0, if_absent=True) for i in range(8)))

    winners = [doc for doc, wrote in results if wrote]
    assert len(winners) == 1
    assert all(doc == winners[0] for doc, _ in results)


async def test_put_keeps_unicode_and_large_bodies(docs: DocumentStore) -> None:
    body = '{"m":"' + "é漢🙂" * 20_000 + '"}'

    await docs.put_document(TOPIC, "ключ/🙂", body, T0)

    stored = await docs.get_document(TOPIC, "ключ/🙂")
    assert stored is not None and stored.body == body


# ---- list ----


async def _fill(docs: DocumentStore) -> None:
    for key, parent in [
        ("b", "t1"),
        ("a", "t1"),
        ("ab", "t2"),
        ("abc", "t1"),
        ("b/1", None),
        ("ac", "t2"),
        ("Z", None),
        ("é", "t1"),
        ("abz", "t1"),
    ]:
        await docs.put_document(SUB, key, "{}", T0, parent=parent)
    await docs.put_document(TOPIC, "a", "{}", T0, parent="t1")


async def test_list_returns_kind_sorted_by_key(docs: DocumentStore) -> None:
    await _fill(docs)

    listed = await docs.list_documents(SUB)

    assert [d.key for d in listed] == sorted(["b", "a", "ab", "abc", "b/1", "ac", "Z", "é", "abz"])
    assert all(d.kind == SUB for d in listed)
    assert await keys(docs, "nothing") == []


async def test_list_by_parent(docs: DocumentStore) -> None:
    await _fill(docs)

    assert await keys(docs, SUB, parent="t1") == ["a", "abc", "abz", "b", "é"]
    assert await keys(docs, SUB, parent="t2") == ["ab", "ac"]
    assert await keys(docs, SUB, parent="none") == []


async def test_list_by_prefix_includes_the_prefix_itself(docs: DocumentStore) -> None:
    await _fill(docs)

    assert await keys(docs, SUB, prefix="ab") == ["ab", "abc", "abz"]
    assert await keys(docs, SUB, prefix="b") == ["b", "b/1"]
    assert await keys(docs, SUB, prefix="x") == []
    assert await keys(docs, SUB, prefix="é") == ["é"]


async def test_list_after_is_exclusive_and_pages(docs: DocumentStore) -> None:
    await _fill(docs)
    every = await keys(docs, SUB)

    pages: list[str] = []
    after = ""
    while True:
        page = await keys(docs, SUB, after=after, limit=2)
        if not page:
            break
        pages += page
        after = page[-1]

    assert pages == every
    assert await keys(docs, SUB, after="ab") == [k for k in every if k > "ab"]


async def test_list_combines_parent_prefix_after_and_limit(docs: DocumentStore) -> None:
    await _fill(docs)

    assert await keys(docs, SUB, parent="t1", prefix="ab", after="abc") == ["abz"]
    assert await keys(docs, SUB, parent="t1", prefix="ab", after="a") == ["abc", "abz"]
    assert await keys(docs, SUB, prefix="a", after="ab", limit=2) == ["abc", "abz"]
    assert await keys(docs, SUB, prefix="ab", after="zzz") == []
    assert await keys(docs, SUB, limit=0) == []


async def test_list_prefix_at_the_top_of_unicode_is_bounded_correctly(docs: DocumentStore) -> None:
    top = "\U0010ffff"
    for key in ["a" + top, "a" + top + "x", "b", "a\ud7ff", "a\ue000"]:
        await docs.put_document(SUB, key, "{}", T0)

    assert await keys(docs, SUB, prefix="a" + top) == ["a" + top, "a" + top + "x"]
    assert await keys(docs, SUB, prefix="a\ud7ff") == ["a\ud7ff"]
    assert await keys(docs, SUB, prefix=top) == []


# ---- delete ----


async def test_delete_document_reports_whether_it_existed(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "{}", T0)

    assert await docs.delete_document(TOPIC, "k") is True
    assert await docs.delete_document(TOPIC, "k") is False
    assert await docs.get_document(TOPIC, "k") is None


async def test_delete_then_put_starts_again_at_version_one(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "a", T0)
    await docs.put_document(TOPIC, "k", "b", T0)
    await docs.delete_document(TOPIC, "k")

    doc, _ = await docs.put_document(TOPIC, "k", "c", T0)

    assert doc.version == 1


async def test_delete_children_removes_only_that_kind_and_parent(docs: DocumentStore) -> None:
    await _fill(docs)

    assert await docs.delete_children(SUB, "t1") == 5

    assert await keys(docs, SUB) == ["Z", "ab", "ac", "b/1"]
    assert await keys(docs, TOPIC, parent="t1") == ["a"]
    assert await docs.delete_children(SUB, "t1") == 0


# ---- reads after writes (a backend may answer reads from memory: it must never answer stale) ----


async def test_reads_see_every_later_write(docs: DocumentStore) -> None:
    first, _ = await docs.put_document(TOPIC, "k", "a", T0, parent="p")
    assert await docs.get_document(TOPIC, "k") == first
    assert await docs.list_documents(TOPIC, parent="p") == [first]

    second, _ = await docs.put_document(TOPIC, "k", "b", T0 + 1, parent="p", expected_version=1)
    assert await docs.get_document(TOPIC, "k") == second
    assert await docs.list_documents(TOPIC, parent="p") == [second]

    assert await docs.delete_document(TOPIC, "k")
    assert await docs.get_document(TOPIC, "k") is None
    assert await docs.list_documents(TOPIC, parent="p") == []


async def test_children_listed_before_a_change_are_listed_again_after_it(docs: DocumentStore) -> None:
    await docs.put_document(SUB, "s1", "{}", T0, parent="t1")
    assert await keys(docs, SUB, parent="t1") == ["s1"]
    assert await keys(docs, SUB, parent="t2") == []

    await docs.put_document(SUB, "s2", "{}", T0, parent="t1")
    await docs.put_document(SUB, "s1", "{}", T0, parent="t2")  # moves to another parent

    assert await keys(docs, SUB, parent="t1") == ["s2"]
    assert await keys(docs, SUB, parent="t2") == ["s1"]

    assert await docs.delete_children(SUB, "t1") == 1
    assert await keys(docs, SUB, parent="t1") == []
    assert await docs.get_document(SUB, "s2") is None
    assert await docs.get_document(SUB, "s1") is not None


async def test_concurrent_reads_and_writes_end_with_the_last_write(docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "0", T0, parent="p")

    async def reader() -> None:
        for _ in range(20):
            await docs.get_document(TOPIC, "k")
            await docs.list_documents(TOPIC, parent="p")

    async def writer() -> None:
        for n in range(1, 21):
            await docs.put_document(TOPIC, "k", str(n), T0 + n, parent="p")

    await asyncio.gather(reader(), writer(), reader())

    final = await docs.get_document(TOPIC, "k")
    assert final is not None and final.body == "20" and final.version == 21
    assert await docs.list_documents(TOPIC, parent="p") == [final]


# ---- persistence and scale ----


async def test_reopen_keeps_documents_and_versions(harness: Harness, docs: DocumentStore) -> None:
    await docs.put_document(TOPIC, "k", "a", T0, parent="p")
    kept, _ = await docs.put_document(TOPIC, "k", "b", T0 + 1, parent="p")

    docs = await harness.reopen()
    assert isinstance(docs, DocumentStore)

    assert await docs.get_document(TOPIC, "k") == kept
    assert await keys(docs, TOPIC, parent="p") == ["k"]
    with pytest.raises(ConcurrentUpdate):
        await docs.put_document(TOPIC, "k", "c", T0 + 2, expected_version=1)


async def test_list_pages_through_many_documents_of_many_parents(docs: DocumentStore) -> None:
    for parent in range(20):
        for child in range(25):
            await docs.put_document(SUB, f"t{parent:02d}:s{child:02d}", "{}", T0, parent=f"t{parent:02d}")

    first = await keys(docs, SUB, parent="t07", limit=10)
    rest = await keys(docs, SUB, parent="t07", after=first[-1])

    assert first + rest == [f"t07:s{c:02d}" for c in range(25)]
    assert await keys(docs, SUB, prefix="t19:s2") == [f"t19:s{c}" for c in range(20, 25)]
    assert len(await docs.list_documents(SUB)) == 500
