"""Run bookkeeping: each phase's wall time, records and the process's peak memory so far."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (ru_maxrss: KiB on Linux, B on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Phase:
    phase: str
    started_at: datetime
    duration_seconds: float = 0.0
    records: int = 0
    peak_rss_mb: float = 0.0
    status: str = "running"

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunTracker:
    run_id: str
    flow_run_name: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    phases: list[Phase] = field(default_factory=list)
    _clock_start: float = field(default_factory=time.perf_counter)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Time a phase; its status is `completed` or `failed` (the exception propagates)."""
        phase = Phase(name, datetime.now(timezone.utc))
        self.phases.append(phase)
        start = time.perf_counter()
        try:
            yield phase
            phase.status = "completed"
        except BaseException:
            phase.status = "failed"
            raise
        finally:
            phase.duration_seconds = round(time.perf_counter() - start, 3)
            phase.peak_rss_mb = round(peak_rss_mb(), 1)

    def records(self, name: str) -> int:
        return sum(p.records for p in self.phases if p.phase == name)

    def summary(self, **fields: Any) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "flow_run_name": self.flow_run_name,
            "started_at": self.started_at,
            "finished_at": datetime.now(timezone.utc),
            "duration_seconds": round(time.perf_counter() - self._clock_start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "records_collected": self.records("collect"),
            "records_processed": self.records("process"),
            "records_loaded": self.records("load"),
            **fields,
        }
