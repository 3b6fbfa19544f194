"""`gridiron deploy`: cron from the config, idempotent, says what changed (on a real Prefect server)."""

from __future__ import annotations

import pytest

from gridiron.config import parse_config
from gridiron.schedule import cron_for
from tests.helpers import gridiron


@pytest.mark.parametrize("interval,time,cron", [
    ("daily", "06:00", "0 6 * * *"), ("weekly", "06:00", "0 6 * * 1"),
    ("monthly", "06:00", "0 6 1 * *"), ("daily", "23:45", "45 23 * * *"),
])
def test_cron_for_each_interval(interval, time, cron):
    assert cron_for(interval, time) == cron


def test_deploy_without_a_prefect_server_says_what_to_do(tmp_path):
    done = gridiron("deploy", env={"GRIDIRON_HOME": str(tmp_path), "PREFECT_API_URL": ""})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "gridiron: deploy failed: deploy needs a running Prefect server: start one (prefect server start) "
        "and set PREFECT_API_URL")


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_deploy_twice_creates_nothing_twice_and_a_new_schedule_moves(tmp_path):
    from prefect.client.orchestration import get_client

    from deployments.setup import deploy

    def deployments(lines):
        return [line for line in lines if line.startswith("ncaa-")]

    config = parse_config({"storage": {"home": str(tmp_path)}})
    first = deploy(config, env={})
    assert deployments(first) == ["ncaa-pipeline/scheduled: created, cron '0 6 * * *' (UTC)",
                                  "ncaa-pipeline/backfill: created, no schedule (runs on demand)",
                                  "ncaa-health-check/scheduled: created, every 300 s"]
    assert "concurrency limit gridiron-warehouse: created (1 slot: one warehouse writer)" in first
    assert "automation gridiron-run-failed: created, disabled (enable_notifications is false)" in first
    again = deploy(config, env={})
    assert deployments(again) == ["ncaa-pipeline/scheduled: unchanged, cron '0 6 * * *' (UTC)",
                                  "ncaa-pipeline/backfill: unchanged, no schedule (runs on demand)",
                                  "ncaa-health-check/scheduled: unchanged, every 300 s"]
    assert all(": exists" in line or ": unchanged" in line for line in again)
    weekly = parse_config({"storage": {"home": str(tmp_path)}, "schedule_interval": "weekly", "schedule_time": "07:30"})
    assert deployments(deploy(weekly, env={}))[0] == (
        "ncaa-pipeline/scheduled: schedule changed from cron '0 6 * * *' (UTC) to cron '30 7 * * 1' (UTC)")
    elsewhere = weekly.model_copy(update={"storage": weekly.storage.model_copy(update={"home": str(tmp_path / "other")})})
    assert deployments(deploy(elsewhere, env={})) == [
        "ncaa-pipeline/scheduled: its runs' environment changed (GRIDIRON_HOME, PREFECT_RESULTS_LOCAL_STORAGE_PATH)",
        "ncaa-pipeline/backfill: its runs' environment changed (GRIDIRON_HOME, PREFECT_RESULTS_LOCAL_STORAGE_PATH)",
        "ncaa-health-check/scheduled: its runs' environment changed (GRIDIRON_HOME, PREFECT_RESULTS_LOCAL_STORAGE_PATH)"]
    with get_client(sync_client=True) as client:
        pools = [p.name for p in client.read_work_pools() if p.name == "gridiron-pool"]
        pipeline = client.read_deployment_by_name("ncaa-pipeline/scheduled")
        backfill = client.read_deployment_by_name("ncaa-pipeline/backfill")
        deployments = [d for d in client.read_deployments() if d.name == "scheduled"]
    assert pools == ["gridiron-pool"] and len(deployments) == 2
    assert [s.schedule.cron for s in pipeline.schedules] == ["30 7 * * 1"]
    assert pipeline.global_concurrency_limit.limit == 1  # one warehouse writer at a time
    assert pipeline.concurrency_options.collision_strategy == "ENQUEUE"
    assert pipeline.job_variables["env"]["GRIDIRON_HOME"] == str(tmp_path / "other")
    assert backfill.schedules == [] and backfill.global_concurrency_limit.limit == 1
