"""`gridiron deploy`: the work pool, the warehouse's concurrency limit, the blocks, the deployments
(the scheduled pipeline, its backfill twin and the health check) and the automations, idempotently.

Reads what exists first and says what it changed: a second run with the same config changes
nothing; an edited `schedule_interval` / `schedule_time` / `health_check_interval` moves the
schedules, edited recipients or limits update the blocks and automations. Needs a Prefect API
(`PREFECT_API_URL`): a temporary server would vanish with the command.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Interval

from blocks.register import register_blocks
from deployments.automations import apply_automations
from flows.writer import ensure_warehouse_limit
from gridiron.config import PipelineConfig
from gridiron.schedule import cron_for

WORK_POOL = "gridiron-pool"
PROJECT = Path(__file__).resolve().parents[1]


def _describe(schedule) -> str:
    if isinstance(schedule, CronSchedule):
        return f"cron '{schedule.cron}' ({schedule.timezone})"
    if isinstance(schedule, IntervalSchedule):
        return f"every {int(schedule.interval.total_seconds())} s"
    return str(schedule)


def ensure_work_pool(name: str = WORK_POOL) -> str:
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return f"work pool {name}: exists"
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return f"work pool {name}: created (process)"


def _current(full_name: str) -> tuple[list[str], dict[str, str]] | None:
    """The deployment's active schedules (described) and its runs' environment; None if absent."""
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None
        schedules = sorted(_describe(s.schedule) for s in deployment.schedules if s.active)
        return schedules, dict((deployment.job_variables or {}).get("env") or {})


def deploy(config: PipelineConfig, config_path: str | None = None,
           env: Mapping[str, str] | None = None) -> list[str]:
    """Create or update the work pool, blocks, deployments and automations; one line per thing."""
    job_env = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "gridiron",
        "GRIDIRON_HOME": str(config.home),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(config.home / "results"),
    }
    if config_path:
        job_env["GRIDIRON_CONFIG"] = str(Path(config_path).resolve())
    report = [ensure_work_pool(), ensure_warehouse_limit()]
    channels = register_blocks(config, os.environ if env is None else env)
    report += channels.report
    one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    wanted = {
        "ncaa-pipeline/scheduled": ("flows/pipeline.py:ncaa_pipeline",
                                    Cron(cron_for(config.schedule_interval, config.schedule_time), timezone="UTC"),
                                    one_at_a_time),
        # `gridiron backfill`'s runs: no schedule of its own; its runs queue behind each other here
        # and behind any other pipeline run at the warehouse's concurrency limit (flows.writer)
        "ncaa-pipeline/backfill": ("flows/pipeline.py:ncaa_pipeline", None, one_at_a_time),
        "ncaa-health-check/scheduled": ("flows/health.py:health_check",
                                        Interval(config.health_check_interval), None),
    }
    for full_name, (entrypoint, schedule, limit) in wanted.items():
        before = _current(full_name)
        flow = Flow.from_source(source=str(PROJECT), entrypoint=entrypoint)
        with contextlib.redirect_stdout(io.StringIO()):  # Prefect prints its own table per call
            flow.deploy(
                name=full_name.split("/")[1], work_pool_name=WORK_POOL, schedules=[schedule] if schedule else [],
                concurrency_limit=limit, job_variables={"env": job_env}, tags=["gridiron"],
                build=False, push=False, print_next_steps=False, ignore_warnings=True,
            )
        after, after_env = _current(full_name)
        now = ", ".join(after) or "no schedule (runs on demand)"
        if before is None:
            report.append(f"{full_name}: created, {now}")
            continue
        changes = []
        if before[0] != after:
            changes.append(f"schedule changed from {', '.join(before[0]) or 'none'} to {now}")
        moved = sorted(k for k in before[1].keys() | after_env.keys() if before[1].get(k) != after_env.get(k))
        if moved:
            changes.append(f"its runs' environment changed ({', '.join(moved)})")
        report.append(f"{full_name}: {'; '.join(changes) if changes else 'unchanged, ' + now}")
    return report + apply_automations(config, channels)
