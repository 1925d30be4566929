"""Model-based test of FIFO queues: QueueService on a real store against `queue_model.QueueModel`.

Hypothesis chooses a FIFO queue's settings (retention, default visibility timeout and delay,
content-based deduplication, deduplication scope), then sequences of sends in a few message groups
with explicit, content-based or missing deduplication ids (and per-message delays, which FIFO
queues refuse), short-poll receives with and without a ReceiveRequestAttemptId, deletes and
visibility changes by current, outdated and dead receipt handles, purges and clock moves (across
the 5-minute deduplication window, visibility timeouts and retention). What is checked:

* deduplication: a send whose id (or body hash) was sent within 5 minutes (and since the last
  purge) answers with the first message's id and SequenceNumber and stores nothing; later, it is
  a new message;
* SequenceNumbers grow with every new message and come back unchanged on receive;
* a receive hands out, per group, the visible messages from the group's oldest on, stopping at the
  first one in flight or delayed (AWS: a group is blocked while an earlier message of it is in
  flight), in order, as many as asked for or as there are;
* a retried ReceiveRequestAttemptId returns the same messages, with their visibility restarted,
  while none was modified and their visibility lasts (AWS's ReceiveMessage documentation);
* deletes and visibility changes unblock groups; an outdated receipt fails on FIFO queues;
* the approximate counts are exact after every step.

The retention worker runs at every move of the clock here: a message whose retention ended while
in flight blocks its group until the worker deletes it (at most about a second in the server).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule, run_state_machine_as_test

from contract.queue_model import (
    ALL,
    ATTEMPT_WINDOW_MS,
    BACKENDS,
    MODEL_TIMEOUT_S,
    SENDER,
    Attempt,
    Msg,
    QueueMachine,
    QueueModel,
    catch,
    machine_settings,
    open_env,
)
from loosely.core.errors import InvalidParameterValue, LooselyError
from loosely.core.queues.models import MessageAttributeValue, ReceivedMessage, ReceiveRequest, SendRequest

VISIBILITIES_S = [None, None, 0, 0, 1, 1, 30, 600]
ATTRIBUTES = {"kind": MessageAttributeValue("String", string_value="order")}

entry = st.tuples(
    st.sampled_from(["a", "b", "c"]),  # body: few, so content-based deduplication finds duplicates
    st.sampled_from(["g1", "g2", "g3"]),  # message group
    st.sampled_from([None, None, "d1", "d2", "d3"]),  # MessageDeduplicationId
    st.sampled_from([None, None, None, None, 0, 5]),  # DelaySeconds: only 0 is accepted
)


class FifoQueueMachine(QueueMachine):
    REAP_ALWAYS = True
    last_sequence = -1

    @initialize(
        retention_s=st.sampled_from([60, 345_600]),
        visibility_s=st.sampled_from([0, 1, 30]),
        delay_s=st.sampled_from([0, 0, 0, 2]),
        content_based=st.booleans(),
        group_scope=st.booleans(),
    )
    def create(self, retention_s: int, visibility_s: int, delay_s: int, content_based: bool, group_scope: bool) -> None:
        attributes = {
            "FifoQueue": "true",
            "MessageRetentionPeriod": str(retention_s),
            "VisibilityTimeout": str(visibility_s),
            "DelaySeconds": str(delay_s),
            "ContentBasedDeduplication": str(content_based).lower(),
            "DeduplicationScope": "messageGroup" if group_scope else "queue",
        }
        key = self.env.key("fifo", fifo=True)
        self.env.run(self.service.create_queue(key, attributes, {}))
        self.source = QueueModel(
            key,
            retention_ms=retention_s * 1000,
            visibility_s=visibility_s,
            delay_s=delay_s,
            content_based=content_based,
            group_scope=group_scope,
        )
        self.last_sequence = -1

    # ---- sends ----

    @rule(entries=st.lists(entry, min_size=1, max_size=3), with_attributes=st.booleans(), batch=st.booleans())
    def send(self, entries: list[tuple[str, str, str | None, int | None]], with_attributes: bool, batch: bool) -> None:
        queue = self.queue
        attrs = ATTRIBUTES if with_attributes else {}
        requests = [
            SendRequest(body=b, delay_s=d, message_attributes=attrs, group_id=g, deduplication_id=i)
            for b, g, i, d in entries
        ]
        if not batch and len(requests) == 1:
            answer, error = catch(lambda: self.env.run(self.service.send_message(queue.key, requests[0], SENDER)))
            self.sent(requests[0], answer, error)
            return
        batch_entries = [(f"e{i}", r) for i, r in enumerate(requests)]
        result, error = catch(lambda: self.env.run(self.service.send_message_batch(queue.key, batch_entries, SENDER)))
        if not queue.content_based and any(r.deduplication_id is None for r in requests):
            # AWS fails the whole batch, not the entry, for a missing deduplication id.
            assert isinstance(error, InvalidParameterValue), error
            return
        assert result is not None, error
        answers = dict(result.successful)
        failures = {f.id: f.error for f in result.failed}
        for entry_id, request in batch_entries:
            self.sent(request, answers.get(entry_id), failures.get(entry_id))

    def sent(self, request: SendRequest, answer: object, error: LooselyError | None) -> None:
        """Check one message's send answer against the model, and record what it stored."""
        queue = self.queue
        if request.delay_s not in (None, 0) or (request.deduplication_id is None and not queue.content_based):
            assert isinstance(error, InvalidParameterValue), error
            return
        assert error is None, error
        assert request.group_id is not None
        used, dedup_key = queue.deduplication(request.body, request.group_id, request.deduplication_id)
        duplicate = queue.duplicate_of(dedup_key, self.now)
        message_id, sequence = answer.message_id, answer.sequence_number  # type: ignore[attr-defined]
        assert sequence is not None
        if duplicate is not None:
            assert (message_id, sequence) == duplicate, f"a duplicate of {duplicate} answered {message_id, sequence}"
            return
        assert message_id not in {seen[1] for seen in queue.dedup.values()}, f"a new message answered as {message_id}"
        assert int(sequence) > self.last_sequence, f"SequenceNumber {sequence} after {self.last_sequence}"
        self.last_sequence = int(sequence)
        message = queue.add(
            message_id,
            request.body,
            dict(request.message_attributes),
            self.now,
            delay_s=request.delay_s,
            group_id=request.group_id,
            deduplication_id=used,
            sequence_number=sequence,
            md5_of_message_attributes=answer.md5_of_message_attributes,  # type: ignore[attr-defined]
        )
        queue.dedup[dedup_key] = (self.now, message.message_id, sequence)

    # ---- receives ----

    @rule(
        n=st.integers(1, 10),
        visibility_s=st.sampled_from(VISIBILITIES_S),
        with_attributes=st.booleans(),
        attempt_id=st.sampled_from([None, None, "r1", "r2"]),
    )
    def receive(self, n: int, visibility_s: int | None, with_attributes: bool, attempt_id: str | None) -> None:
        queue = self.queue
        now = self.now
        timeout = queue.visibility_s if visibility_s is None else visibility_s
        names = ALL if with_attributes else ()
        request = ReceiveRequest(n, visibility_s, 0, names, names, attempt_id)
        attempt = queue.attempts.get(attempt_id) if attempt_id is not None else None
        if attempt is not None and attempt.repeatable(queue, now):
            got = self.env.run(self.service.receive_message(queue.key, request))
            self.repeated(attempt, got, timeout, with_attributes)
            return
        deliverable = queue.fifo_deliverable(now)
        got = self.env.run(self.service.receive_message(queue.key, request))
        if attempt is not None and attempt.unchanged(queue, now) and [g.message_id for g in got] == attempt.ids:
            self.repeated(attempt, got, timeout, with_attributes)  # a known bug: see Attempt.unchanged
            return
        self.check_fifo_order(got, deliverable, n)
        by_id = {m.message_id: m for group in deliverable.values() for m in group}
        for g in got:
            queue.received(by_id[g.message_id], g, now, timeout)
            queue.check_received(by_id[g.message_id], g, with_attributes)
        if attempt_id is not None and got:
            # A receive that got nothing leaves no attempt behind on PostgreSQL; on SQLite it replaces the
            # attempt by an empty one. Either way a retry is a new receive, so the model keeps the old one.
            received = [(g.message_id, by_id[g.message_id].receive_count) for g in got]
            queue.attempts[attempt_id] = Attempt(now + ATTEMPT_WINDOW_MS, received, now + timeout * 1000)

    def check_fifo_order(self, got: list[ReceivedMessage], deliverable: dict[str, list[Msg]], n: int) -> None:
        """``got`` takes from each group a prefix of what it may deliver, in order, and as many as it can."""
        ids = [g.message_id for g in got]
        assert len(set(ids)) == len(ids), f"one receive returned a message twice: {ids}"
        by_id = {m.message_id: m for group in deliverable.values() for m in group}
        for g in got:
            assert g.message_id in by_id, self.why_not(self.queue, g.message_id)
        for group_id, messages in deliverable.items():
            taken = [i for i in ids if by_id[i].group_id == group_id]
            expected = [m.message_id for m in messages[: len(taken)]]
            assert taken == expected, f"group {group_id}: got {taken}, its order is {expected}"
        total = sum(len(messages) for messages in deliverable.values())
        assert len(got) == min(n, total), f"{len(got)} of {total} deliverable, asked for {n}"

    def repeated(self, attempt: Attempt, got: list[ReceivedMessage], timeout: int, with_attributes: bool) -> None:
        """A retried attempt: the same messages (not received again), their visibility restarted."""
        queue = self.queue
        assert [g.message_id for g in got] == attempt.ids, "a retried attempt returned other messages"
        for g in got:
            message = queue.messages[g.message_id]
            message.visible_at_ms = self.now + timeout * 1000
            queue.handles.append(queue.handle_of(g, message, self.now))
            queue.check_received(message, g, with_attributes)
        attempt.visible_until_ms = self.now + timeout * 1000


@pytest.mark.timeout(MODEL_TIMEOUT_S)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fifo_queue_matches_the_model(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with open_env(backend, request, tmp_path) as env:
        FifoQueueMachine.env = env
        examples = 150 if backend == "sqlite" else 100
        run_state_machine_as_test(FifoQueueMachine, settings=machine_settings(max_examples=examples, steps=50))
