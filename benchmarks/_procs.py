"""Start and watch server processes: address discovery, start-up time, CPU and RSS from /proc.

CPU and memory are summed over the process and its descendants, so a server that forks workers is
measured whole.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LISTENING = re.compile(r"listening on http://([^:/\s]+):(\d+)")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ServerProcess:
    """A server subprocess that announced ``... listening on http://HOST:PORT`` on stdout or stderr."""

    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    started_s: float  # spawn → listening line
    log_path: Path
    _log: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return sum(_cpu_ticks(pid) for pid in _tree(self.pid)) / _CLK_TCK

    def rss_bytes(self) -> int:
        return sum(_rss_pages(pid) for pid in _tree(self.pid)) * _PAGE

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(
    name: str, argv: Sequence[str], log_dir: Path, timeout_s: float = 30.0, env: dict[str, str] | None = None
) -> ServerProcess:
    """Spawn ``argv`` and wait for its listening line; stdout and stderr go to one log file."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = t0 + timeout_s
    while time.perf_counter() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return ServerProcess(name, proc, match[1], int(match[2]), time.perf_counter() - t0, log_path)
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{name} did not report its address (exit {proc.returncode}):\n{tail}")


async def wait_healthy(probe: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> float:
    """Await ``probe()`` until it returns True; the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        try:
            if await probe():
                return time.perf_counter() - t0
        except (OSError, ConnectionError):
            pass
        await asyncio.sleep(0.005)
    raise TimeoutError("server never became healthy")


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``): with the server's and the generator's
    share subtracted, what other processes took during a window, i.e. how noisy the measurement was."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLK_TCK


def postgres_cpu_s() -> float:
    """CPU seconds of the local PostgreSQL server: its live processes plus, through the postmaster's
    ``cutime``/``cstime``, the backends that already exited (a closed connection takes its CPU with it).
    Other clients of the same database count too."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    pids.append(int(entry))
            except OSError:
                continue
    total = sum(_cpu_ticks(pid) for pid in pids)
    family = set(pids)
    for pid in pids:
        fields = _stat_fields(pid)
        if fields and int(fields[1]) not in family:  # the postmaster: reaped children are added to it
            total += int(fields[13]) + int(fields[14])
    return total / _CLK_TCK


def python_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    # Fields after the name start at 'state' (field 3): utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12]) if fields else 0


def _rss_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError):
        return 0
