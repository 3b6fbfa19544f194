"""Pins of the Prefect 3 behaviour the pipeline relies on (it changed between releases)."""

from __future__ import annotations

import time
from datetime import UTC

import pytest
from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from gridiron.sources.errors import AuthError, ServerError
from tasks.collect import retry_if_recoverable
from tasks.process import STAGE_CACHE_POLICY, stage_partition_files

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]


def test_the_fetch_task_retries_with_exponential_backoff_and_prefect_jitters_each_delay_within_bounds():
    """The options collect gives its fetch task, and what Prefect does with them: each retry waits
    in AwaitingRetry until `delay x (1 +- jitter)` of its own nominal delay (read from the server's
    states, so no clock or scheduler enters the test)."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.math import lower_clamp_multiple

    from tasks.collect import retry_options

    assert retry_options(3, 0.4) == {"retries": 3, "retry_delay_seconds": [0.4, 0.8, 1.6], "retry_jitter_factor": 0.5}
    assert retry_options(2, 0) == {"retries": 2, "retry_delay_seconds": [0, 0], "retry_jitter_factor": None}

    attempts: list[int] = []

    @task(**retry_options(3, 0.2))
    def flaky():
        attempts.append(1)
        if len(attempts) < 4:
            raise ServerError("503")
        return "ok"

    @flow
    def run():
        return flaky(return_state=True)

    state = run()
    assert state.result() == "ok" and len(attempts) == 4
    with get_client(sync_client=True) as client:
        states = client.read_task_run_states(state.state_details.task_run_id)
    waits = [(s.state_details.scheduled_time - s.timestamp).total_seconds() for s in states if s.name == "AwaitingRetry"]
    assert len(waits) == 3
    for wait, nominal in zip(waits, [0.2, 0.4, 0.8]):
        assert nominal * lower_clamp_multiple(1.5) - 0.01 <= wait <= nominal * 1.5 + 0.01, (wait, nominal)


def test_retry_condition_retries_recoverable_errors_only():
    calls = {"auth": 0, "server": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_if_recoverable)
    def fails_with(kind: str):
        calls[kind] += 1
        raise AuthError("HTTP 401") if kind == "auth" else ServerError("HTTP 503")

    @flow
    def run(kind: str) -> bool:
        return fails_with(kind, return_state=True).is_failed()

    assert run("auth") and calls["auth"] == 1  # fatal: no retry
    assert run("server") and calls["server"] == 3  # recoverable: both retries used


def test_cache_policy_hits_across_flow_runs_and_is_kept_per_home(tmp_path):
    runs: list[str] = []

    @task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
    def work(key: str) -> str:
        runs.append(key)
        return key.upper()

    @flow
    def run(home: str) -> str:
        return work.with_options(cache_policy=work.cache_policy.configure(key_storage=home))("games/2023")

    assert run(str(tmp_path / "a")) == "GAMES/2023"
    assert run(str(tmp_path / "a")) == "GAMES/2023"
    assert runs == ["games/2023"]  # the second run was a cache hit
    run(str(tmp_path / "b"))
    assert runs == ["games/2023", "games/2023"]  # another home, another cache
    assert any((tmp_path / "a").iterdir())


def test_stage_task_cache_key_covers_its_inputs_and_source():
    assert STAGE_CACHE_POLICY == stage_partition_files.cache_policy
    assert {type(p).__name__ for p in STAGE_CACHE_POLICY.policies} == {"Inputs", "TaskSource"}


def test_only_the_parent_flow_sends_heartbeats_its_subflows_do_not(config_file):
    """Prefect starts a heartbeat thread per flow run (crash detection) and joins it, in 1 s steps,
    when the run ends: about a second per subflow. The pipeline turns it off for its six subflows,
    which run in its own process; the parent's heartbeat still says the process is alive."""
    from datetime import datetime

    import httpx
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows import ncaa_pipeline

    since = datetime.now(UTC).isoformat()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):  # the suite runs without them
        result = ncaa_pipeline(config_path=str(config_file))
    query = {"filter": {"event": {"prefix": ["prefect.flow-run.heartbeat"]}, "occurred": {"since": since}},
             "limit": 50}
    deadline, sources = time.monotonic() + 60, set()
    while time.monotonic() < deadline and not sources:  # events reach the server a moment later
        events = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=query, timeout=10).json()["events"]
        sources = {e["resource"]["prefect.resource.id"] for e in events}
        time.sleep(0.5)
    assert sources == {f"prefect.flow-run.{result.run_id}"}


def test_fan_out_runs_a_task_per_partition_and_one_per_season_of_weeks_and_gives_each_its_outcome():
    """The pattern collect and process share: weekly partitions go one season to a task run, and
    a batch that fails gives its exception to each of its weeks, without raising."""
    from flows.fanout import fan_out, gathered
    from gridiron.sources.base import Partition

    names: list[str] = []

    @task
    def one(key: str) -> str:
        return key.upper()

    @task
    def weeks(keys: list[str], label: str) -> list[str]:
        names.append(label)
        if "2022" in label:
            raise ValueError("a broken season")
        return [k.upper() for k in keys]

    items = [Partition.from_key(k) for k in (
        "games/2023", "games_teams/2023/regular/2", "games_teams/2022/regular/1", "games_teams/2023/regular/1", "teams")]

    @flow
    def run() -> list[tuple[str, object]]:
        runs = fan_out(items, lambda p, _r: one.submit(p.key),
                       lambda label, batch, _r: weeks.submit([p.key for p in batch], label))
        return [(p.key, out) for p, out in gathered(runs)]

    outcomes = run()
    assert [key for key, _ in outcomes] == [
        "games/2023", "teams", "games_teams/2023/regular/2", "games_teams/2023/regular/1", "games_teams/2022/regular/1"]
    assert [out for _, out in outcomes[:4]] == [
        "GAMES/2023", "TEAMS", "GAMES_TEAMS/2023/REGULAR/2", "GAMES_TEAMS/2023/REGULAR/1"]
    assert isinstance(outcomes[4][1], ValueError) and str(outcomes[4][1]) == "a broken season"
    assert sorted(names) == ["games_teams-2022-1-weeks", "games_teams-2023-2-weeks"]
