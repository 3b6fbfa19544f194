"""One pipeline run at a time on one `GRIDIRON_HOME`, whoever starts it (CLI, worker, Python).

An exclusive `flock` on `GRIDIRON_HOME/gridiron.lock`, taken before any API call and held for the
whole run. The operating system releases it when the process ends, however it ends, so a killed
run never leaves a stale lock; the file records who holds it (flow run, pid, host, start) so the
refusal can name the running one, and `gridiron health` can tell a live run from one left RUNNING
in Prefect by a process that is gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCK_FILE = "gridiron.lock"


class RunInProgress(RuntimeError):
    """Another run holds the warehouse: this one was refused before doing anything."""


def _describe(holder: dict[str, Any]) -> str:
    name = holder.get("flow_run_name") or holder.get("run_id") or "unknown"
    return (f"flow run '{name}' (run id {holder.get('run_id')}, pid {holder.get('pid')} on "
            f"{holder.get('host')}, since {holder.get('started_at')})")


@contextmanager
def run_lock(home: str | Path, run_id: str, flow_run_name: str | None) -> Iterator[Path]:
    """Hold the home's run lock for the block; `RunInProgress` naming the holder if it is taken."""
    path = Path(home) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(path)
        os.close(fd)
        raise RunInProgress(
            f"another pipeline run is using {Path(home).resolve()}: {_describe(holder)}; this run was "
            "refused before any API call. Let that run end, or give this one another GRIDIRON_HOME"
        ) from None
    try:
        holder = {"run_id": run_id, "flow_run_name": flow_run_name, "pid": os.getpid(),
                  "host": socket.gethostname(), "started_at": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def lock_state(home: str | Path) -> tuple[dict[str, Any] | None, bool]:
    """(the last run to take the lock: run id, flow run name, pid, host, start; whether a live
    process holds it now). The record outlives the run, so a run still reported RUNNING whose id is
    the record's while nobody holds the lock was left behind by a process that is gone."""
    path = Path(home) / LOCK_FILE
    if not path.exists():
        return None, False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(path), True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return _read(path) or None, False
    finally:
        os.close(fd)


def lock_holder(home: str | Path) -> dict[str, Any] | None:
    """Who holds the run lock now, or None when no live process does."""
    record, held = lock_state(home)
    return record if held else None
