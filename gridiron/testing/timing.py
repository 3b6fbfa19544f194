"""Start a `gridiron` command and time it from outside: its wall time, its peak resident memory
and what it printed. The benchmarks and the tests that start the program share this one way."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GRIDIRON = str(Path(sys.executable).parent / "gridiron")


class PeakMemory(threading.Thread):
    """A process's peak resident memory in MiB, from its own high-water mark (VmHWM), read every
    20 ms until it exits. wait4's ru_maxrss would not do: Linux carries the peak of the process
    that started it (a benchmark, with its fake server's data) across the exec."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_mb = pid, 0.0

    def run(self) -> None:
        """Watch the process until it exits."""
        from gridiron.runs import high_water_mb

        while (mark := high_water_mb(self.pid)) is not None:  # None: exited
            self.peak_mb = max(self.peak_mb, mark)
            time.sleep(0.02)

    @classmethod
    def of(cls, pid: int) -> PeakMemory:
        """Start watching `pid`."""
        watcher = cls(pid)
        watcher.start()
        return watcher


@dataclass(frozen=True)
class Timed:
    """How one command went: wall seconds, peak RSS (MiB), exit status, stdout and stderr."""

    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str) -> Timed:
        """Itself, or SystemExit naming `what` and the end of its output when it failed."""
        if self.returncode:
            raise SystemExit(f"{what} failed (exit {self.returncode}):\n{self.stdout[-1500:]}{self.stderr[-2500:]}")
        return self


def timed_gridiron(args: list[str], env: dict[str, str], cwd: Path | None = None, *,
                   merge_output: bool = False, timeout: float = 1800) -> Timed:
    """Run `gridiron ARGS` in its own process and wait for it: how it went. With `merge_output`,
    stderr is written into stdout (one stream, in the order printed)."""
    start = time.perf_counter()
    process = subprocess.Popen([GRIDIRON, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.STDOUT if merge_output else subprocess.PIPE)
    memory = PeakMemory.of(process.pid)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    seconds = time.perf_counter() - start
    memory.join()
    return Timed(seconds, memory.peak_mb, process.returncode, stdout or "", stderr or "")


def gridiron_run(env: dict[str, str], cwd: Path | None = None, *args: str) -> Timed:
    """`gridiron run ARGS`, which must succeed (SystemExit with its output otherwise)."""
    return timed_gridiron(["run", *args], env, cwd, merge_output=True).check(f"gridiron run {' '.join(args)}".strip())


def environment_without_settings(**values: str) -> dict[str, str]:
    """This process's environment without its Prefect, gridiron or CFBD settings (a measurement
    sees the defaults), Prefect quiet and without analytics, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "GRIDIRON_", "CFBD_"))}
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING", **values}
