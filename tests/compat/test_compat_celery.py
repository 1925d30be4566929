"""kombu's SQS transport and a Celery worker, unmodified, against a real loosely server.

kombu gives the endpoint in the broker URL's host and port (``sqs://KEY:SECRET@host:port``) and
the scheme by the ``is_secure`` transport option. Its blocking calls (create, send, delete,
attributes, and receives outside an event loop) go through boto3; the receives of its event-loop
consumer, the one a Celery worker runs, go through its own pycurl client, which speaks whatever
protocol botocore's SQS model names: AWS JSON 1.0 with current botocore, Query with the Query-era
model (``AWS_DATA_PATH`` pointing at botocore 1.31.0's model); the event-loop test runs under both.
(kombu 5.7's blocking receive always passes ``MessageSystemAttributeNames``, which the Query-era
model does not know, so only the event-loop consumer can run against that model.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from compat.conftest import CREDENTIALS, QUERY_MODELS, REGION, Loosely

kombu = pytest.importorskip("kombu")
pytest.importorskip("celery")
pytest.importorskip("pycurl")

import celery_tasks  # noqa: E402
from celery_wiretap import Exchange, Wiretap  # noqa: E402
from kombu.asynchronous import Hub, set_event_loop  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    # kombu 5.7's pycurl client still calls what pycurl 7.45+ deprecates (IOCTLFUNCTION, socket_all).
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kombu.asynchronous.http.curl"),
]

HERE = Path(__file__).resolve().parent
KEY, SECRET = CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"]
VISIBILITY_TIMEOUT = 30


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def broker_url(endpoint: str) -> str:
    """kombu's SQS URL for a server: the endpoint is the URL's host and port."""
    host_port = endpoint.removeprefix("http://")
    return f"sqs://{KEY}:{SECRET}@{host_port}"


def transport_options(**extra: Any) -> dict[str, Any]:
    return {
        "region": REGION,
        "is_secure": False,
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "wait_time_seconds": 1,
        "polling_interval": 0,
        **extra,
    }


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 15.0, every_s: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def queue_counts(sqs: Any, url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) as SQS reports them."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, in_flight, delayed = (int(attributes[name]) for name in names)
    return visible, in_flight, delayed


# ---- kombu ----


@pytest.fixture(params=["json", "query"])
def protocol(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SQS protocol kombu's clients use: botocore's current model, or the Query-era one."""
    if request.param == "query":
        monkeypatch.setenv("AWS_DATA_PATH", str(QUERY_MODELS))
    else:
        monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    return str(request.param)


@pytest.fixture
def sqs(loosely: Loosely) -> Iterator[Any]:
    """A boto3 client of our own, to look at queues behind kombu's back."""
    client = loosely.boto3_client("sqs")
    yield client
    client.close()


@pytest.fixture
def connect(loosely: Loosely) -> Iterator[Callable[..., Any]]:
    """Open kombu connections to the server (``endpoint`` may be a proxy); all are released at teardown."""
    opened: list[Any] = []

    def open_connection(endpoint: str | None = None, **options: Any) -> Any:
        connection = kombu.Connection(
            broker_url(endpoint or loosely.endpoint), transport_options=transport_options(**options)
        )
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.release()


def url_of(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def test_simple_queue_round_trips_body_properties_and_headers(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu")
    connection = connect(
        fetch_message_attributes={"MessageSystemAttributeNames": ["SentTimestamp"], "MessageAttributeNames": ["source"]}
    )
    queue = connection.SimpleQueue(name)
    body = {"text": "zwölf Boxkämpfer", "n": [1, 2.5, None], "nested": {"ok": True}}
    queue.put(
        body,
        headers={"trace": "abc-123", "attempt": 2},
        priority=7,
        correlation_id="corr-1",
        reply_to="replies",
        message_attributes={"source": {"DataType": "String", "StringValue": "compat"}},
    )

    message = queue.get(timeout=10)

    assert message.payload == body
    assert message.headers == {"trace": "abc-123", "attempt": 2}
    assert message.content_type == "application/json"
    assert message.properties["priority"] == 7
    assert message.properties["correlation_id"] == "corr-1"
    assert message.properties["reply_to"] == "replies"
    assert message.delivery_info["routing_key"] == name
    received = message.delivery_info["sqs_message"]
    assert received["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(received["Attributes"]["SentTimestamp"]) / 1000 - time.time()) < 60
    assert received["MessageAttributes"]["source"] == {"StringValue": "compat", "DataType": "String"}
    url = url_of(sqs, name)
    assert message.delivery_info["sqs_queue"] == url
    # kombu created the queue with its visibility_timeout option.
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attributes["VisibilityTimeout"] == str(VISIBILITY_TIMEOUT)
    assert queue_counts(sqs, url) == (0, 1, 0)

    message.ack()

    assert queue_counts(sqs, url) == (0, 0, 0)
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", []) == []
    queue.close()


def test_requeued_message_comes_back(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu")
    queue = connect().SimpleQueue(name)
    queue.put({"job": 1})
    first = queue.get(timeout=10)
    message_id = first.delivery_info["sqs_message"]["MessageId"]

    first.requeue()

    # Requeued (kombu shortens its visibility timeout to wait_time_seconds), it comes back long
    # before the queue's 30 s would have passed.
    again = queue.get(timeout=10)
    assert again.payload == {"job": 1}
    assert again.delivery_info["sqs_message"]["MessageId"] == message_id
    assert again.delivery_info["sqs_message"]["Attributes"]["ApproximateReceiveCount"] == "2"
    again.ack()
    assert queue_counts(sqs, url_of(sqs, name)) == (0, 0, 0)
    queue.close()


def test_rejected_message_is_deleted(connect: Callable[..., Any], sqs: Any) -> None:
    """kombu deletes a message rejected without requeue when its queue has no redrive policy."""
    name = unique("kombu")
    queue = connect().SimpleQueue(name)
    queue.put({"job": "poison"})
    message = queue.get(timeout=10)
    url = url_of(sqs, name)
    assert queue_counts(sqs, url) == (0, 1, 0)

    message.reject()

    assert queue_counts(sqs, url) == (0, 0, 0)
    queue.close()


def test_rejected_message_with_redrive_policy_goes_to_dead_letter_queue(connect: Callable[..., Any], sqs: Any) -> None:
    """With a redrive policy kombu leaves a rejected message to SQS, which dead-letters it."""
    dead = sqs.create_queue(QueueName=unique("kombu-dlq"))["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 1})
    name = unique("kombu")
    connection = connect(visibility_timeout=1, **{"sqs-creation-attributes": {"RedrivePolicy": policy}})
    queue = connection.SimpleQueue(name)
    queue.put({"job": "poison"})

    queue.get(timeout=10).reject()

    # Not deleted: once its 1 s visibility timeout has passed, the next receive of the queue
    # moves it to the dead-letter queue instead of returning it.
    url = url_of(sqs, name)
    assert queue_counts(sqs, url) == (0, 1, 0)

    def moved() -> Any:
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
        return sqs.receive_message(QueueUrl=dead).get("Messages")

    assert len(wait_for("the rejected message in the dead-letter queue", moved, every_s=0.1)) == 1
    assert queue_counts(sqs, url) == (0, 0, 0)
    queue.close()


def test_queue_size_and_purge(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu")
    queue = connect().SimpleQueue(name)
    for n in range(3):
        queue.put({"n": n})

    assert queue.qsize() == 3
    queue.clear()  # PurgeQueue (kombu's return value adds up its ten size checks, so it is not checked)

    assert queue.qsize() == 0
    assert queue_counts(sqs, url_of(sqs, name)) == (0, 0, 0)
    queue.close()


def test_fifo_queue_keeps_each_group_in_order(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu") + ".fifo"
    queue = connect().SimpleQueue(name)
    sent = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2), ("b", 3), ("a", 4)]
    for group, n in sent:
        queue.put({"group": group, "n": n}, MessageGroupId=group, MessageDeduplicationId=f"{group}-{n}")
    # Same deduplication id within five minutes: SQS accepts it and drops it.
    queue.put({"group": "a", "n": 99}, MessageGroupId="a", MessageDeduplicationId="a-1")

    received: list[tuple[str, int]] = []
    while len(received) < len(sent):
        message = queue.get(timeout=10)
        received.append((message.payload["group"], message.payload["n"]))
        assert message.delivery_info["sqs_message"]["Attributes"]["ApproximateReceiveCount"] == "1"
        message.ack()

    for group in ("a", "b"):
        assert [n for g, n in received if g == group] == [n for g, n in sent if g == group]
    url = url_of(sqs, name)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])["Attributes"] == {"FifoQueue": "true"}
    assert queue_counts(sqs, url) == (0, 0, 0)
    queue.close()


def test_fifo_requeued_message_comes_back_before_the_rest_of_its_group(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu") + ".fifo"
    queue = connect().SimpleQueue(name)
    queue.consumer.qos(prefetch_count=1)  # one receive per message, one message at a time
    for n in range(1, 4):
        queue.put({"n": n}, MessageGroupId="only", MessageDeduplicationId=str(n))

    first = queue.get(timeout=10)
    assert first.payload == {"n": 1}
    first.requeue()

    order = []
    for _ in range(3):
        message = queue.get(timeout=10)
        order.append(message.payload["n"])
        message.ack()
    assert order == [1, 2, 3]
    queue.close()


def test_delay_seconds_holds_the_message_back(connect: Callable[..., Any], sqs: Any) -> None:
    name = unique("kombu")
    queue = connect().SimpleQueue(name)
    sent_at = time.time()
    queue.put({"later": True}, delay_seconds=2)
    url = url_of(sqs, name)
    assert queue_counts(sqs, url) == (0, 0, 1)

    message = queue.get(timeout=10)

    assert time.time() - sent_at >= 1.9
    assert message.payload == {"later": True}
    message.ack()
    queue.close()


def test_fanout_exchange_reaches_every_bound_queue_through_sns(connect: Callable[..., Any], sqs: Any) -> None:
    """kombu's ``supports_fanout``: an SNS topic per fanout exchange, each queue subscribed with raw delivery."""
    connection = connect(supports_fanout=True)
    exchange = kombu.Exchange(unique("kombu-fanout"), type="fanout")
    queues = [kombu.Queue(unique("kombu-fan"), exchange=exchange) for _ in range(2)]
    got: list[tuple[str, Any, Any]] = []

    def on_message(body: Any, message: Any) -> None:
        got.append((message.delivery_info["sqs_queue"], body, message.headers))
        message.ack()

    with connection.Consumer(queues, callbacks=[on_message]):  # consuming subscribes the queues
        with connection.Producer() as producer:
            producer.publish({"to": "everyone"}, exchange=exchange, declare=[exchange], headers={"h": "1"})
        deadline = time.monotonic() + 15
        while len(got) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=1)

    urls = sorted(url_of(sqs, queue.name) for queue in queues)
    assert sorted(got, key=lambda item: item[0]) == [(url, {"to": "everyone"}, {"h": "1"}) for url in urls]
    for url in urls:
        assert queue_counts(sqs, url) == (0, 0, 0)


def consume_on_event_loop(
    connect: Callable[..., Any], upstream: str, name: str, count: int
) -> tuple[list[tuple[Any, Any, Any]], list[Exchange]]:
    """Publish ``count`` messages to queue ``name``, then consume them as a Celery worker does (kombu's
    hub and its pycurl client), through a `Wiretap` in front of ``upstream``.

    Returns each message's (body, headers, SQS system attributes) and every exchange the tap saw.
    """
    hub = Hub()
    set_event_loop(hub)
    tap = Wiretap(upstream)
    got: list[tuple[Any, Any, Any]] = []
    try:
        connection = connect(tap.endpoint)
        target = kombu.Queue(name)
        with connection.Producer() as producer:
            for n in range(count):
                producer.publish({"n": n}, routing_key=name, declare=[target], headers={"n": str(n)})
        connection.register_with_event_loop(hub)

        def on_message(body: Any, message: Any) -> None:
            got.append((body, message.headers, message.delivery_info["sqs_message"].get("Attributes")))
            message.ack()

        with connection.Consumer([target], callbacks=[on_message]):
            deadline = time.monotonic() + 15
            while len(got) < count and time.monotonic() < deadline:
                hub.run_once()
    finally:
        hub.close()
        set_event_loop(None)
        tap.close()
    return got, tap.recorded()


def test_event_loop_consumer_receives_over_pycurl(
    connect: Callable[..., Any], sqs: Any, loosely: Loosely, protocol: str
) -> None:
    """The consumer a Celery worker runs, in the protocol botocore's model names."""
    name = unique("kombu")

    got, exchanges = consume_on_event_loop(connect, loosely.endpoint, name, 5)

    assert sorted(body["n"] for body, _, _ in got) == list(range(5))
    assert all(headers == {"n": str(body["n"])} for body, headers, _ in got)
    if protocol == "json":  # Query: see test_query_receive_returns_the_system_attributes_kombu_asks_for
        assert all(attributes == {"ApproximateReceiveCount": "1"} for _, _, attributes in got)
    assert queue_counts(sqs, url_of(sqs, name)) == (0, 0, 0)
    assert_pycurl_receives(exchanges, protocol, name)


def test_query_receive_returns_the_system_attributes_kombu_asks_for(
    connect: Callable[..., Any], loosely: Loosely, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(QUERY_MODELS))

    got, exchanges = consume_on_event_loop(connect, loosely.endpoint, unique("kombu"), 1)

    receives = [e for e in exchanges if "pycurl" in e.header("User-Agent") and b"<Message>" in e.response_body]
    # MessageSystemAttributeName.N, singular like SQS's other flattened lists (AttributeName.N,
    # MessageAttributeName.N): loosely's Query model names the item so, and also takes the plural.
    if len(got) != 1 or len(receives) != 1:
        pytest.fail(f"expected one message through one pycurl receive, got {got} in {len(receives)}")
    if b"&MessageSystemAttributeName.1=ApproximateReceiveCount&" not in receives[0].body:
        pytest.fail(f"kombu no longer sends what this test is about:\n{receives[0]}")
    assert got[0][2] == {"ApproximateReceiveCount": "1"}, str(receives[0])


def assert_pycurl_receives(exchanges: list[Exchange], protocol: str, queue_name: str) -> None:
    """kombu's own HTTP client sent ReceiveMessage for ``queue_name`` in ``protocol``, and got 200s."""
    receives = [e for e in exchanges if "pycurl" in e.header("User-Agent")]
    assert receives, "no request came from kombu's pycurl client"
    for exchange in receives:
        assert exchange.status == 200, str(exchange)
        if protocol == "json":
            assert exchange.header("X-Amz-Target") == "AmazonSQS.ReceiveMessage", str(exchange)
            assert exchange.header("Content-Type") == "application/x-amz-json-1.0", str(exchange)
            assert json.loads(exchange.body)["QueueUrl"].endswith(f"/{queue_name}"), str(exchange)
        else:
            assert exchange.header("Content-Type").startswith("application/x-www-form-urlencoded"), str(exchange)
            assert b"Action=ReceiveMessage" in exchange.body, str(exchange)
            assert exchange.path.endswith(f"/{queue_name}"), str(exchange)


# ---- Celery ----


@dataclass
class Worker:
    """A ``celery worker`` subprocess consuming one queue; its tasks write JSON lines to ``results``."""

    process: subprocess.Popen[bytes]
    queue: str
    log: Path
    results: Path
    stopped: bool = field(default=False)
    tap: Wiretap | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def runs(self, label: str) -> list[dict[str, Any]]:
        """The runs recorded for ``label``, in order."""
        if not self.results.exists():
            return []
        text = self.results.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line being written is read next time
        lines = [json.loads(line) for line in complete.splitlines() if line.strip()]
        return [line for line in lines if line["label"] == label]

    def wait_runs(self, label: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            runs = self.runs(label)
            if len(runs) >= count:
                return runs
            if self.process.poll() is not None and not self.stopped:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log_text()}")
            return None

        try:
            return list(wait_for(f"{count} run(s) of {label}", enough, timeout_s))
        except pytest.fail.Exception:
            print(self.log_text())
            raise

    def stop(self, timeout_s: float = 15.0) -> int:
        """Warm shutdown (SIGTERM), SIGKILL if it does not exit in time."""
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_worker(
    endpoint: str, directory: Path, queue: str, visibility_timeout: int = VISIBILITY_TIMEOUT, protocol: str = "json"
) -> Worker:
    """Start a worker consuming ``queue`` and wait until it is ready; ``protocol="query"`` gives its
    botocore the Query-era SQS model, as boto3 1.26 to 1.31 (which kombu 5.7 accepts) have."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "AWS_DATA_PATH"}
    if protocol == "query":
        env["AWS_DATA_PATH"] = str(QUERY_MODELS)
    env.update(
        {
            celery_tasks.BROKER_URL: broker_url(endpoint),
            celery_tasks.QUEUE: queue,
            celery_tasks.RESULTS: str(directory / "results.jsonl"),
            celery_tasks.VISIBILITY_TIMEOUT: str(visibility_timeout),
            "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
        }
    )
    command = [
        sys.executable, "-m", "celery", "-A", "celery_tasks", "worker",
        "--pool", "solo", "--loglevel", "INFO", "--hostname", f"{queue}@localhost",
    ]  # fmt: skip
    log = directory / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    worker = Worker(process, queue, log, directory / "results.jsonl")

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"worker exited with {process.returncode} before it was ready:\n{worker.log_text()}")
        return " ready." in worker.log_text()

    try:
        wait_for("the Celery worker to be ready", ready, timeout_s=30)
    except BaseException:
        worker.stop()
        raise
    return worker


@pytest.fixture
def spawn_worker(celery_app: Any, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers for one test (arguments as `start_worker`'s, without the directory); all are
    stopped at teardown, SIGKILL after a timeout."""
    started: list[Worker] = []

    def spawn(endpoint: str, queue: str, **options: Any) -> Worker:
        worker = start_worker(endpoint, tmp_path, queue, **options)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def celery_app(loosely: Loosely) -> Iterator[Any]:
    """The tasks' Celery app in this process, sending to the server (default queue: the shared worker's)."""
    queue = unique("celery")
    celery_tasks.configure(celery_tasks.app, broker_url(loosely.endpoint), queue)
    yield celery_tasks.app
    celery_tasks.app.close()


@pytest.fixture(scope="module")
def worker(loosely: Loosely, celery_app: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker for the module, consuming the app's default queue through a `Wiretap`."""
    tap = Wiretap(loosely.endpoint)
    try:
        started = start_worker(tap.endpoint, tmp_path_factory.mktemp("celery"), celery_app.conf.task_default_queue)
        started.tap = tap
        yield started
        assert started.stop() == 0, started.log_text()
    finally:
        tap.close()


def test_worker_runs_delayed_task(worker: Worker, sqs: Any) -> None:
    label = unique("delay")
    payload = {"text": "zwölf", "numbers": [1, 2.5], "nested": {"ok": True}}

    celery_tasks.record.delay(label, payload)

    [run] = worker.wait_runs(label, 1)
    assert run["payload"] == payload
    assert run["retries"] == 0
    url = url_of(sqs, worker.queue)
    wait_for("the task's message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))
    assert worker.tap is not None
    assert_pycurl_receives(worker.tap.recorded(), "json", worker.queue)


def test_worker_with_query_era_botocore_receives_over_query(
    loosely: Loosely, spawn_worker: Callable[..., Worker], sqs: Any
) -> None:
    """The same worker with botocore's Query-era model: its receives speak Query, the rest works alike."""
    queue, label = unique("celery-query"), unique("query")
    with Wiretap(loosely.endpoint) as tap:
        worker = spawn_worker(tap.endpoint, queue, protocol="query")
        celery_tasks.record.apply_async((label, {"via": "query"}), queue=queue)
        celery_tasks.flaky.apply_async((label, 1), queue=queue)

        runs = worker.wait_runs(label, 3)

        url = url_of(sqs, queue)
        wait_for("every message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))
        assert worker.stop() == 0, worker.log_text()
        assert_pycurl_receives(tap.recorded(), "query", queue)
        sent_by_boto3 = [e for e in tap.recorded() if e.header("User-Agent").startswith("Boto3")]
        assert sent_by_boto3
        assert all(e.header("X-Amz-Target") == "" and b"Action=" in e.body for e in sent_by_boto3)
    assert sorted((run["task"], run["retries"]) for run in runs) == [
        ("compat.flaky", 0),
        ("compat.flaky", 1),
        ("compat.record", 0),
    ]


def test_worker_runs_task_after_its_countdown(worker: Worker, sqs: Any) -> None:
    """Celery's ETA: the worker holds the received message unacknowledged until the countdown ends."""
    label = unique("countdown")
    sent_at = time.time()

    celery_tasks.record.apply_async((label,), countdown=2)

    [run] = worker.wait_runs(label, 1)
    assert run["at"] - sent_at >= 2.0
    url = url_of(sqs, worker.queue)
    wait_for("the task's message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))


def test_worker_retries_a_failing_task_by_autoretry_for(worker: Worker, sqs: Any) -> None:
    label = unique("autoretry")

    celery_tasks.flaky.delay(label, 2)

    runs = worker.wait_runs(label, 3)
    assert [(run["retries"], run["failed"]) for run in runs] == [(0, True), (1, True), (2, False)]
    url = url_of(sqs, worker.queue)
    wait_for("every attempt's message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))
    assert len(worker.runs(label)) == 3


def test_worker_retries_a_task_that_calls_self_retry(worker: Worker, sqs: Any) -> None:
    label = unique("retry")

    celery_tasks.retry_once.apply_async((label, 1))

    first, second = worker.wait_runs(label, 2)
    assert (first["retries"], second["retries"]) == (0, 1)
    assert second["at"] - first["at"] >= 1.0
    url = url_of(sqs, worker.queue)
    wait_for("every attempt's message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))


def test_message_of_a_crashed_worker_comes_back_after_the_visibility_timeout(
    loosely: Loosely, spawn_worker: Callable[..., Worker], sqs: Any, tmp_path: Path
) -> None:
    """``acks_late``: a worker killed mid-task never acknowledges, so SQS hands the message out again
    once the ``visibility_timeout`` transport option (the queue's VisibilityTimeout) has passed."""
    queue, label, timeout_s = unique("celery-vt"), unique("crash"), 4
    first = spawn_worker(loosely.endpoint, queue, visibility_timeout=timeout_s)
    url = url_of(sqs, queue)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attributes == {"VisibilityTimeout": str(timeout_s)}

    celery_tasks.crash_once.apply_async((label, str(tmp_path / "crashed")), queue=queue)

    first.wait_runs(label, 1)
    first.stopped = True  # it is about to kill itself
    assert first.process.wait(15) == 1
    assert queue_counts(sqs, url)[1] == 1  # still in flight: nobody acknowledged it

    second = spawn_worker(loosely.endpoint, queue, visibility_timeout=timeout_s)
    crashed, rerun = second.wait_runs(label, 2, timeout_s=timeout_s + 15)
    assert (crashed["crashed"], rerun["crashed"]) == (True, False)
    assert rerun["at"] - crashed["at"] >= timeout_s - 0.5
    wait_for("the rerun's message to be deleted", lambda: queue_counts(sqs, url) == (0, 0, 0))
    assert second.stop() == 0, second.log_text()


def test_warm_shutdown_hands_back_a_task_waiting_for_its_eta(
    loosely: Loosely, spawn_worker: Callable[..., Worker], sqs: Any
) -> None:
    """A worker holds an ETA task's message in flight; stopping it makes the message visible again
    at once (kombu shortens its visibility timeout) instead of after the queue's 30 s."""
    queue = unique("celery-eta")
    worker = spawn_worker(loosely.endpoint, queue)
    url = url_of(sqs, queue)
    result = celery_tasks.record.apply_async((unique("eta"),), countdown=300, queue=queue)
    wait_for("the worker to hold the task", lambda: f"[{result.id}] received" in worker.log_text())
    assert queue_counts(sqs, url) == (0, 1, 0)

    assert worker.stop() == 0, worker.log_text()

    wait_for("the task's message to be visible again", lambda: queue_counts(sqs, url) == (1, 0, 0), timeout_s=10)
    [message] = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"
