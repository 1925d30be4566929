"""Run a real ``loosely serve`` process for end-to-end tests and scripts.

`ServerProcess` starts ``python -m loosely serve --port 0``, reads the one line the server prints
to learn its port, waits until ``/_loosely/health`` answers, and always stops what it started:
SIGTERM first, SIGKILL if the process does not exit in time. `kill` is the crash test's
``kill -9``; `restart` starts again on the same data directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ServerProcess"]

_LISTENING = re.compile(r"^loosely listening on (http://\S+)$")


class ServerProcess:
    """One server subprocess on a free port with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 20.0,
    ) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.startup_timeout_s = startup_timeout_s
        self.endpoint = ""
        self.startup_s = 0.0
        self.stderr_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_thread: threading.Thread | None = None

    # ---- life cycle ----

    def start(self) -> ServerProcess:
        """Start the server and return once it is healthy; raise with its stderr if it is not."""
        command = [sys.executable, "-m", "loosely", "serve", "--port", "0", "--data-dir", str(self.data_dir)]
        started = time.perf_counter()
        self.stderr_lines = []
        self._proc = subprocess.Popen(
            [*command, *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        try:
            self.endpoint = self._read_endpoint()
            self._wait_healthy(started)
        except BaseException:
            self.kill()
            raise
        self.startup_s = time.perf_counter() - started
        return self

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait for a graceful exit (SIGKILL after ``timeout_s``); return the exit code."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return self._finish(proc)

    def kill(self) -> None:
        """SIGKILL at once: nothing gets a chance to flush or close."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._finish(proc)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the server (e.g. SIGINT, as Ctrl-C would)."""
        if self._proc is not None:
            self._proc.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        """Wait for the server to exit by itself; return its exit code (raise on timeout)."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("not started")
        proc.wait(timeout_s)
        return self._finish(proc)

    def restart(self) -> ServerProcess:
        """Start again on the same data directory (after `stop` or `kill`); the port may change."""
        self.stop()
        return self.start()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc.pid

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- internals ----

    def _finish(self, proc: subprocess.Popen[str]) -> int:
        if self._stderr_thread is not None:
            self._stderr_thread.join(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._proc = None
        return proc.returncode

    def _drain_stderr(self) -> None:
        """Keep reading stderr so a chatty server never blocks on a full pipe; keep the text for failures."""
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        with contextlib.suppress(ValueError, OSError):
            for line in proc.stderr:
                self.stderr_lines.append(line)

    def _read_endpoint(self) -> str:
        """Wait (with a deadline) for the ``loosely listening on`` line."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        found: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = _LISTENING.match(line.strip())
            if match:
                found.append(match.group(1))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(self.startup_timeout_s)
        if not found:
            self.kill()
            raise RuntimeError(f"server did not report its address; stderr:\n{self.stderr}")
        return found[0]

    def _wait_healthy(self, started: float) -> None:
        deadline = started + self.startup_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_loosely/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"server at {self.endpoint} never became healthy; stderr:\n{self.stderr}")
            time.sleep(0.01)
