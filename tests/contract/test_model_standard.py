"""Model-based tests of standard queues and redrive: QueueService on a real store against `queue_model`.

Hypothesis chooses a queue's settings (retention as short as 60 s, a default visibility timeout and
delay), then sequences of sends (with delays and message attributes), short-poll receives (1-10
messages, visibility timeouts including 0), deletes and visibility changes by current, outdated and
dead receipt handles (single and batch), purges and clock moves (small, and past visibility
timeouts, delays and retention). Every answer is compared with the model, and after every step the
three approximate counts must equal the model's: on one node with nothing running concurrently
they are exact (docs/architecture.md).

What a receive may return: any of the visible messages, as many as were asked for or as are visible
(AWS's short poll samples servers and may return fewer; one loosely node returns them all). Which
ones is not SQS's promise, so the model takes the service's choice after checking it.

With a RedrivePolicy, a receive moves the visible messages already received maxReceiveCount times to
the dead-letter queue. Which of them one receive passes over depends on the order a backend reads
in, which differs, so a receive that finds such a message asks for ten and the source queue is kept
to at most ten messages: then every backend passes over all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test

from contract.queue_model import (
    ALL,
    BACKENDS,
    MODEL_TIMEOUT_S,
    SENDER,
    Msg,
    QueueMachine,
    QueueModel,
    machine_settings,
    open_env,
)
from loosely.core.queues.models import MessageAttributeValue, ReceiveRequest, SendRequest

DLQ_ROOM = 10
"""Most messages the source queue of a redrive policy holds (see the module's docstring)."""

ATTRIBUTE_SETS = [
    {},
    {"kind": MessageAttributeValue("String", string_value="order")},
    {
        "n": MessageAttributeValue("Number", string_value="7"),
        "raw": MessageAttributeValue("Binary", binary_value=b"\0\1"),
    },
]
VISIBILITIES_S = [None, None, 0, 0, 1, 1, 30, 600, 43_200]
DELAYS_S = [None, None, None, None, None, 0, 1, 30, 900]

bodies = st.lists(st.sampled_from(["a", "b", "héllo", "x" * 300]), min_size=1, max_size=3)


class StandardQueueMachine(QueueMachine):
    """A standard queue without a RedrivePolicy."""

    REDRIVE = False
    LONGEST_S = 43_200
    """The longest delay or visibility timeout the machine uses."""

    max_receives = 0

    @initialize(
        retention_s=st.sampled_from([60, 345_600]),
        visibility_s=st.sampled_from([0, 1, 30]),
        delay_s=st.sampled_from([0, 0, 0, 2]),
        max_receives=st.sampled_from([1, 2, 3]),
        dlq_retention_s=st.sampled_from([60, 345_600]),
    )
    def create(
        self, retention_s: int, visibility_s: int, delay_s: int, max_receives: int, dlq_retention_s: int
    ) -> None:
        attributes = {
            "MessageRetentionPeriod": str(retention_s),
            "VisibilityTimeout": str(visibility_s),
            "DelaySeconds": str(delay_s),
        }
        if self.REDRIVE:
            dlq_key = self.env.key("dlq")
            self.env.run(self.service.create_queue(dlq_key, {"MessageRetentionPeriod": str(dlq_retention_s)}, {}))
            self.dlq = QueueModel(dlq_key, retention_ms=dlq_retention_s * 1000)
            policy = {"deadLetterTargetArn": dlq_key.arn, "maxReceiveCount": max_receives}
            attributes["RedrivePolicy"] = json.dumps(policy)
            self.max_receives = max_receives
        key = self.env.key("std")
        self.env.run(self.service.create_queue(key, attributes, {}))
        self.source = QueueModel(key, retention_ms=retention_s * 1000, visibility_s=visibility_s, delay_s=delay_s)

    # ---- sends ----

    @rule(
        texts=bodies,
        delays=st.lists(st.sampled_from(DELAYS_S), min_size=3, max_size=3),
        attributes=st.sampled_from(range(len(ATTRIBUTE_SETS))),
        batch=st.booleans(),
    )
    def send(self, texts: list[str], delays: list[int | None], attributes: int, batch: bool) -> None:
        queue = self.queue
        if self.REDRIVE:
            texts = texts[: max(DLQ_ROOM - len(queue.alive(self.now)), 0)]
            if not texts:
                return
        attrs = ATTRIBUTE_SETS[attributes]
        delays = [d if d is None else min(d, self.LONGEST_S) for d in delays]
        requests = [
            SendRequest(body=t, delay_s=d, message_attributes=attrs) for t, d in zip(texts, delays, strict=False)
        ]
        if batch or len(requests) > 1:
            entries = [(f"e{i}", r) for i, r in enumerate(requests)]
            result = self.env.run(self.service.send_message_batch(queue.key, entries, SENDER))
            assert result.failed == []
            assert [entry_id for entry_id, _ in result.successful] == [entry_id for entry_id, _ in entries]
            sent = [answer for _, answer in result.successful]
        else:
            sent = [self.env.run(self.service.send_message(queue.key, requests[0], SENDER))]
        for request, answer in zip(requests, sent, strict=True):
            assert answer.sequence_number is None
            assert (answer.md5_of_message_attributes is None) == (not attrs)
            message = queue.add(answer.message_id, request.body, attrs, self.now, delay_s=request.delay_s)
            message.md5_of_message_attributes = answer.md5_of_message_attributes

    # ---- receives ----

    @rule(
        n=st.integers(1, 10),
        visibility_s=st.sampled_from(VISIBILITIES_S),
        with_attributes=st.booleans(),
        from_dlq=st.booleans(),
    )
    def receive(self, n: int, visibility_s: int | None, with_attributes: bool, from_dlq: bool) -> None:
        queue = self.dlq if from_dlq and self.dlq is not None else self.queue
        now = self.now
        visibility_s = visibility_s if visibility_s is None else min(visibility_s, self.LONGEST_S)
        visible = queue.visible(now)
        poison = [m for m in visible if queue is self.source and self.REDRIVE and m.receive_count >= self.max_receives]
        if poison and n < len(visible):
            n = 10  # so the receive passes over every message to be moved (see the module's docstring)
            assert len(visible) <= DLQ_ROOM
        timeout = queue.visibility_s if visibility_s is None else visibility_s
        names = ALL if with_attributes else ()
        request = ReceiveRequest(n, visibility_s, 0, attribute_names=names, message_attribute_names=names)
        got = self.env.run(self.service.receive_message(queue.key, request))
        deliverable = {m.message_id: m for m in visible if m not in poison}
        ids = [g.message_id for g in got]
        assert len(set(ids)) == len(ids), f"one receive returned a message twice: {ids}"
        for g in got:
            assert g.message_id in deliverable, self.why_not(queue, g.message_id)
        assert len(got) == min(n, len(deliverable)), f"{len(got)} of {len(deliverable)} visible, asked for {n}"
        for message in poison:
            self.move_to_dead_letter(message)
        for g in got:
            message = deliverable[g.message_id]
            queue.received(message, g, now, timeout)
            queue.check_received(message, g, with_attributes)

    def move_to_dead_letter(self, message: Msg) -> None:
        """The receive moved ``message``: same id, body, attributes and send time, received once more (SQS
        keeps counting), visible now, its retention counted from its send (a standard message's enqueue time)."""
        assert self.dlq is not None
        del self.queue.messages[message.message_id]
        moved = self.dlq.add(
            message.message_id,
            message.body,
            message.attributes,
            self.now,
            receive_count=message.receive_count + 1,
            first_receive_ms=message.first_receive_ms,
            dead_letter_source_arn=self.queue.key.arn,
            md5_of_message_attributes=message.md5_of_message_attributes,
        )
        moved.sent_ms = message.sent_ms
        moved.expires_at_ms = message.sent_ms + self.dlq.retention_ms

    @precondition(lambda self: self.source is not None and not self.queue.visible(self.now))
    @rule()
    def nothing_visible_is_received(self) -> None:
        """A receive of a queue the model says has nothing visible returns nothing."""
        queue = self.queue
        got = self.env.run(self.service.receive_message(queue.key, ReceiveRequest(max_messages=10, wait_time_s=0)))
        assert got == [], [self.why_not(queue, g.message_id) for g in got]


class RedriveMachine(StandardQueueMachine):
    """A standard queue with a RedrivePolicy (maxReceiveCount 1-3), and its dead-letter queue.

    Delays and visibility timeouts stay short here, so the ten messages the source queue may hold
    (see the module's docstring) keep coming back to be received and moved.
    """

    REDRIVE = True
    LONGEST_S = 30


@pytest.mark.timeout(MODEL_TIMEOUT_S)
@pytest.mark.parametrize("backend", BACKENDS)
def test_standard_queue_matches_the_model(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with open_env(backend, request, tmp_path) as env:
        StandardQueueMachine.env = env
        examples = 150 if backend == "sqlite" else 80
        run_state_machine_as_test(StandardQueueMachine, settings=machine_settings(max_examples=examples, steps=50))


@pytest.mark.timeout(MODEL_TIMEOUT_S)
@pytest.mark.parametrize("backend", BACKENDS)
def test_redrive_matches_the_model(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with open_env(backend, request, tmp_path) as env:
        RedriveMachine.env = env
        examples = 100 if backend == "sqlite" else 50
        run_state_machine_as_test(RedriveMachine, settings=machine_settings(max_examples=examples, steps=50))
