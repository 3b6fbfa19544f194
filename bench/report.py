"""What the benchmarks share: a clean environment for the processes they time, a config file of
the shipped settings with a benchmark's changes, and writing a benchmark's table into
BENCHMARKS.md, between that benchmark's markers."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config" / "pipeline_config.yaml"


def config_file(path: Path, **values: Any) -> Path:
    """The shipped config with `values` over it (a dict is merged into its section), written to `path`."""
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    for key, value in values.items():
        config[key] = {**(config.get(key) or {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config))
    return path


def write_section(name: str, title: str, body: str) -> str:
    """Replace (or append) the section of benchmark `name`; returns the marked text written."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    marked = f"{begin}\n{body}\n{end}"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: marked, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{marked}\n"
    BENCHMARKS.write_text(text)
    return marked


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without its Prefect, gridiron or CFBD settings (a benchmark
    measures the defaults), Prefect quiet and without analytics, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "GRIDIRON_", "CFBD_"))}
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING", **values}


class PeakMemory(threading.Thread):
    """A process's peak resident memory in MiB, from its own high-water mark (VmHWM), read every
    20 ms until it exits. wait4's ru_maxrss would not do: Linux carries the peak of the process
    that started it (this benchmark, with its fake server's data) across the exec."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_mb = pid, 0.0

    def run(self) -> None:
        from gridiron.runs import high_water_mb

        while (mark := high_water_mb(self.pid)) is not None:  # None: exited
            self.peak_mb = max(self.peak_mb, mark)
            time.sleep(0.02)

    @classmethod
    def of(cls, pid: int) -> PeakMemory:
        watcher = cls(pid)
        watcher.start()
        return watcher
