"""Health tasks: read running pipeline runs from the Prefect API, run the checks, report them."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from gridiron.config import PipelineConfig
from gridiron.health import Check, record_checks, run_checks

UNHEALTHY_EVENT = "gridiron.health.unhealthy"


def running_pipeline_runs() -> list[tuple[str, datetime, str]]:
    """(name, start, id) of every `ncaa-pipeline` flow run the Prefect API reports Running."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["ncaa-pipeline"])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))),
        )
    return [(run.name, run.start_time, str(run.id)) for run in runs if run.start_time]


@task(name="run-health-checks", cache_policy=NO_CACHE)
def check_health(config: PipelineConfig, prefect_api_url: str | None) -> list[Check]:
    return run_checks(config, prefect_api_url=prefect_api_url, running=running_pipeline_runs())


@task(name="report-health", cache_policy=NO_CACHE)
def report_health(config: PipelineConfig, checks: list[Check]) -> None:
    record_checks(config, checks)
    create_table_artifact(key="gridiron-health", table=[c.as_row() for c in checks],
                          description="gridiron health checks")
    failing = [c for c in checks if not c.healthy]
    if failing:
        emit_event(
            event=UNHEALTHY_EVENT,
            resource={"prefect.resource.id": "gridiron.health", "gridiron.checks": ",".join(c.name for c in failing)},
            payload={"failing": [c.as_row() for c in failing]},
        )
