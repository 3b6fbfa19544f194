"""Beyond one machine: the process phase on a Dask cluster builds the warehouse the threads build;
on a PostgreSQL-backed Prefect server, two workers share runs of two deployments with one writer."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
from prefect.client.orchestration import get_client

from flows import ncaa_pipeline
from flows.runners import task_runner_for
from gridiron.config import ConfigError, RunnerSettings, load_config
from gridiron.storage import connect, content_checksums
from gridiron.tables import PARTITION_TABLES
from gridiron.testing.servers import PREFECT, PostgresServer, PrefectServer, Worker, postgres_missing, wait_for
from gridiron.testing.snapshots import SMALL, copy_snapshot
from tests.helpers import REPO, write_config

# what collect and process decide; the train marts carry the model version (a timestamp)
BUILT = sorted(PARTITION_TABLES) + ["game_features", "raw_payloads"]


def ran_on(api_url: str, run_ids: list[str]) -> dict[str, list[str]]:
    """Flow run id -> the workers that executed it, from the workers' own events."""
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


def test_the_thread_runner_is_bounded_by_default_and_a_thread_run_never_imports_dask():
    import os
    import subprocess
    import sys

    assert task_runner_for(RunnerSettings())._max_workers == (os.cpu_count() or 1) + 2  # Prefect's own: unbounded
    probe = ("import sys; from flows.runners import task_runner_for; from gridiron.config import RunnerSettings; "
             "task_runner_for(RunnerSettings()); print('dask' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def run_windows(home) -> list[tuple]:
    """Each run's (first phase start, last phase end, run name): when it worked on the home."""
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        return con.execute(
            "SELECT min(p.started_at), max(p.started_at + to_seconds(p.duration_seconds)), any_value(r.flow_run_name) "
            "FROM pipeline_run_phases p JOIN pipeline_runs r USING (run_id) GROUP BY run_id ORDER BY 1").fetchall()


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))
def test_on_a_postgresql_server_two_workers_share_a_backfill_and_a_scheduled_run_with_one_writer(tmp_path):
    """The topology of the README: a Prefect server on PostgreSQL, `gridiron deploy`, two process
    workers in working directories of their own (one run at a time each), and runs of two
    deployments due together: a scheduled run and a two-chunk backfill. Both workers run some, the
    runs never work on the warehouse at the same time, and the end state equals one full run."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    snapshot = copy_snapshot(tmp_path / "snapshot", SMALL)

    def config(name):
        return write_config(tmp_path / f"{name}.yaml", source={"snapshot_dir": str(snapshot)},
                            storage={"home": str(tmp_path / name)})

    full = ncaa_pipeline(config_path=str(config("full")))
    pooled = config("pool")
    with PostgresServer() as postgres, PrefectServer(tmp_path / "prefect", database_url=postgres.url) as server:
        env = {**os.environ, **server.env, "GRIDIRON_CONFIG": str(pooled)}
        deployed = subprocess.run([sys.executable, "-m", "gridiron", "deploy"], capture_output=True, text=True,
                                  env=env, cwd=REPO, timeout=300)
        assert deployed.returncode == 0, deployed.stderr
        assert "concurrency limit gridiron-warehouse: created (1 slot: one warehouse writer)" in deployed.stdout
        assert "ncaa-pipeline/backfill: created, no schedule (runs on demand)" in deployed.stdout
        logs = []
        with contextlib.ExitStack() as workers:
            for name in ("a", "b"):
                (tmp_path / f"worker-{name}").mkdir()
                logs.append(tmp_path / f"worker-{name}" / "worker.log")
                workers.enter_context(Worker(server, "gridiron-pool", logs[-1], cwd=tmp_path / f"worker-{name}",
                                             command=[PREFECT, "worker", "start", "--pool", "gridiron-pool",
                                                      "--type", "process", "--name", f"worker-{name}",
                                                      "--limit", "1"]))
            for log in logs:
                wait_for(lambda log=log: "started!" in log.read_text(), 90, f"the worker of {log}")
            with temporary_settings({PREFECT_API_URL: server.url}):
                scheduled = run_deployment("ncaa-pipeline/scheduled", timeout=0, as_subflow=False,
                                           flow_run_name="scheduled-now")
            done = subprocess.run([sys.executable, "-m", "gridiron", "backfill", "--from", "2022", "--to", "2023",
                                   "--chunk", "1", "--wait"], capture_output=True, text=True, env=env, cwd=REPO,
                                  timeout=900)
            assert done.returncode == 0, done.stdout + done.stderr + "".join(log.read_text()[-3000:] for log in logs)
            with temporary_settings({PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
                state = wait_for(lambda: (s := client.read_flow_run(scheduled.id).state).is_final() and s, 600,
                                 "the scheduled run's end")
            assert state.is_completed(), state
            lines = done.stdout.splitlines()
            assert [line.split(":")[0] for line in lines[:2]] == ["backfill 2022", "backfill 2023"]
            assert sorted(lines[2:]) == ["backfill 2022: Completed", "backfill 2023: Completed"]
            run_ids = [line.split("(")[1].split(")")[0] for line in lines[:2]] + [str(scheduled.id)]
            # a worker says it executed a run once the run's process has exited, shortly after the
            # run's final state: read the events while the workers still live to send them
            taken = wait_for(lambda: len(t := ran_on(server.url, run_ids)) == len(run_ids) and t, 120,
                             "the workers' executed-flow-run events")
        assert all(len(w) == 1 for w in taken.values()), taken
        # one run at a time per worker, so while one worker held a run the other took the next
        assert sorted({w[0] for w in taken.values()}) == ["worker-a", "worker-b"], taken
        # the server kept its state in PostgreSQL, not in a SQLite file of its home
        assert postgres.query("SELECT string_agg(name || ' ' || state_name, ', ' ORDER BY name) FROM flow_run "
                              "WHERE parent_task_run_id IS NULL AND state_type <> 'SCHEDULED'") == (
            "backfill-2022 Completed, backfill-2023 Completed, scheduled-now Completed")
        assert not (tmp_path / "prefect" / "prefect.db").exists()

    assert built(tmp_path / "pool") == built(tmp_path / "full")
    windows = run_windows(tmp_path / "pool")
    assert sorted(w[2] for w in windows) == ["backfill-2022", "backfill-2023", "scheduled-now"]
    assert all(earlier[1] <= later[0] for earlier, later in zip(windows, windows[1:])), windows  # one writer
    waits = [line for log in (tmp_path / "pool" / "logs").glob("*.log") for line in log.read_text().splitlines()
             if "for the gridiron-warehouse slot" in line]
    print("runs by worker:", taken, "windows:", windows, "waits:", waits)  # the pool's choice, the clock's
    assert full.rows_by_table["games"] == 3705 + 3734  # the two seasons of SMALL, as the pool built them


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_run_waits_for_the_warehouse_slot_and_gives_up_after_max_pipeline_duration(tmp_path, monkeypatch):
    """What `gridiron deploy`'s limit does to a run whose warehouse another run is writing: it
    waits, then runs when the slot comes free; past max_pipeline_duration (and past the time a dead
    holder's lease takes to lapse, shortened here) it stops, naming the limit, before any API call."""
    import threading

    from prefect.concurrency.sync import concurrency

    from flows import writer
    from flows.writer import WAREHOUSE_LIMIT, ensure_warehouse_limit
    from gridiron.storage import RunInProgress

    snapshot = copy_snapshot(tmp_path / "snapshot", {"games": [2023], "teams_fbs": [2023]})
    path = write_config(tmp_path / "c.yaml", start_year=2023, source={"snapshot_dir": str(snapshot)},
                        storage={"home": str(tmp_path / "home")}, max_pipeline_duration=10, model={"enabled": False})
    ensure_warehouse_limit()  # made here, or by test_deploy's deploy earlier on this server
    monkeypatch.setattr(writer, "STALE_SLOT_SECONDS", 0)
    try:
        with concurrency(WAREHOUSE_LIMIT, occupy=1):  # another run holds the warehouse
            with pytest.raises(RunInProgress, match=r"waited 10 s \(max_pipeline_duration, at least 0 s\) for the "
                                                    r"gridiron-warehouse concurrency slot, held by .*stopped before any API call"):
                ncaa_pipeline(config_path=str(path))
        assert not (tmp_path / "home" / "staging").exists()  # it fetched and staged nothing

        held, release = threading.Event(), threading.Event()

        def other_run():
            with concurrency(WAREHOUSE_LIMIT, occupy=1):
                held.set()
                release.wait(30)

        other = threading.Thread(target=other_run)
        other.start()
        held.wait(30)
        threading.Timer(3, release.set).start()  # the other run ends 3 s after this one starts
        # the waiting run asks again when the server says (Retry-After, up to 30 s): give it time
        patient = write_config(tmp_path / "p.yaml", start_year=2023, source={"snapshot_dir": str(snapshot)},
                               storage={"home": str(tmp_path / "home")}, max_pipeline_duration=300,
                               model={"enabled": False})
        assert ncaa_pipeline(config_path=str(patient)).rows_by_table["games"] == 3734  # 2023's games, all loaded
        other.join(30)
        log = next((tmp_path / "home" / "logs").glob("*.log")).read_text()
        assert "for the gridiron-warehouse slot (another run was writing the warehouse)" in log
    finally:
        with get_client(sync_client=True) as client:  # the other flow tests of this server run without it
            client.delete_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
