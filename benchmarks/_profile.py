"""Attach py-spy to a node for the span of one scenario (``--profile FILE --profile-scenario NAME``)."""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

FORMATS = {".json": "speedscope", ".txt": "raw"}  # anything else: a flame graph (.svg)


@contextlib.contextmanager
def profiling(out: Path | None, pid: int, max_s: float, rate: int = 200) -> Iterator[None]:
    """Sample ``pid`` while the block runs (at most ``max_s`` seconds); nothing when ``out`` is None.

    py-spy writes its file when its duration ends or when interrupted, so a scenario that ends early
    interrupts it: the profile covers the scenario and nothing after it.
    """
    if out is None:
        yield
        return
    fmt = FORMATS.get(out.suffix, "flamegraph")
    argv = [
        "py-spy",
        "record",
        "--nonblocking",
        "--pid",
        str(pid),
        "--duration",
        str(math.ceil(max_s)),
        "--rate",
        str(rate),
    ]
    proc = subprocess.Popen([*argv, "--format", fmt, "--output", str(out)], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
