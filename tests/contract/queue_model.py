"""An in-memory model of SQS queue semantics, and a synchronous driver of `QueueService` on a real store.

The stateful tests (test_model_standard.py, test_model_fifo.py) send hypothesis-chosen sequences of
actions both to the real service and to this model, and compare every answer. The model is kept
small enough to be checked by reading it: a queue is a dict of messages, each with the instants it
becomes visible and expires, its receive count and first receive; nothing is indexed or cached.

Why a driver instead of async tests: hypothesis's state machines are synchronous, so each test owns
one event loop (`asyncio.Runner`) and runs every service call to completion on it. One store (and,
on PostgreSQL, one schema) serves every example of a test, each example with queues of its own; the
fake clock only moves forward, across examples too, so no example meets another's messages in a
state the store has not seen the time for.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contract.conftest import _postgres_factory
from loosely.core.clock import FakeClock
from loosely.core.errors import InvalidParameterValue, LooselyError, MessageNotInflight, PurgeQueueInProgress
from loosely.core.ids import SequentialIds
from loosely.core.ports import QueueStore
from loosely.core.queues.models import MessageAttributeValue, QueueKey, ReceivedMessage
from loosely.core.queues.service import QueueService, QueueSettings
from loosely.storage import open_store

T = TypeVar("T")

ACCOUNT = "123456789012"
REGION = "us-east-1"
SENDER = "AIDAMODELSENDER"
START_MS = 1_700_000_000_000
DEDUP_WINDOW_MS = 300_000
ATTEMPT_WINDOW_MS = 300_000
PURGE_INTERVAL_MS = 60_000
VISIBILITY_CEILING_MS = 43_200_000  # a message's visibility may end at most 12 h after its receive
ALL = ("All",)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MODEL_TIMEOUT_S = 900
"""A passing run takes well under a minute; a failing one shrinks its example, which takes minutes."""


def machine_settings(max_examples: int, steps: int) -> settings:
    """Deterministic (CI must not flake), no example database, no deadline: the store's speed varies."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# ---- the driver ----


class Env:
    """One store, one event loop and one clock shared by every example of a test."""

    def __init__(self, backend: str, runner: asyncio.Runner, store: QueueStore) -> None:
        self.backend = backend
        self.runner = runner
        self.store = store
        self.clock = FakeClock(START_MS)
        self._names = itertools.count(1)

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.runner.run(wrapped())

    def service(self) -> QueueService:
        settings = QueueSettings(purge_interval_ms=PURGE_INTERVAL_MS, dedup_window_ms=DEDUP_WINDOW_MS)
        return QueueService(self.store, self.clock, SequentialIds(), settings)

    def key(self, stem: str, fifo: bool = False) -> QueueKey:
        return QueueKey(ACCOUNT, REGION, f"{stem}{next(self._names)}{'.fifo' if fifo else ''}")


@contextmanager
def open_env(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The store of ``backend`` (see tests/contract/conftest.py), opened on a loop of the test's own."""
    drop: Callable[[], None] | None = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/loosely.db"
        factory: Callable[[], QueueStore] = lambda: open_store(url)  # noqa: E731
    else:
        factory, drop = _postgres_factory(request)
    with asyncio.Runner() as runner:
        store = factory()
        runner.run(store.open())
        try:
            yield Env(backend, runner, store)
        finally:
            runner.run(store.close())
            if drop is not None:
                drop()


# ---- the model ----


@dataclass
class Msg:
    """One message as the model knows it."""

    message_id: str
    body: str
    attributes: dict[str, MessageAttributeValue]
    sent_ms: int
    visible_at_ms: int
    expires_at_ms: int
    order: int  # send order within its queue (FIFO order; the SequenceNumber's order)
    group_id: str | None = None
    deduplication_id: str | None = None
    sequence_number: str | None = None
    receive_count: int = 0
    first_receive_ms: int = 0
    dead_letter_source_arn: str | None = None
    md5_of_message_attributes: str | None = None


@dataclass(frozen=True)
class Handle:
    """A receipt handle the service gave out, and which receive of which message it names."""

    text: str
    message_id: str
    receive_count: int
    received_ms: int


class Outcome:
    """What an action on one receipt handle should answer: success, or an error of these classes.

    A message whose retention ended may still be in the store until the reaper (or a claim) deletes
    it, so for such a message either the answer for a present message or the one for a gone message
    is right (``alternatives``).
    """

    def __init__(self, *alternatives: type[LooselyError] | None) -> None:
        self.alternatives = alternatives

    def check(self, error: LooselyError | None, what: str) -> None:
        got = None if error is None else type(error)
        assert got in self.alternatives, f"{what}: got {error!r}, expected one of {self.alternatives}"


@dataclass
class Attempt:
    """A FIFO receive made with a ReceiveRequestAttemptId: what it handed out, until when."""

    expires_at_ms: int  # the end of the attempt's window (the deduplication interval)
    received: list[tuple[str, int]]  # (message id, receive count) of each message it handed out
    visible_until_ms: int
    visibility_changed: bool = False  # a message of it was given another visibility since

    @property
    def ids(self) -> list[str]:
        return [message_id for message_id, _ in self.received]

    def repeatable(self, queue: QueueModel, now: int) -> bool:
        """AWS: a retry within the window returns the same messages while none of them was modified
        (deleted, received again, or given another visibility, even one set back to the same instant)
        and their visibility timeout lasts."""
        if self.visibility_changed or not self.received:
            return False
        if now >= self.expires_at_ms or now >= self.visible_until_ms:
            return False
        for message_id, receive_count in self.received:
            message = queue.messages.get(message_id)
            if message is None or message.receive_count != receive_count:
                return False
            if message.visible_at_ms != self.visible_until_ms:
                return False
        return True


@dataclass
class QueueModel:
    """A queue: its settings, its messages (deleted ones leave), and its FIFO deduplication memory."""

    key: QueueKey
    retention_ms: int
    visibility_s: int = 30
    delay_s: int = 0
    content_based: bool = False
    group_scope: bool = False  # DeduplicationScope=messageGroup
    messages: dict[str, Msg] = field(default_factory=dict)
    handles: list[Handle] = field(default_factory=list)
    last_purge_ms: int | None = None
    dedup: dict[tuple[str | None, str], tuple[int, str, str]] = field(default_factory=dict)
    attempts: dict[str, Attempt] = field(default_factory=dict)
    sent: int = 0

    @property
    def fifo(self) -> bool:
        return self.key.fifo

    # -- state at an instant --

    def alive(self, now: int) -> list[Msg]:
        """Messages whose retention has not ended, in send order."""
        return sorted((m for m in self.messages.values() if m.expires_at_ms > now), key=lambda m: m.order)

    def visible(self, now: int) -> list[Msg]:
        return [m for m in self.alive(now) if m.visible_at_ms <= now]

    def counts(self, now: int) -> tuple[int, int, int]:
        """ApproximateNumberOfMessages, ...NotVisible (received, not visible), ...Delayed (never received)."""
        alive = self.alive(now)
        visible = sum(m.visible_at_ms <= now for m in alive)
        in_flight = sum(m.visible_at_ms > now and m.receive_count > 0 for m in alive)
        delayed = sum(m.visible_at_ms > now and m.receive_count == 0 for m in alive)
        return visible, in_flight, delayed

    def fifo_deliverable(self, now: int, max_receives: int = 0) -> tuple[dict[str, list[Msg]], list[Msg]]:
        """Per group, what a FIFO receive may hand out: the visible messages from the group's oldest on,
        up to the first one that is in flight or delayed (nothing behind an unfinished message comes).

        With a redrive policy (``max_receives``), a message on that walk already received that often
        is moved to the dead-letter queue instead, and the walk goes on behind it: those come second.
        """
        groups: dict[str, list[Msg]] = {}
        moved: list[Msg] = []
        blocked: set[str] = set()
        for m in self.alive(now):
            assert m.group_id is not None
            if m.group_id in blocked:
                continue
            if m.visible_at_ms > now:
                blocked.add(m.group_id)
            elif max_receives and m.receive_count >= max_receives:
                moved.append(m)
            else:
                groups.setdefault(m.group_id, []).append(m)
        return groups, moved

    # -- sends --

    def add(
        self, message_id: str, body: str, attributes: dict[str, MessageAttributeValue], now: int, **kw: object
    ) -> Msg:
        self.sent += 1
        delay_s = kw.pop("delay_s", None)
        delay = self.delay_s if delay_s is None else delay_s
        message = Msg(
            message_id=message_id,
            body=body,
            attributes=dict(attributes),
            sent_ms=now,
            visible_at_ms=now + int(delay) * 1000,  # type: ignore[call-overload]
            expires_at_ms=now + self.retention_ms,
            order=self.sent,
            **kw,  # type: ignore[arg-type]
        )
        assert message_id not in self.messages, f"message id {message_id} handed out twice"
        self.messages[message_id] = message
        return message

    def deduplication(
        self, body: str, group_id: str, deduplication_id: str | None
    ) -> tuple[str, tuple[str | None, str]]:
        """The deduplication id a FIFO send uses, and the key it is remembered by (scoped)."""
        used = deduplication_id if deduplication_id is not None else hashlib.sha256(body.encode()).hexdigest()
        return used, ((group_id if self.group_scope else None), used)

    def duplicate_of(self, dedup_key: tuple[str | None, str], now: int) -> tuple[str, str] | None:
        """(message id, sequence number) of the message this key was first sent with, within the window."""
        seen = self.dedup.get(dedup_key)
        if seen is None or now >= seen[0] + DEDUP_WINDOW_MS:
            return None
        return seen[1], seen[2]

    # -- receives --

    def received(self, message: Msg, got: ReceivedMessage, now: int, visibility_s: int) -> None:
        """Record a receive of ``message`` that returned ``got``."""
        message.receive_count += 1
        message.first_receive_ms = message.first_receive_ms or now
        message.visible_at_ms = now + visibility_s * 1000
        self.handles.append(self.handle_of(got, message, now))

    def handle_of(self, got: ReceivedMessage, message: Msg, now: int) -> Handle:
        return Handle(got.receipt_handle, message.message_id, message.receive_count, now)

    def check_received(self, message: Msg, got: ReceivedMessage, with_attributes: bool) -> None:
        """``got`` against the model, after `received` updated the model for it."""
        assert got.message_id == message.message_id
        assert got.body == message.body, f"{got.message_id}: body {got.body!r}, expected {message.body!r}"
        assert got.md5_of_body == hashlib.md5(message.body.encode()).hexdigest()
        if not with_attributes:
            assert dict(got.attributes) == {} and not got.message_attributes
            return
        expected = {
            "SenderId": SENDER,
            "SentTimestamp": str(message.sent_ms),
            "ApproximateReceiveCount": str(message.receive_count),
            "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
        }
        if self.fifo:
            assert message.group_id is not None and message.deduplication_id is not None
            # A message moved to a dead-letter queue has a SequenceNumber of that queue: learnt on receive.
            message.sequence_number = message.sequence_number or got.attributes.get("SequenceNumber")
            assert message.sequence_number is not None
            expected["SequenceNumber"] = message.sequence_number
            expected["MessageGroupId"] = message.group_id
            expected["MessageDeduplicationId"] = message.deduplication_id
        if message.dead_letter_source_arn is not None:
            expected["DeadLetterQueueSourceArn"] = message.dead_letter_source_arn
        assert dict(got.attributes) == expected, f"{got.message_id}: attributes"
        assert dict(got.message_attributes or {}) == message.attributes, f"{got.message_id}: message attributes"
        if message.attributes:
            assert got.md5_of_message_attributes == message.md5_of_message_attributes

    # -- receipt handles --

    def delete_outcome(self, handle: Handle, now: int) -> Outcome:
        """DeleteMessage: a current handle deletes; an outdated one succeeds without deleting on a
        standard queue and fails on a FIFO queue; a gone message succeeds (deletes are idempotent)."""
        message = self.messages.get(handle.message_id)
        if message is None:
            return Outcome(None)
        # On a FIFO queue a handle whose visibility timeout ran out has expired too, as on AWS.
        stale = message.receive_count != handle.receive_count or message.visible_at_ms <= now
        present = Outcome(InvalidParameterValue if stale and self.fifo else None)
        if message.expires_at_ms <= now:
            return Outcome(*present.alternatives, None)
        return present

    def apply_delete(self, handle: Handle, now: int) -> None:
        message = self.messages.get(handle.message_id)
        if message is None or message.receive_count != handle.receive_count:
            return
        if self.fifo and message.visible_at_ms <= now:  # an expired FIFO receipt deletes nothing
            return
        del self.messages[handle.message_id]

    def visibility_outcome(self, handle: Handle, timeout_s: int, now: int) -> Outcome:
        """ChangeMessageVisibility: at most 12 h after the receive; a gone message is an invalid
        handle; an outdated handle fails only on a FIFO queue (MessageNotInflight)."""
        if now + timeout_s * 1000 - handle.received_ms > VISIBILITY_CEILING_MS:
            return Outcome(InvalidParameterValue)
        message = self.messages.get(handle.message_id)
        if message is None:
            return Outcome(InvalidParameterValue)
        stale = message.receive_count != handle.receive_count
        present = Outcome(MessageNotInflight if stale and self.fifo else None)
        if message.expires_at_ms <= now:
            return Outcome(*present.alternatives, InvalidParameterValue)
        return present

    def apply_visibility(self, handle: Handle, timeout_s: int, now: int) -> None:
        """Called only when the change succeeded: a current handle moves the message's visibility."""
        message = self.messages.get(handle.message_id)
        if message is not None and message.receive_count == handle.receive_count:
            message.visible_at_ms = now + timeout_s * 1000
            for attempt in self.attempts.values():
                if handle.message_id in attempt.ids:
                    attempt.visibility_changed = True

    # -- life cycle --

    def purge(self, now: int) -> None:
        """PurgeQueue: every message goes, and (as on AWS) the deduplication ids and receive attempts too."""
        self.messages.clear()
        self.dedup.clear()
        self.attempts.clear()
        self.last_purge_ms = now

    def reap(self, now: int) -> None:
        """The retention worker ran: messages whose retention ended are gone from the store too."""
        for message_id in [m.message_id for m in self.messages.values() if m.expires_at_ms <= now]:
            del self.messages[message_id]


# ---- what every machine does the same way ----

ADVANCES_MS = [1, 999, 1_000, 1_000, 1_000, 5_000, 29_999, 30_000, 30_000, 60_000, 240_000, 300_000, 600_000]
ADVANCES_MS += [3_600_000, 43_200_000, 4 * 86_400_000]
CHANGES_S = [0, 1, 30, 600, 43_200]
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


class QueueMachine(RuleBasedStateMachine):
    """Receipt handles, purges, the clock and the counts, for a queue (``source``) and its dead-letter queue.

    Subclasses create the queues in an ``initialize`` rule and add their own sends and receives.
    """

    env: Env
    REAP_ALWAYS = False
    """Whether the retention worker runs at every move of the clock, or only when hypothesis says so."""

    def __init__(self) -> None:
        super().__init__()
        self.service = self.env.service()
        self.source: QueueModel | None = None
        self.dlq: QueueModel | None = None

    @property
    def now(self) -> int:
        return self.env.clock.now_ms()

    @property
    def queue(self) -> QueueModel:
        assert self.source is not None
        return self.source

    def queues(self) -> list[QueueModel]:
        return [q for q in (self.source, self.dlq) if q is not None]

    def teardown(self) -> None:
        for queue in self.queues():
            self.env.run(self.service.delete_queue(queue.key))

    def why_not(self, queue: QueueModel, message_id: str) -> str:
        """Why the model says the service should not have handed out this message now."""
        message = queue.messages.get(message_id)
        if message is None:
            return f"{message_id} was deleted, purged or moved, or never sent"
        if message.expires_at_ms <= self.now:
            return f"{message_id} expired at {message.expires_at_ms} (now {self.now})"
        if message.visible_at_ms > self.now:
            return f"{message_id} is not visible until {message.visible_at_ms} (now {self.now})"
        return f"{message_id} was visible but not deliverable (received {message.receive_count} times)"

    # ---- receipt handles ----

    def has_handles(self) -> bool:
        return any(q.handles for q in self.queues())

    def pick(self, data: st.DataObject, size: int) -> tuple[QueueModel, list[Handle]]:
        queue = data.draw(st.sampled_from([q for q in self.queues() if q.handles]))
        # Mostly recent handles (the current ones are among them), sometimes any: outdated and gone ones.
        handle = st.one_of(st.sampled_from(queue.handles[-4:]), st.sampled_from(queue.handles))
        return queue, data.draw(st.lists(handle, min_size=size, max_size=size))

    @precondition(has_handles)
    @rule(data=st.data(), batch=st.integers(0, 3))
    def delete(self, data: st.DataObject, batch: int) -> None:
        """DeleteMessage (batch 0) or DeleteMessageBatch of ``batch`` handles (a handle may repeat)."""
        queue, handles = self.pick(data, max(batch, 1))
        now = self.now
        if batch == 0:
            [handle] = handles
            expected = queue.delete_outcome(handle, now)
            _, error = catch(lambda: self.env.run(self.service.delete_message(queue.key, handle.text)))
            expected.check(error, "DeleteMessage")
            queue.apply_delete(handle, now)
            return
        entries = [(f"d{i}", h.text) for i, h in enumerate(handles)]
        result = self.env.run(self.service.delete_message_batch(queue.key, entries))
        failures = {f.id: f.error for f in result.failed}
        assert sorted([i for i, _ in result.successful] + list(failures)) == [i for i, _ in entries]
        for (entry_id, _), handle in zip(entries, handles, strict=True):
            queue.delete_outcome(handle, now).check(failures.get(entry_id), f"DeleteMessageBatch {entry_id}")
            queue.apply_delete(handle, now)

    @precondition(has_handles)
    @rule(data=st.data(), batch=st.integers(0, 3), timeout_s=st.sampled_from(CHANGES_S))
    def change_visibility(self, data: st.DataObject, batch: int, timeout_s: int) -> None:
        """ChangeMessageVisibility (batch 0) or ChangeMessageVisibilityBatch of ``batch`` handles."""
        queue, handles = self.pick(data, max(batch, 1))
        now = self.now
        if batch == 0:
            [handle] = handles
            expected = queue.visibility_outcome(handle, timeout_s, now)
            change = self.service.change_message_visibility
            _, error = catch(lambda: self.env.run(change(queue.key, handle.text, timeout_s)))
            expected.check(error, "ChangeMessageVisibility")
            if error is None:
                queue.apply_visibility(handle, timeout_s, now)
            return
        entries = [(f"c{i}", h.text, timeout_s) for i, h in enumerate(handles)]
        result = self.env.run(self.service.change_message_visibility_batch(queue.key, entries))
        failures = {f.id: f.error for f in result.failed}
        assert sorted([i for i, _ in result.successful] + list(failures)) == [i for i, *_ in entries]
        for (entry_id, *_), handle in zip(entries, handles, strict=True):
            expected = queue.visibility_outcome(handle, timeout_s, now)
            expected.check(failures.get(entry_id), f"ChangeMessageVisibilityBatch {entry_id}")
            if entry_id not in failures:
                queue.apply_visibility(handle, timeout_s, now)

    # ---- the queue and the clock ----

    @precondition(lambda self: self.source is not None and self.queue.messages)
    @rule(skip=st.sampled_from(range(4)))
    def purge(self, skip: int) -> None:
        """PurgeQueue; at most one a minute (PurgeQueueInProgress)."""
        if skip:  # a purge empties the queue: a quarter of the draws are enough
            return
        queue = self.queue
        _, error = catch(lambda: self.env.run(self.service.purge_queue(queue.key)))
        if queue.last_purge_ms is not None and self.now - queue.last_purge_ms < PURGE_INTERVAL_MS:
            assert isinstance(error, PurgeQueueInProgress), error
        else:
            assert error is None, error
            queue.purge(self.now)

    @rule(ms=st.sampled_from(ADVANCES_MS), reap=st.booleans())
    def advance(self, ms: int, reap: bool) -> None:
        """Time passes; with ``reap``, the retention worker runs (the server runs it about once a second)."""
        self.env.clock.advance(ms)
        if reap or self.REAP_ALWAYS:
            self.env.run(self.service.expire_messages_once())
            for queue in self.queues():
                queue.reap(self.now)

    @invariant()
    def counts_are_exact(self) -> None:
        """On one node with nothing running concurrently, the approximate counts are exact."""
        for queue in self.queues():
            got = self.env.run(self.service.get_queue_attributes(queue.key, COUNTS))
            counted = tuple(int(got[name]) for name in COUNTS)
            expected = queue.counts(self.now)
            assert counted == expected, f"{queue.key.name}: counts {counted}, model {expected}"


def catch(run: Callable[[], T]) -> tuple[T | None, LooselyError | None]:
    """``run()``'s result, or the service error it raised."""
    try:
        return run(), None
    except LooselyError as error:
        return None, error
