"""Fan-out keeps the event loop free: envelopes are signed on a thread, completions are chunked by rows."""

from __future__ import annotations

import json
import threading

from delivery_support import PUBLIC_URL
from test_delivery_rendering import published, subscription, verify

from loosely.core.documents import Publication
from loosely.core.queues.models import NewMessage
from loosely.delivery.fanout import _chunks, _Plan
from loosely.delivery.rendering import Renderer
from loosely.delivery.signing import Signer


async def test_presigned_envelopes_are_signed_off_the_event_loop_and_verify(signer: Signer) -> None:
    threads: list[str] = []

    class Recording:
        certificate_name = signer.certificate_name

        def sign(self, string_to_sign: bytes, signature_version: str) -> str:
            threads.append(threading.current_thread().name)
            return signer.sign(string_to_sign, signature_version)

    renderer = Renderer(Recording(), PUBLIC_URL)
    try:
        message = published()
        await renderer.presign(message, message.message, "2")
        bodies = [
            renderer.sqs_request(message, subscription("sqs", f"arn:aws:sqs:us-east-1:1:q{i}"), "2", None, False).body
            for i in range(5)
        ]
    finally:
        renderer.close()
    assert len(threads) == 1
    assert threads[0].startswith("loosely-sign")
    document = json.loads(bodies[0])
    assert document["SignatureVersion"] == "2"
    verify(document, signer)


async def test_presigning_many_envelopes_hands_the_threads_one_job_each(signer: Signer) -> None:
    calls: list[str] = []

    class Recording:
        certificate_name = signer.certificate_name

        def sign(self, string_to_sign: bytes, signature_version: str) -> str:
            calls.append(threading.current_thread().name)
            return signer.sign(string_to_sign, signature_version)

    renderer = Renderer(Recording(), PUBLIC_URL)
    jobs: list[int] = []
    try:
        messages = [published(message_id=f"m{i}") for i in range(6)]
        original = renderer._signer._sign_all

        def counted(keys: list[tuple[bytes, str]]) -> list[str]:
            jobs.append(len(keys))
            return original(keys)

        renderer._signer._sign_all = counted  # type: ignore[method-assign]
        await renderer.presign_many([(m, m.message, "1") for m in messages] * 2)  # repeats are signed once
        bodies = [
            renderer.sqs_request(m, subscription("sqs", "arn:aws:sqs:us-east-1:1:q"), "1", None, False).body
            for m in messages
        ]
    finally:
        renderer.close()
    assert sorted(jobs) == [3, 3]
    assert len(calls) == 6 and all(name.startswith("loosely-sign") for name in calls)
    for body in bodies:
        verify(json.loads(body), signer)


def test_completions_are_chunked_by_rows_in_order_and_a_large_one_goes_alone() -> None:
    def item(pid: int, rows: int) -> tuple[Publication, _Plan]:
        plan = _Plan(queue_messages=[(1, _message(pid, n)) for n in range(rows)])
        return Publication(pid, "arn:aws:sns:us-east-1:1:t", f"m{pid}", "{}", 0, pid), plan

    results = [item(1, 99), item(2, 99), item(3, 10), item(4, 500), item(5, 0)]

    chunks = _chunks(results, 200)

    assert [[p.id for p, _ in chunk] for chunk in chunks] == [[1, 2], [3], [4], [5]]


def _message(pid: int, n: int) -> NewMessage:
    return NewMessage(f"{pid}-{n}", "body", "{}", 0, 0)
