"""Model-based tests of FIFO queues: QueueService on a real store against `queue_model.QueueModel`.

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
* with a RedrivePolicy (`FifoRedriveMachine`), a receive moves each message on its walk that was
  already received maxReceiveCount times to the FIFO dead-letter queue, once, with its body,
  attributes, group and deduplication id, and goes on behind it;
* the approximate counts are exact after every step.

The retention worker runs at every move of the clock here: a message whose retention ended while
in flight blocks its group until the worker deletes it (at most about a second in the server).
"""

from __future__ import annotations

import json
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
DLQ_ROOM = 10
"""Most messages the source queue of a redrive policy holds. Which groups one receive walks depends
on the order a backend takes them in; with ten at most and a receive of ten, it walks them all, so
every message due to move does move."""
ATTRIBUTES = {"kind": MessageAttributeValue("String", string_value="order")}

entry = st.tuples(
    st.sampled_from(["a", "b", "c"]),  # body: few, so content-based deduplication finds duplicates
    st.sampled_from(["g1", "g2", "g3"]),  # message group
    st.sampled_from([None, None, "d1", "d2", "d3"]),  # MessageDeduplicationId
    st.sampled_from([None, None, None, None, 0, 5]),  # DelaySeconds: only 0 is accepted
)


class FifoQueueMachine(QueueMachine):
    """A FIFO queue without a RedrivePolicy."""

    REAP_ALWAYS = True
    REDRIVE = False
    last_sequence = -1
    max_receives = 0

    @initialize(
        retention_s=st.sampled_from([60, 345_600]),
        visibility_s=st.sampled_from([0, 1, 30]),
        delay_s=st.sampled_from([0, 0, 0, 2]),
        content_based=st.booleans(),
        group_scope=st.booleans(),
        max_receives=st.sampled_from([1, 2, 3]),
        dlq_retention_s=st.sampled_from([60, 345_600]),
    )
    def create(
        self,
        retention_s: int,
        visibility_s: int,
        delay_s: int,
        content_based: bool,
        group_scope: bool,
        max_receives: int,
        dlq_retention_s: int,
    ) -> None:
        attributes = {
            "FifoQueue": "true",
            "MessageRetentionPeriod": str(retention_s),
            "VisibilityTimeout": str(visibility_s),
            "DelaySeconds": str(delay_s),
            "ContentBasedDeduplication": str(content_based).lower(),
            "DeduplicationScope": "messageGroup" if group_scope else "queue",
        }
        if self.REDRIVE:
            dlq_key = self.env.key("dlq", fifo=True)
            dlq_attributes = {"FifoQueue": "true", "MessageRetentionPeriod": str(dlq_retention_s)}
            self.env.run(self.service.create_queue(dlq_key, dlq_attributes, {}))
            self.dlq = QueueModel(dlq_key, retention_ms=dlq_retention_s * 1000)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_key.arn, "maxReceiveCount": max_receives}
            )
            self.max_receives = max_receives
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
        if self.REDRIVE:
            entries = entries[: max(DLQ_ROOM - len(queue.alive(self.now)), 0)]
            if not entries:
                return
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
        from_dlq=st.booleans(),
    )
    def receive(
        self, n: int, visibility_s: int | None, with_attributes: bool, attempt_id: str | None, from_dlq: bool
    ) -> None:
        queue = self.dlq if from_dlq and self.dlq is not None else self.queue
        now = self.now
        timeout = queue.visibility_s if visibility_s is None else visibility_s
        attempt = queue.attempts.get(attempt_id) if attempt_id is not None else None
        deliverable, moved = queue.fifo_deliverable(now, self.max_receives if queue is self.source else 0)
        if moved and not (attempt is not None and attempt.repeatable(queue, now)):
            n = 10  # so the receive walks every group, whichever order it takes them in (see DLQ_ROOM)
        names = ALL if with_attributes else ()
        request = ReceiveRequest(n, visibility_s, 0, names, names, attempt_id)
        got = self.env.run(self.service.receive_message(queue.key, request))
        if attempt is not None and attempt.repeatable(queue, now):
            self.repeated(queue, attempt, got, timeout, with_attributes)
            return
        self.check_fifo_order(queue, got, deliverable, n)
        for message in moved:
            self.move_to_dead_letter(message)
        by_id = {m.message_id: m for group in deliverable.values() for m in group}
        for g in got:
            queue.received(by_id[g.message_id], g, now, timeout)
            queue.check_received(by_id[g.message_id], g, with_attributes)
        if attempt_id is not None and got:
            # A receive that got nothing leaves no attempt behind on PostgreSQL; on SQLite it replaces the
            # attempt by an empty one. Either way a retry is a new receive, so the model keeps the old one.
            received = [(g.message_id, by_id[g.message_id].receive_count) for g in got]
            queue.attempts[attempt_id] = Attempt(now + ATTEMPT_WINDOW_MS, received, now + timeout * 1000)

    def move_to_dead_letter(self, message: Msg) -> None:
        """The receive moved ``message`` to the FIFO dead-letter queue: same id, body, attributes, group,
        deduplication id and send time, received once more, visible now, behind what its group has there;
        its retention restarts (AWS resets a FIFO message's enqueue time on this move)."""
        assert self.dlq is not None
        del self.queue.messages[message.message_id]
        moved = self.dlq.add(
            message.message_id,
            message.body,
            message.attributes,
            self.now,
            receive_count=message.receive_count + 1,
            first_receive_ms=message.first_receive_ms,
            group_id=message.group_id,
            deduplication_id=message.deduplication_id,
            dead_letter_source_arn=self.queue.key.arn,
            md5_of_message_attributes=message.md5_of_message_attributes,
        )
        moved.sent_ms = message.sent_ms

    def check_fifo_order(
        self, queue: QueueModel, got: list[ReceivedMessage], deliverable: dict[str, list[Msg]], n: int
    ) -> None:
        """``got`` takes from each group a prefix of what it may deliver, in order, and as many as it can."""
        ids = [g.message_id for g in got]
        assert len(set(ids)) == len(ids), f"one receive returned a message twice: {ids}"
        by_id = {m.message_id: m for group in deliverable.values() for m in group}
        for g in got:
            assert g.message_id in by_id, self.why_not(queue, g.message_id)
        for group_id, messages in deliverable.items():
            taken = [i for i in ids if by_id[i].group_id == group_id]
            expected = [m.message_id for m in messages[: len(taken)]]
            assert taken == expected, f"group {group_id}: got {taken}, its order is {expected}"
        total = sum(len(messages) for messages in deliverable.values())
        assert len(got) == min(n, total), f"{len(got)} of {total} deliverable, asked for {n}"

    def repeated(
        self, queue: QueueModel, attempt: Attempt, got: list[ReceivedMessage], timeout: int, with_attributes: bool
    ) -> None:
        """A retried attempt: the same messages (not received again), their visibility restarted."""
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


class FifoRedriveMachine(FifoQueueMachine):
    """A FIFO queue with a RedrivePolicy (maxReceiveCount 1-3), and its FIFO dead-letter queue."""

    REDRIVE = True


@pytest.mark.timeout(MODEL_TIMEOUT_S)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fifo_redrive_matches_the_model(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with open_env(backend, request, tmp_path) as env:
        FifoRedriveMachine.env = env
        examples = 100 if backend == "sqlite" else 60
        run_state_machine_as_test(FifoRedriveMachine, settings=machine_settings(max_examples=examples, steps=50))
