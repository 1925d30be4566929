"""Wake-ups across nodes: one LISTEN connection per store, asyncio futures per queue.

Writers (sends, visibility changes, dead-letter moves, redrives) call ``pg_notify(channel,
queue_id)`` inside their transaction while some other node has registered receivers waiting on
the queue (see `_wake`), so a notification is delivered exactly when the change commits, to every
node listening on the store's channel. The writer wakes its own node's waiters itself once the
commit returns (its registrations never make it notify). The listener turns each payload into a
wake-up of the local receivers waiting on that queue. Changes of a queue row
(attributes, purge, deletion) notify ``c<queue id>``, which also drops the node's cached record of
the queue (`_queuecache`).

A notification can be lost (the listener reconnecting, a node that crashed between commit and
delivery), so waiting is also bounded by ``fallback_s``: a lost wake-up only delays a receiver
by that much. Reconnection wakes every waiter, because notifications may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping

import psycopg

logger = logging.getLogger(__name__)

# Payload prefix of "the queue row changed" (attributes, purge, deletion): nodes drop their cached
# record of the queue (see `_queuecache`) and wake its waiters. A bare id only wakes waiters.
CHANGED_PREFIX = "c"


class Waiters:
    """Local receivers waiting per queue id (single event loop; no locking needed).

    Every wake-up also advances the queue's epoch, so a receiver that read the epoch before its
    (empty) claim can tell that a wake-up arrived between the claim and its wait, and not sleep.

    Each waiter says how many messages it will claim when woken (``want``). A send may `reserve`
    that room for the messages it is writing: when the node's own waiters can take them all, the
    send needs no NOTIFY (the node wakes them itself after the commit), so the other nodes' waiters
    are not woken for messages they would only find already taken. A reservation lasts until the
    send wakes the waiters (`wake_some` releases it) or until the queue's next `wake`, which wakes
    every waiter that was counted.

    `wake_some` wakes only enough waiters to take a write's messages (oldest first), so that eight
    receivers parked on a queue do not all claim for one message. Its waiters are *chosen*: each
    must claim, and pass the wake-up on (`wake_some` again) if it claims none after all (its wait
    cancelled, see `wait`) or claims all it wanted (more may be left); the store does the latter.
    Every wake-up, partial or not, advances the epoch, so a receiver between its claim and its
    wait never sleeps through one meant for it (at worst it claims once more).
    """

    def __init__(self) -> None:
        self._by_queue: dict[int, dict[asyncio.Future[bool], int]] = {}
        self._reserved: dict[int, int] = {}
        self._epochs: dict[int, int] = {}
        self._all = 0  # wake_all calls: part of every queue's epoch
        self._ended_but: int | None = None  # after `end`: the one key whose waits still wait

    def end(self, keep: int) -> None:
        """Wake every waiter; from now on `wait` returns at once except on ``keep`` (the node is stopping).

        ``keep`` is the outbox's key: fan-out's workers wait there until they are stopped, after the
        requests, and must not turn into a busy loop meanwhile (their one extra wake-up is harmless).
        """
        self._ended_but = keep
        self.wake_all()

    def epoch(self, queue_id: int) -> int:
        """A number that grows with every wake-up of ``queue_id`` (both parts only ever increase)."""
        return self._all + self._epochs.get(queue_id, 0)

    async def wait(self, queue_id: int, timeout_s: float, since: int | None = None, want: int = 0) -> bool:
        """Return when `wake` or `wake_some` is called for ``queue_id`` (or `wake_all`), or after ``timeout_s``.

        With ``since`` (an earlier `epoch`), return at once if a wake-up came after it. ``want``:
        the messages this waiter will claim once woken (0: it will not claim, e.g. the outbox's).
        Returns True when the waiter was chosen by `wake_some`: it owes a claim, or a pass-on.
        A chosen waiter whose wait is cancelled passes its share on here (it will not claim).
        """
        ended = self._ended_but is not None and queue_id != self._ended_but
        if timeout_s <= 0 or ended or (since is not None and self.epoch(queue_id) != since):
            return False
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        waiting = self._by_queue.setdefault(queue_id, {})
        waiting[future] = want
        # A timer, not `asyncio.wait_for`: on Python 3.11 wait_for swallows a cancellation that arrives
        # as the future completes (it returns the result), and a cancelled long poll would go on waiting.
        timer = loop.call_later(timeout_s, _time_out, future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled() and future.result():
                self.wake_some(queue_id, want)  # chosen, but will not claim: the next waiters take its share
            raise
        finally:
            timer.cancel()
            waiting.pop(future, None)
            if not waiting and self._by_queue.get(queue_id) is waiting:
                del self._by_queue[queue_id]
        return future.result()

    def reserve(self, queue_id: int, messages: int) -> bool:
        """Claim room for ``messages`` among the waiters of ``queue_id`` not yet reserved; False if too little."""
        room = sum(self._by_queue.get(queue_id, {}).values()) - self._reserved.get(queue_id, 0)
        if messages > room:
            return False
        self._reserved[queue_id] = self._reserved.get(queue_id, 0) + messages
        return True

    def wake(self, queue_id: int) -> int:
        """Wake every waiter of ``queue_id``; return how many messages they will claim (their ``want``)."""
        self._epochs[queue_id] = self._epochs.get(queue_id, 0) + 1
        self._reserved.pop(queue_id, None)
        woken = 0
        for future, want in self._by_queue.pop(queue_id, {}).items():
            if not future.done():
                future.set_result(False)
                woken += want
        return woken

    def wake_some(self, queue_id: int, messages: int, reserved: int = 0) -> int:
        """Wake the oldest waiters of ``queue_id`` until they will claim ``messages``; return what they will claim.

        ``reserved``: room this write had `reserve`d, released now. Waiters that will claim nothing
        (``want`` 0) are woken too, since they are cheap and may be counting on any wake-up. The
        epoch advances as for `wake`: a receiver that is not parked yet claims again rather than
        risk sleeping through messages meant for it.
        """
        self._epochs[queue_id] = self._epochs.get(queue_id, 0) + 1
        if reserved:
            left = self._reserved.get(queue_id, 0) - reserved
            if left > 0:
                self._reserved[queue_id] = left
            else:
                self._reserved.pop(queue_id, None)
        waiting = self._by_queue.get(queue_id)
        if not waiting:
            return 0
        woken = 0
        for future, want in list(waiting.items()):
            if future.done():
                continue
            if want and woken >= messages:
                continue
            del waiting[future]
            future.set_result(want > 0)
            woken += want
        if not waiting:
            del self._by_queue[queue_id]
        return woken

    def wake_after_write(
        self, counts: Mapping[int, int], reserved: Collection[int], everyone: Collection[int]
    ) -> list[int]:
        """Wake this node's waiters after a committed write of ``counts`` messages per queue.

        Only enough waiters to take a queue's messages are woken (`wake_some`); the queues of
        ``everyone`` (delayed messages, which only an empty claim learns the due time of; FIFO queues)
        wake them all. ``reserved``: the queues whose room this write `reserve`d instead of notifying.
        Returns those of them whose waiters were gone by now (timed out, woken by another write):
        a NOTIFY must follow, so that no other node's receiver sleeps through the messages.
        """
        woken = {
            queue_id: self.wake(queue_id)
            if queue_id in everyone
            else self.wake_some(queue_id, count, count if queue_id in reserved else 0)
            for queue_id, count in counts.items()
        }
        return [queue_id for queue_id in sorted(reserved) if queue_id in woken and woken[queue_id] < counts[queue_id]]

    def wake_all(self) -> None:
        self._all += 1
        for queue_id in list(self._by_queue):
            self.wake(queue_id)

    def waiting(self, queue_id: int) -> int:
        return len(self._by_queue.get(queue_id, ()))


def _time_out(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)  # not chosen: the wait ran out


class Listener:
    """Keeps one connection LISTENing on ``channel`` and reconnects it for as long as it runs."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_notify: Callable[[int], object],
        on_reconnect: Callable[[], None],
        on_change: Callable[[int], None] | None = None,
        *,
        connect_timeout_s: float = 3.0,
        ping_interval_s: float = 5.0,
        retry_max_s: float = 2.0,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._on_change = on_change
        self._connect_timeout_s = connect_timeout_s
        self._ping_interval_s = ping_interval_s
        self._retry_max_s = retry_max_s
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self.connected = asyncio.Event()
        self._ever_connected = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"loosely-listen-{self._channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def _run(self) -> None:
        delay_s = 0.1
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError, TimeoutError) as error:
                logger.warning("listener on %s lost its connection: %s", self._channel, error)
            self.connected.clear()
            await self._close()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._retry_max_s)

    async def _listen_once(self) -> None:
        async with asyncio.timeout(self._connect_timeout_s):
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._conn = conn
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self._channel)))
        if self._ever_connected:
            self._on_reconnect()  # notifications may have been missed while disconnected
        self._ever_connected = True
        self.connected.set()
        while True:
            async for notify in conn.notifies(timeout=self._ping_interval_s):
                self._dispatch(notify.payload)
            # No traffic for a while: prove the link is alive, or raise and reconnect.
            async with asyncio.timeout(self._connect_timeout_s):
                await conn.execute("SELECT 1")

    def _dispatch(self, payload: str) -> None:
        changed = payload.startswith(CHANGED_PREFIX)
        try:
            queue_id = int(payload[len(CHANGED_PREFIX) :] if changed else payload)
        except ValueError:
            logger.warning("ignoring notification with payload %r on %s", payload, self._channel)
            return
        if changed and self._on_change is not None:
            self._on_change(queue_id)
        self._on_notify(queue_id)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
