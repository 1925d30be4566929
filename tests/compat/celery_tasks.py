"""A Celery app whose broker is a loosely server, and tasks that write what they did to a file.

The compat tests import this module to send tasks, and a worker subprocess loads it with
``celery -A celery_tasks worker``. The worker learns its broker and queue from ``COMPAT_CELERY_*``
variables; every task appends one JSON line per run to the file ``COMPAT_CELERY_RESULTS`` names, so
the test can wait for an observable result without a result backend.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, Task

BROKER_URL = "COMPAT_CELERY_BROKER_URL"
QUEUE = "COMPAT_CELERY_QUEUE"
RESULTS = "COMPAT_CELERY_RESULTS"
VISIBILITY_TIMEOUT = "COMPAT_CELERY_VISIBILITY_TIMEOUT"

app = Celery("loosely_compat")


def configure(celery: Celery, broker_url: str, queue: str, visibility_timeout: int = 30) -> None:
    """Point ``celery`` at the server behind ``broker_url`` (``sqs://KEY:SECRET@host:port``), over plain HTTP."""
    celery.conf.update(
        broker_url=broker_url,
        broker_transport_options={
            "region": "us-east-1",
            "is_secure": False,
            "visibility_timeout": visibility_timeout,
            # Short long polls keep shutdowns quick; no client-side pause after an empty poll.
            "wait_time_seconds": 1,
            "polling_interval": 0,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
    )


if os.environ.get(BROKER_URL):
    configure(
        app,
        os.environ[BROKER_URL],
        os.environ[QUEUE],
        int(os.environ.get(VISIBILITY_TIMEOUT, "30")),
    )


def _record(task: Task, label: str, **extra: Any) -> None:
    line = {
        "label": label,
        "task": task.name,
        "retries": task.request.retries,
        "at": time.time(),
        "pid": os.getpid(),
        **extra,
    }
    with Path(os.environ[RESULTS]).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@app.task(bind=True, name="compat.record")
def record(self: Task, label: str, payload: Any = None) -> None:
    """Write one line: the task ran, with its argument."""
    _record(self, label, payload=payload)


@app.task(
    bind=True,
    name="compat.flaky",
    autoretry_for=(RuntimeError,),
    retry_kwargs={"max_retries": 5, "countdown": 0},
)
def flaky(self: Task, label: str, failures: int) -> None:
    """Raise on the first ``failures`` runs (Celery retries it by itself), then succeed."""
    _record(self, label, failed=self.request.retries < failures)
    if self.request.retries < failures:
        raise RuntimeError(f"attempt {self.request.retries} fails on purpose")


@app.task(bind=True, name="compat.retry_once", max_retries=3)
def retry_once(self: Task, label: str, countdown: int) -> None:
    """Ask for one retry ``countdown`` seconds later with ``self.retry``, then succeed."""
    _record(self, label)
    if self.request.retries == 0:
        raise self.retry(countdown=countdown, exc=RuntimeError("first attempt asks to be retried"))


@app.task(bind=True, name="compat.crash_once", acks_late=True)
def crash_once(self: Task, label: str, marker: str) -> None:
    """Kill the whole worker mid-task the first time (``marker`` does not exist yet), as a host crash would.

    With ``acks_late`` the message is still in flight, so SQS must hand it out again once its
    visibility timeout has passed.
    """
    crash = not Path(marker).exists()
    _record(self, label, crashed=crash)
    if crash:
        Path(marker).touch()
        os._exit(1)
