"""Health checks: the machine, the warehouse, the services, and how the pipeline has been running.

Each check returns a `Check` (name, healthy or not, one line of detail, the measured value and its
threshold). `run_checks` runs them all; none raises: a check that cannot run is itself unhealthy.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil

from gridiron.config import PipelineConfig
from gridiron.planning import SCHEDULE_DAYS
from gridiron.storage import (
    connect,
    content_checksums,
    damage_of,
    damaged_warehouse,
    existing_parent,
    lock_state,
    migrate,
    record_health,
    schema_version,
)


@dataclass
class Check:
    """One health check: its name, whether it passed, what it found, and the value against its threshold."""

    name: str
    healthy: bool
    detail: str
    value: float | None = None
    threshold: float | None = None

    def as_row(self) -> dict[str, Any]:
        """The check as a health_checks row."""
        return asdict(self)


def system_checks(config: PipelineConfig) -> list[Check]:
    """CPU, memory and disk use against the configured limits."""
    limits = config.health
    cpu = psutil.cpu_percent(interval=0.5)
    memory = psutil.virtual_memory().percent
    disk = psutil.disk_usage(str(existing_parent(config.home))).percent
    return [
        Check("cpu", cpu <= limits.max_cpu_percent, f"CPU {cpu:.0f}% (limit {limits.max_cpu_percent:g}%)",
              cpu, limits.max_cpu_percent),
        Check("memory", memory <= limits.max_memory_percent,
              f"memory {memory:.0f}% used (limit {limits.max_memory_percent:g}%)", memory, limits.max_memory_percent),
        Check("disk", disk <= limits.max_disk_percent,
              f"disk holding {config.home} {disk:.0f}% full (limit {limits.max_disk_percent:g}%)",
              disk, limits.max_disk_percent),
    ]


def home_check(config: PipelineConfig) -> Check:
    """Whether runs can write the home (staging, the warehouse, logs): a file is made there, or in
    the nearest folder above it that exists, and removed at once."""
    where = existing_parent(config.home)
    try:
        with tempfile.NamedTemporaryFile(dir=where, prefix=".gridiron-health-"):
            pass
    except OSError as error:
        return Check("home", False, f"{where} cannot be written ({error.strerror or error}): every run would fail there")
    return Check("home", True, f"{where} is writable")


def warehouse_check(config: PipelineConfig) -> Check:
    """Whether the warehouse file opens and every row of every table reads back: reading them all
    makes DuckDB check the checksum of every block in use, so a damaged file is found here."""
    path = config.warehouse_path
    if not path.exists():
        return Check("warehouse", False, f"no warehouse at {path}: run 'gridiron run'")
    try:
        with connect(path, read_only=True) as con:
            version = schema_version(con)
            sums = content_checksums(con)
    except Exception as error:  # noqa: BLE001 - any failure to answer is the finding
        if damage_of(error) is not None:
            return Check("warehouse", False, damaged_warehouse(path, config.home / "backups", error))
        return Check("warehouse", False, f"{path} does not answer: {str(error).splitlines()[0]}")
    games = int(sums.get("games", "0:").split(":")[0])
    return Check("warehouse", True, f"{path} answers, every table read whole (schema {version}, {games} games)", games)


def cfbd_check(config: PipelineConfig) -> Check:
    """Whether the CFBD API answers with the key (unmetered /info), when runs use the API."""
    if not config.uses_api:
        return Check("cfbd_api", True, "source is the snapshot: the API is not needed")
    from gridiron.sources import SourceError, make_client

    client = make_client(config)
    try:
        info = client.info() or {}
    except SourceError as error:
        return Check("cfbd_api", False, f"CFBD API does not answer: {error}")
    finally:
        client.close()
    remaining = info.get("remainingCalls")
    healthy = remaining is None or remaining > config.source.min_calls_reserve
    return Check("cfbd_api", healthy, f"CFBD API answers; {remaining} calls left this month "
                 f"(reserve {config.source.min_calls_reserve})", remaining, config.source.min_calls_reserve)


def prefect_check(api_url: str | None) -> Check:
    """Whether the Prefect API at PREFECT_API_URL answers its health route."""
    if not api_url:
        return Check("prefect_api", True, "no PREFECT_API_URL: runs start a temporary Prefect server")
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as error:
        return Check("prefect_api", False, f"Prefect API at {api_url} does not answer: {error}")
    return Check("prefect_api", True, f"Prefect API at {api_url} answers")


def run_history_checks(config: PipelineConfig, now: datetime | None = None) -> list[Check]:
    """Freshness of the last successful run against the schedule, and duration degradation."""
    now = now or datetime.now(UTC)
    if not config.warehouse_path.exists():
        return []
    with connect(config.warehouse_path, read_only=True) as con:
        if schema_version(con) == 0:
            return []
        last_ok = con.execute(
            "SELECT max(finished_at) FROM pipeline_runs WHERE status = 'completed'").fetchall()[0][0]
        durations = [row[0] for row in con.execute(
            "SELECT duration_seconds FROM pipeline_runs WHERE status = 'completed' AND duration_seconds IS NOT NULL "
            "ORDER BY started_at DESC LIMIT 11").fetchall()]
    interval = timedelta(days=SCHEDULE_DAYS[config.schedule_interval])
    allowed = 1.5 * interval
    checks = []
    if last_ok is None:
        checks.append(Check("last_success", False, "no successful run recorded"))
    else:
        age = now - last_ok
        checks.append(Check(
            "last_success", age <= allowed,
            f"last successful run {age.total_seconds() / 3600:.1f} h ago (schedule {config.schedule_interval}, "
            f"allowed {allowed.total_seconds() / 3600:.0f} h)", age.total_seconds(), allowed.total_seconds()))
    if len(durations) >= 4:
        latest, median = durations[0], statistics.median(durations[1:])
        limit = max(2 * median, median + 30)
        checks.append(Check("duration", latest <= limit,
                            f"last run {latest:.0f} s against a median of {median:.0f} s (limit {limit:.0f} s)",
                            latest, limit))
    return checks


def stuck_runs_check(config: PipelineConfig, running: list[tuple], now: datetime | None = None) -> Check:
    """`running`: (flow run name, start time[, flow run id]) of pipeline runs the Prefect API
    reports Running. A run is stuck past `max_pipeline_duration`, or at once when it is the last
    run to take this home's run lock and no live process holds the lock any more (its process was
    killed: Prefect keeps reporting it Running)."""
    now = now or datetime.now(UTC)
    record, held = lock_state(config.home)
    gone_id = (record or {}).get("run_id") if not held else None
    gone = [name for name, _start, *rest in running if gone_id and rest and str(rest[0]) == gone_id]
    if gone:
        return Check("stuck_runs", False, f"left Running by a process that is gone (no live process holds "
                     f"{config.home / 'gridiron.lock'}): {', '.join(gone)}; start a new run with 'gridiron run'",
                     len(gone), 0)
    limit = timedelta(seconds=config.max_pipeline_duration)
    stuck = [(name, now - start) for name, start, *_ in running if now - start > limit]
    if stuck:
        names = ", ".join(f"{name} ({age.total_seconds() / 60:.0f} min)" for name, age in stuck)
        return Check("stuck_runs", False, f"running longer than max_pipeline_duration "
                     f"({config.max_pipeline_duration} s): {names}", len(stuck), 0)
    return Check("stuck_runs", True, f"no run longer than max_pipeline_duration ({config.max_pipeline_duration} s)", 0, 0)


def run_checks(config: PipelineConfig, *, prefect_api_url: str | None,
               running: list[tuple[str, datetime]] | None = None) -> list[Check]:
    """Every health check: the machine, the warehouse, the CFBD and Prefect APIs, the recent runs, and
    (given `running`) runs going for longer than max_pipeline_duration."""
    checks = system_checks(config)
    warehouse = warehouse_check(config)
    checks += [home_check(config), warehouse, cfbd_check(config), prefect_check(prefect_api_url)]
    if warehouse.healthy or not config.warehouse_path.exists():  # the run history is read from it
        checks.extend(run_history_checks(config))
    if running is not None:
        checks.append(stuck_runs_check(config, running))
    return checks


def record_checks(config: PipelineConfig, checks: list[Check], at: datetime | None = None) -> bool:
    """Keep the checks in the warehouse's health history (the dashboard draws it); False when
    there is no warehouse yet (none is created for this), or when the checks found the home
    unwritable or the warehouse unreadable (a damaged or read-only file is not written to)."""
    if not config.warehouse_path.exists() or any(c.name in ("home", "warehouse") and not c.healthy for c in checks):
        return False
    with connect(config.warehouse_path) as con:
        migrate(con)
        record_health(con, [c.as_row() for c in checks], at or datetime.now(UTC))
    return True
