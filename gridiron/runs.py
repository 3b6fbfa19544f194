"""Run bookkeeping: each phase's wall time, records and the process's peak memory so far."""

from __future__ import annotations

import resource
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from gridiron.planning import CollectResult
from gridiron.progress import progress  # one line as each phase starts and ends

T = TypeVar("T")


def high_water_mb(pid: int | str = "self") -> float | None:
    """The kernel's high-water mark of a process's resident memory (VmHWM), in MiB; None where
    /proc does not say (not Linux, or the process is gone: a zombie holds no memory)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB. On Linux its own high-water mark
    (`high_water_mb`): `ru_maxrss` carries the peak of whatever process started this one across
    its exec, so a run a worker starts would report the worker's memory (a run started from a
    500 MB process read 500 MB on its first line). Elsewhere `ru_maxrss` (KiB on Linux, bytes on
    macOS)."""
    own = high_water_mb()
    if own is not None:
        return own
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Phase:
    """One phase of a run as recorded in pipeline_run_phases: when, how long, records, peak memory, status."""

    phase: str
    started_at: datetime
    duration_seconds: float = 0.0
    records: int = 0
    peak_rss_mb: float = 0.0
    status: str = "running"

    def as_row(self) -> dict[str, Any]:
        """The phase as a pipeline_run_phases row."""
        return dict(self.__dict__)

    def counts(self, result: T) -> T:
        """Take the phase's records from its result (every phase result has `records`)."""
        self.records = result.records
        return result


def stopped_by_signal(error: BaseException, phases: list[Phase]) -> str | None:
    """For a run stopped by a signal (SIGTERM from a worker cancelling it or a service stopping,
    Ctrl-C), what happened in words: the signal, the phase, what was committed, that a rerun is
    safe. None for any other error. (Prefect's TerminationSignal carries the signal's number.)"""
    number = signal.SIGINT if isinstance(error, KeyboardInterrupt) else getattr(error, "signal", None)
    if not isinstance(number, int) or number not in {s.value for s in signal.Signals}:
        return None
    during = phases[-1].phase if phases else "its start"
    validated = any(p.phase == "validate" and p.status == "completed" for p in phases)
    what = ("the data was loaded and validated, and the backup was not finished" if validated
            else "nothing of this run was committed (a load under way is rolled back)")
    return f"stopped by {signal.Signals(number).name} during {during}: {what}; a rerun is safe"


@dataclass
class RunTracker:
    """One pipeline run's bookkeeping, recorded in `pipeline_runs` whether it succeeds or not."""

    run_id: str
    flow_run_name: str | None = None
    is_full_refresh: bool = False
    status: str = "failed"  # until `succeeded()`
    error: str | None = None
    source: str | None = None
    partitions_total: int | None = None
    partitions_changed: int | None = None
    warnings: int = 0
    errors: int = 0
    partition_errors: dict[str | None, str] = field(default_factory=dict)  # key (None: the run) -> message
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    phases: list[Phase] = field(default_factory=list)
    _clock_start: float = field(default_factory=time.perf_counter)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Time a phase; its status is `completed` or `failed` (the exception propagates)."""
        phase = Phase(name, datetime.now(UTC))
        self.phases.append(phase)
        start = time.perf_counter()
        progress.info("%s ...", name)
        try:
            yield phase
            phase.status = "completed"
        except BaseException:
            phase.status = "failed"
            raise
        finally:
            phase.duration_seconds = round(time.perf_counter() - start, 3)
            phase.peak_rss_mb = round(peak_rss_mb(), 1)
            progress.info("%s %s in %.1f s (%s records, peak %.0f MB)", name, phase.status,
                          phase.duration_seconds, f"{phase.records:,}", phase.peak_rss_mb)

    def records(self, name: str) -> int:
        """Records counted by the phases named `name`."""
        return sum(p.records for p in self.phases if p.phase == name)

    def collected(self, result: CollectResult) -> None:
        """Take the source and partition counts from collect's result."""
        self.source = result.source
        self.partitions_total = len(result.partitions)
        self.partitions_changed = len(result.changed)

    def succeeded(self) -> None:
        """Mark the run completed."""
        self.status, self.error = "completed", None

    def failed(self, error: BaseException, status: str = "failed") -> None:
        """`status` is `failed`, or `refused` for a run that never started its phases."""
        self.status = status
        self.error = stopped_by_signal(error, self.phases) or f"{type(error).__name__}: {error}"
        self.partition_errors.setdefault(None, self.error)

    def phase_rows(self) -> list[dict[str, Any]]:
        """Every phase of the run as pipeline_run_phases rows."""
        return [phase.as_row() for phase in self.phases]

    def summary(self) -> dict[str, Any]:
        """The run's row of `pipeline_runs`."""
        return {
            "run_id": self.run_id,
            "flow_run_name": self.flow_run_name,
            "status": self.status,
            "error": self.error,
            "source": self.source,
            "is_full_refresh": self.is_full_refresh,
            "partitions_total": self.partitions_total,
            "partitions_changed": self.partitions_changed,
            "warnings": self.warnings,
            "errors": self.errors,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC),
            "duration_seconds": round(time.perf_counter() - self._clock_start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "records_collected": self.records("collect"),
            "records_processed": self.records("process"),
            "records_loaded": self.records("load"),
        }
