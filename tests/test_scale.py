"""Beyond one machine: the process phase on a Dask cluster builds the warehouse the threads build."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from flows import ncaa_pipeline
from flows.runners import task_runner_for
from gridiron.config import ConfigError, RunnerSettings, load_config
from gridiron.storage import connect, content_checksums
from gridiron.tables import PARTITION_TABLES
from tests.helpers import REPO, SMALL, copy_snapshot, write_config

# what collect and process decide; the train marts carry the model version (a timestamp)
BUILT = sorted(PARTITION_TABLES) + ["game_features", "raw_payloads"]


def ran_on(api_url: str, run_ids: list[str]) -> dict[str, list[str]]:
    """Flow run id -> the workers that executed it, from the workers' own events."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        events = client.read_events(filter=EventFilter(event=EventNameFilter(
            name=["prefect.worker.executed-flow-run"])), limit=50).events
    taken: dict[str, list[str]] = {}
    for event in events:
        for related in event.related:
            run_id = related.id.removeprefix("prefect.flow-run.")
            if related.role == "flow-run" and run_id in run_ids:
                taken.setdefault(run_id, []).append(event.resource.name)
    return taken


def built(home) -> dict[str, str]:
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        return content_checksums(con, BUILT)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_dask_cluster_of_two_worker_processes_builds_exactly_what_the_threads_build(tmp_path):
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL

    snapshot = copy_snapshot(tmp_path / "snapshot", {"games": [2022, 2023], "lines": [2023], "teams_fbs": [2023],
                                                     "stats_season": [2023], "games_teams": [2022, 2023]})

    def config(name, **runner):
        return write_config(tmp_path / f"{name}.yaml", source={"snapshot_dir": str(snapshot), "box_scores": True},
                            storage={"home": str(tmp_path / name)}, runner=runner)

    threads = ncaa_pipeline(config_path=str(config("threads")))
    # an existing scheduler, as a user's cluster would be: two worker processes on loopback that
    # know the Prefect API only from their environment
    env = {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": os.environ["PREFECT_HOME"],
           "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"]}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env=env) as cluster, Client(cluster) as client:
        dask = ncaa_pipeline(config_path=str(config("dask", kind="dask", address=cluster.scheduler_address)))
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)

    assert dask.rows_by_table == threads.rows_by_table and dask.rows_by_table["game_team_stats"] > 0
    assert built(tmp_path / "dask") == built(tmp_path / "threads")
    # the process phase's tasks (7 partitions, 2 seasons of weeks, their judges) ran on both workers
    assert len(executed) == 2 and all(count > 0 for count in executed.values()), executed
    assert sum(executed.values()) >= 7


def test_the_runner_section_names_its_problems(tmp_path):
    def runner(**values):
        return load_config(write_config(tmp_path / "c.yaml", runner=values), {}).runner

    assert runner() == RunnerSettings(kind="thread", address=None, workers=None)
    assert runner(kind="dask", workers=3).workers == 3
    with pytest.raises(ConfigError, match=r"runner.kind: Input should be 'thread' or 'dask' \(got 'ray'\)"):
        runner(kind="ray")
    with pytest.raises(ConfigError, match="runner.address: must be a Dask scheduler address such as tcp://"):
        runner(kind="dask", address="scheduler:8786")
    with pytest.raises(ConfigError, match=r"runner: address is for kind: dask \(kind is thread\)"):
        runner(address="tcp://127.0.0.1:8786")


def test_a_local_cluster_runner_hands_its_workers_the_prefect_api_of_the_run():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4999/api"}):
        local = task_runner_for(RunnerSettings(kind="dask", workers=3))
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"] is True
    assert local.cluster_kwargs["env"]["PREFECT_API_URL"] == "http://127.0.0.1:4999/api"
    assert task_runner_for(RunnerSettings(kind="dask", address="tcp://127.0.0.1:8786")).address == "tcp://127.0.0.1:8786"
    assert task_runner_for(RunnerSettings(workers=4))._max_workers == 4


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_backfill_through_two_workers_on_the_pool_equals_one_full_run(tmp_path):
    from tests.servers import PREFECT, PrefectServer, Worker, wait_for

    snapshot = copy_snapshot(tmp_path / "snapshot", SMALL)

    def config(name):
        return write_config(tmp_path / f"{name}.yaml", source={"snapshot_dir": str(snapshot)},
                            storage={"home": str(tmp_path / name)})

    full = ncaa_pipeline(config_path=str(config("full")))
    pooled = config("pool")
    with PrefectServer(tmp_path / "prefect") as server:
        env = {**os.environ, **server.env, "GRIDIRON_CONFIG": str(pooled)}
        deployed = subprocess.run([sys.executable, "-m", "gridiron", "deploy"], capture_output=True, text=True,
                                  env=env, cwd=REPO, timeout=300)
        assert deployed.returncode == 0, deployed.stderr
        logs = []
        with contextlib.ExitStack() as workers:
            for name in ("a", "b"):  # two workers, each in a working directory of its own
                (tmp_path / f"worker-{name}").mkdir()
                logs.append(tmp_path / f"worker-{name}" / "worker.log")
                workers.enter_context(Worker(server, "gridiron-pool", logs[-1], cwd=tmp_path / f"worker-{name}",
                                             command=[PREFECT, "worker", "start", "--pool", "gridiron-pool",
                                                      "--type", "process", "--name", f"worker-{name}"]))
            for log in logs:
                wait_for(lambda log=log: "started!" in log.read_text(), 90, f"the worker of {log}")
            done = subprocess.run([sys.executable, "-m", "gridiron", "backfill", "--from", "2022", "--to", "2023",
                                   "--chunk", "1", "--wait"], capture_output=True, text=True, env=env, cwd=REPO,
                                  timeout=900)
            assert done.returncode == 0, done.stdout + done.stderr + "".join(log.read_text()[-3000:] for log in logs)
        lines = done.stdout.splitlines()
        assert [line.split(":")[0] for line in lines[:2]] == ["backfill 2022", "backfill 2023"]
        assert sorted(lines[2:]) == ["backfill 2022: Completed", "backfill 2023: Completed"]
        run_ids = [line.split("(")[1].split(")")[0] for line in lines[:2]]
        taken = wait_for(lambda: len(t := ran_on(server.url, run_ids)) == len(run_ids) and t, 60,
                         "the workers' executed-flow-run events")
        assert sorted(taken) == sorted(run_ids) and all(len(w) == 1 for w in taken.values()), taken
        print("backfill runs by worker:", taken)  # which worker took which run is the pool's choice

    assert built(tmp_path / "pool") == built(tmp_path / "full")
    with connect(tmp_path / "pool" / "gridiron.duckdb", read_only=True) as con:
        windows = con.execute("SELECT started_at, finished_at FROM pipeline_runs ORDER BY started_at").fetchall()
    assert len(windows) == 2 and windows[0][1] <= windows[1][0]  # one writer at a time
    assert full.rows_by_table["games"] > 0
