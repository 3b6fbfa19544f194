"""What the dashboard reads: the warehouse's operations and analytics views, the live state of
runs from the Prefect API, and the machine. Nothing here holds the warehouse: each read opens it
read-only for the moment of its queries and gives up at once when a run holds it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from gridiron import clock
from gridiron.config import PipelineConfig
from gridiron.storage import WarehouseBusy, connect, list_backups, monitor_frames

PHASES = ("collect", "process", "train", "load", "validate", "backup")
PIPELINE_FLOW, SCHEDULED = "ncaa-pipeline", "ncaa-pipeline/scheduled"
READ_WAIT_SECONDS = 0.5  # a run holding the file is not waited for: the last figures stay up


@dataclass
class WarehouseView:
    """What the dashboard read of the warehouse: its frames and when, or why it could not."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    read_at: datetime | None = None
    problem: str | None = None  # why it could not be read now (no warehouse yet, or busy)
    busy: bool = False  # a run holds the file: worth trying again soon

    @property
    def has_runs(self) -> bool:
        """Whether any run is recorded."""
        return not self.frames.get("runs", pl.DataFrame()).is_empty()


def read_warehouse(config: PipelineConfig) -> WarehouseView:
    """The dashboard's frames read from the warehouse, read-only; busy when a run holds the file."""
    path = config.warehouse_path
    if not path.exists():
        return WarehouseView(problem=f"no warehouse at {path} yet: run `gridiron run` (or start the schedule)")
    try:
        with connect(path, read_only=True, wait_seconds=READ_WAIT_SECONDS) as con:
            return WarehouseView(frames=monitor_frames(con, clock.now()), read_at=datetime.now(UTC))
    except WarehouseBusy:
        return WarehouseView(problem="the warehouse is busy (a run is writing it)", busy=True)
    except Exception as error:  # noqa: BLE001 - shown on the page, the app goes on
        return WarehouseView(problem=f"{path} does not answer: {str(error).splitlines()[0]}")


@dataclass
class LiveRun:
    """A flow run the Prefect API reports as running, with its phase and how long it has run."""

    name: str
    run_id: str
    started_at: datetime | None
    phase: str | None = None
    tasks_done: int = 0
    tasks_total: int = 0


@dataclass
class PrefectView:
    """What the dashboard read of the Prefect API: the live runs, the last run's state, the next
    scheduled run, or why it could not."""

    api_url: str | None
    problem: str | None = None
    running: list[LiveRun] = field(default_factory=list)
    last_state: str | None = None
    last_name: str | None = None
    next_scheduled: datetime | None = None

    def run_link(self, run_id: str) -> str | None:
        """The run's page in the Prefect UI (the API URL without /api)."""
        if not self.api_url:
            return None
        ui = os.environ.get("PREFECT_UI_URL") or self.api_url.removesuffix("/").removesuffix("/api")
        return f"{ui}/runs/flow-run/{run_id}"


def read_prefect(api_url: str | None) -> PrefectView:
    """Running pipeline runs with their current phase and task progress, the last run's state and
    the next scheduled run, from the Prefect API (`problem` says why not, when it cannot)."""
    if not api_url:
        return PrefectView(None, problem="PREFECT_API_URL is not set: live run state needs a running Prefect server")
    try:
        return _read_prefect(api_url)
    except Exception as error:  # noqa: BLE001 - shown on the page
        return PrefectView(api_url, problem=f"the Prefect API at {api_url} does not answer: {str(error).splitlines()[0][:160]}")


def _read_prefect(api_url: str) -> PrefectView:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    view = PrefectView(api_url)
    with get_client(sync_client=True) as client:
        def runs(names, states=None, limit=20, sort=FlowRunSort.START_TIME_DESC, deployment=None):
            state = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))) if states else None
            return client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(names))), flow_run_filter=state,
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])) if deployment else None,
                sort=sort, limit=limit)

        running = runs([PIPELINE_FLOW], [StateType.RUNNING])
        phases = runs(PHASES, [StateType.RUNNING], limit=50)
        for run in running:
            live = LiveRun(run.name, str(run.id), run.start_time)
            current = [p for p in phases if run.start_time and p.start_time and p.start_time >= run.start_time]
            if current:
                phase = current[0]
                live.phase = _flow_name(client, phase)
                tasks = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[phase.id])))
                live.tasks_total = len(tasks)
                live.tasks_done = sum(1 for t in tasks if t.state and t.state.is_final())
            view.running.append(live)
        running_ids = tuple(sorted(r.run_id for r in view.running))
        cached = _SLOW.get(api_url)
        if cached and cached[0] == running_ids and time.monotonic() - cached[1] < SLOW_SECONDS:
            view.last_state, view.last_name, view.next_scheduled = cached[2]
            return view
        finished = [r for r in runs([PIPELINE_FLOW], limit=10) if r.state and r.state.is_final()]
        if finished:
            view.last_state, view.last_name = finished[0].state.name, finished[0].name
        try:
            deployment = client.read_deployment_by_name(SCHEDULED)
        except Exception:  # noqa: BLE001 - not deployed: no schedule to show
            deployment = None
        if deployment is not None:
            upcoming = runs([PIPELINE_FLOW], [StateType.SCHEDULED], limit=1, deployment=deployment.id,
                            sort=FlowRunSort.EXPECTED_START_TIME_ASC)
            view.next_scheduled = upcoming[0].expected_start_time if upcoming else None
        _SLOW[api_url] = (running_ids, time.monotonic(), (view.last_state, view.last_name, view.next_scheduled))
    return view


_FLOW_NAMES: dict[str, str] = {}
# the last result and the next scheduled run change when a run starts or ends, or a schedule moves:
# asked for again when the running runs change, else every SLOW_SECONDS (fewer requests to a
# Prefect server the pipeline itself is busy with)
SLOW_SECONDS = 15.0
_SLOW: dict[str, tuple] = {}


def _flow_name(client: Any, run: Any) -> str:
    key = str(run.flow_id)
    if key not in _FLOW_NAMES:
        _FLOW_NAMES[key] = client.read_flow(run.flow_id).name
    return _FLOW_NAMES[key]


@dataclass
class MachineView:
    """The machine's CPU, memory and disk use now."""

    cpu: float
    memory: float
    disk: float


def _disk(config: PipelineConfig):
    """Usage of the disk holding GRIDIRON_HOME (the working directory's before it exists)."""
    home = Path(config.home)
    return psutil.disk_usage(str(home if home.exists() else Path.cwd()))


def read_machine(config: PipelineConfig) -> MachineView:
    """CPU, memory and the disk holding GRIDIRON_HOME, now (cheap: read every second)."""
    disk = _disk(config)
    return MachineView(cpu=psutil.cpu_percent(interval=None), memory=psutil.virtual_memory().percent,
                       disk=disk.percent)


@dataclass
class BackupsView:
    """The backups: how many, their size, the newest verified one and their share of the disk."""

    count: int
    size_bytes: int
    disk_total_bytes: int
    newest_verified: str | None

    @property
    def disk_share(self) -> float:
        """The backups' size as a share of the disk."""
        return self.size_bytes / self.disk_total_bytes if self.disk_total_bytes else 0.0


def read_backups(config: PipelineConfig) -> BackupsView:
    """The backups on disk and their share of it (read when the warehouse changed)."""
    backups = list_backups(Path(config.home) / "backups")
    verified = [b for b in backups if b.verified]
    return BackupsView(count=len(backups), size_bytes=sum(b.size_bytes for b in backups),
                       disk_total_bytes=_disk(config).total,
                       newest_verified=verified[-1].name if verified else None)
