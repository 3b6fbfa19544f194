"""The `gridiron` command: help, one-line failures with exit codes, run and status."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from cli import main
from tests.helpers import REPO, gridiron, query


def test_help_lists_the_commands():
    done = gridiron("help")
    assert done.returncode == 0
    for command in ("run [--full-refresh]", "status", "CFBD_API_KEY", "GRIDIRON_HOME"):
        assert command in done.stdout


@pytest.mark.parametrize(
    "text,message",
    [
        ("start_year: 2024\nend_year: 2020\n", "start_year (2024) is after end_year (2020)"),
        ("schedule_interval: hourly\n", "schedule_interval: Input should be 'daily', 'weekly' or 'monthly'"),
        ("frobnicate: 1\n", "unknown key 'frobnicate'"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = gridiron("run", env={"GRIDIRON_CONFIG": str(path)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gridiron: config error: ") and message in lines[0]
    assert str(path) in lines[0]


def test_status_without_warehouse_says_so(tmp_path):
    done = gridiron("status", env={"GRIDIRON_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == f"gridiron: status failed: no warehouse at {tmp_path}/gridiron.duckdb yet: run 'gridiron run' first"


def test_an_as_of_time_that_is_not_a_time_stops_the_run_before_it_starts_naming_it(tmp_path):
    done = gridiron("run", env={"GRIDIRON_HOME": str(tmp_path / "home"), "GRIDIRON_AS_OF": "next tuesday"})
    assert done.returncode == 1 and not (tmp_path / "home" / "gridiron.duckdb").exists()
    assert done.stderr.strip().splitlines()[-1] == (
        "gridiron: run failed: GRIDIRON_AS_OF='next tuesday' is not an ISO 8601 time (e.g. 2023-10-16T06:00:00Z); "
        "unset it to run on the wall clock")


def test_unknown_command_is_refused():
    done = gridiron("frobnicate")
    assert done.returncode == 2 and "invalid choice: 'frobnicate'" in done.stderr


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_run_then_status(config_file, capsys):
    assert main(["--config", str(config_file), "run"]) == 0
    out = capsys.readouterr().out
    assert "ncaa-pipeline completed: 7 partitions loaded from snapshot" in out
    assert main(["--config", str(config_file), "status"]) == 0
    out = capsys.readouterr().out
    assert "games                    7439 rows" in out
    assert "seasons 2022-2023 (2)" in out and "completed" in out


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_failed_run_exits_1_with_one_line(config_file, fake_cfbd, monkeypatch, capsys):
    monkeypatch.setenv("CFBD_API_KEY", "wrong")
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    assert main(["--config", str(config_file), "run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gridiron: run failed: CFBD API key is missing or invalid (HTTP 401")


@pytest.fixture
def small_filesystem(tmp_path):
    """A real filesystem of its own (tmpfs on tmp_path/fs) whose size the test sets; skipped where
    this process may not mount one (it needs root)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def resize(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True, capture_output=True)

    try:
        yield mount, resize
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_full_disk_during_a_run_is_said_once_naming_the_filesystem_and_the_room_needed(
        tmp_path, small_snapshot, small_filesystem, capsys):
    """The home's filesystem fills while a changed game loads: no logging tracebacks, one last line
    naming the filesystem and the room a run needs, the warehouse unchanged, and the same run
    completes once there is room."""
    import shutil

    from gridiron.storage import connect, content_checksums
    from tests.helpers import change_score, write_config

    mount, resize = small_filesystem
    home = mount / "home"
    config = write_config(tmp_path / "c.yaml", source={"snapshot_dir": str(small_snapshot)},
                          storage={"home": str(home)}, enable_backup=False)
    assert main(["--config", str(config), "run"]) == 0
    with connect(home / "gridiron.duckdb") as con:
        con.execute("CHECKPOINT")
        before = content_checksums(con)
    capsys.readouterr()
    used = shutil.disk_usage(mount).used
    resize(used + 512 * 1024)  # room for the staged week, not for the load's copy of the warehouse
    change_score(small_snapshot, 401551789, 99)

    assert main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    # a partition whose staged file could not be written says why: no room (polars words it as a Parquet error)
    assert all("No space left on device" in line for line in err.splitlines() if "failed to process" in line)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gridiron: run failed: no space left on the filesystem holding {home} ("), last
    assert "MB free): a run needs about " in last and last.endswith("free space there and run again: nothing stored was changed")
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        assert content_checksums(con) == before

    resize(200 * 1024 * 1024)
    assert main(["--config", str(config), "run"]) == 0
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        assert con.execute("SELECT home_points FROM games WHERE game_id = 401551789").fetchone() == (99,)


def test_health_on_a_read_only_home_is_a_fail_line_not_a_crash(tmp_path, small_filesystem, capsys, monkeypatch):
    from gridiron.storage import connect, migrate

    mount, _ = small_filesystem
    home = mount / "home"
    with connect(home / "gridiron.duckdb") as con:
        migrate(con)
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
    monkeypatch.setenv("GRIDIRON_HOME", str(home))
    assert main(["health"]) == 1
    captured = capsys.readouterr()
    assert f"FAIL home          {home} cannot be written (Read-only file system): every run would fail there" \
        in captured.out.splitlines()
    assert "IO Error" not in captured.err and "Traceback" not in captured.err
    assert captured.err.strip().splitlines()[-1].startswith("gridiron: health failed: ")


def test_backtest_json_reads_the_source_when_the_warehouse_lacks_the_seasons(tmp_path):
    import json

    done = gridiron("backtest", "--season", "2023", "--json", env={"GRIDIRON_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["season"] == 2023 and report["games"] == 792
    steps = [line.split(" done in ")[0] for line in done.stderr.splitlines() if " done in " in line]
    assert steps[0] == "gridiron: backtest: reading the games and lines up to 2023" and len(steps) == 3
    assert re.fullmatch(r"gridiron: backtest: features of [\d,]+ games", steps[1])
    assert steps[2] == "gridiron: backtest: walk-forward over 2023, week by week (model and market variant)"
    assert set(report["model"]) >= {"su_accuracy", "mae", "brier", "log_loss", "ats"}
    assert set(report["baselines"]) >= {"home", "elo", "vegas"} and "market" in report
    assert 0.65 < report["model"]["su_accuracy"] < 0.8  # accuracies are fractions
    stored = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); "
         "print(c.execute(\"select backtest_season, decision from model_runs\").fetchall())",
         str(tmp_path / "gridiron.duckdb")], capture_output=True, text=True)
    assert stored.stdout.strip() == "[(2023, 'backtest only')]"


def test_backtest_of_a_season_nobody_has_is_one_line(tmp_path):
    done = gridiron("backtest", "--season", "2031", env={"GRIDIRON_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "gridiron: backtest failed: season 2031: no games in the warehouse or the source"


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_failed_run_shows_its_phases_and_ends_on_its_one_line_message(tmp_path):
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    done = gridiron("run", env={"CFBD_API_KEY": "k", "CFBD_BASE_URL": "http://127.0.0.1:9",
                                "GRIDIRON_HOME": str(tmp_path), "PREFECT_API_URL": url})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and done.stdout == ""
    assert lines[:2] == [f"gridiron: running ncaa-pipeline on the Prefect API at {url}", "gridiron: collect ..."]
    assert lines[-2].startswith("gridiron: collect failed in ")
    assert lines[-1].startswith("gridiron: run failed: the CFBD API at http://127.0.0.1:9 is unavailable: "
                                "/info does not answer either")
    assert "Traceback" not in done.stderr and "Finished in state" not in done.stderr and len(lines) <= 6
    log = next((tmp_path / "logs").glob("pipeline_*.log")).read_text()
    assert "Traceback" in log and "[fetch-games-2023] Finished in state Failed" in log  # the detail is kept there


@pytest.mark.flow
def test_a_phases_flow_run_records_a_summary_of_its_inputs_so_a_small_parameter_limit_is_never_reached(
        config_file, tmp_path):
    import json

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from gridiron.testing.servers import PrefectServer

    server = PrefectServer(tmp_path / "prefect")
    server.server_env["PREFECT_SERVER_API_MAX_PARAMETER_SIZE"] = "4000"  # collect's whole result is ~30 KB
    with server:
        done = gridiron("--config", str(config_file), "run", env=server.env)
        assert done.returncode == 0, done.stderr[-2000:]
        with temporary_settings({PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
            parameters = {client.read_flow(run.flow_id).name: run.parameters for run in client.read_flow_runs()}
    assert set(parameters) == {"ncaa-pipeline", "collect", "process", "train", "load", "validate", "backup"}
    assert max(len(json.dumps(p)) for p in parameters.values()) < 4000
    collected = parameters["process"]["collected"]
    keys = [key for (key,) in query(config_file, "SELECT partition_key FROM raw_manifest ORDER BY 1")]
    assert collected == {"source": "snapshot", "partitions": len(keys), "changed": {"count": len(keys), "first": keys},
                         "failed": {"count": 0, "first": []}, "not_fetched": {"count": 0, "first": []},
                         "calls_remaining": None}
    assert parameters["load"]["processed"]["loads"] == {"count": len(keys), "first": keys}
    assert parameters["load"]["trained"]["champion"] and parameters["load"]["trained"]["rows"] > 0


@pytest.mark.flow
def test_a_server_refusing_a_phases_inputs_is_named_in_the_last_line_and_nothing_loads(config_file, tmp_path):
    from gridiron.testing.servers import PrefectServer

    server = PrefectServer(tmp_path / "prefect")
    server.server_env["PREFECT_SERVER_API_MAX_PARAMETER_SIZE"] = "300"  # the parent's pass, collect's config not
    with server:
        done = gridiron("--config", str(config_file), "run", env=server.env)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr[-2000:]
    assert last.startswith(f"gridiron: run failed: the Prefect API at {server.url} refused a request (HTTP 422: ")
    assert "Flow run parameters must be less than 300 bytes" in last
    assert last.endswith("raise PREFECT_SERVER_API_MAX_PARAMETER_SIZE on the server")
    assert query(config_file, "SELECT count(*) FROM raw_manifest") == [(0,)]


def test_on_the_temporary_server_the_failure_is_still_the_last_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run([sys.executable, "-m", "gridiron", "run"], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**env, "CFBD_API_KEY": "k", "CFBD_BASE_URL": "http://127.0.0.1:9",
                                         "GRIDIRON_HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines[0].startswith("gridiron: running ncaa-pipeline on a temporary local Prefect server")
    assert lines[-1].startswith("gridiron: run failed: the CFBD API at http://127.0.0.1:9 is unavailable")
    assert "Stopping temporary server" not in done.stderr  # Prefect's at-exit line is not the last word


def _run_on_a_hung_api(tmp_path, api, **extra_env):
    """`gridiron run` without PREFECT_API_URL against `api`, whose /games hangs; returns the process
    once collect is under way, and the temporary Prefect server it started as its child."""
    import psutil

    from gridiron.testing.servers import wait_for
    from tests.helpers import API_KEY, write_config

    config = write_config(tmp_path / "c.yaml", storage={"home": str(tmp_path / "home")},
                          source={"timeout_seconds": 5, "http_max_attempts": 1})
    api.add_fault(__import__("gridiron.testing.fake_cfbd", fromlist=["Fault"]).Fault("/games", "delay", delay=60, times=-1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gridiron", "--config", str(config), "run"], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**env, "CFBD_API_KEY": API_KEY, "CFBD_BASE_URL": api.url, "PREFECT_HOME": str(tmp_path / "prefect"),
             **extra_env})
    wait_for(lambda: api.requests_to("/games"), 240, "the run to call /games (collect under way)")
    servers = [child for child in psutil.Process(process.pid).children()
               if "prefect.server.api.server:create_app" in child.cmdline()]
    assert len(servers) == 1, [child.cmdline() for child in psutil.Process(process.pid).children()]
    return process, servers[0]


def test_the_temporary_prefect_server_is_a_child_process_that_dies_with_the_run(tmp_path, small_snapshot):
    """Without PREFECT_API_URL the run starts Prefect's API as its own child process (not in the
    run's process, which so never imports the server's code), logs it to the home and, when the run
    is killed outright, the server goes with it."""
    import signal

    import psutil

    from gridiron.testing.fake_cfbd import FakeCFBD
    from tests.helpers import API_KEY

    with FakeCFBD(small_snapshot, api_key=API_KEY) as api:
        process, server = _run_on_a_hung_api(tmp_path, api)
        try:
            assert (tmp_path / "home" / "logs" / "prefect-server.log").exists()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            gone, alive = psutil.wait_procs([server], timeout=60)
        finally:
            process.kill()
            process.communicate()
    assert gone and not alive, "the temporary server outlived the run that started it"


def test_losing_the_temporary_server_ends_the_run_and_names_that_server(tmp_path, small_snapshot):
    """The watchdog watches the temporary server as it watches a running one: the server killed
    mid-run ends the run in bounded time, its last line naming the temporary server, not one to
    restart, and nothing is committed."""
    from gridiron.testing.fake_cfbd import FakeCFBD
    from tests.helpers import API_KEY

    with FakeCFBD(small_snapshot, api_key=API_KEY) as api:
        process, server = _run_on_a_hung_api(tmp_path, api, GRIDIRON_PREFECT_LOST_SECONDS="5")
        try:
            url = next(f"http://127.0.0.1:{c.laddr.port}/api" for c in server.net_connections("tcp")
                       if c.status == "LISTEN")
            server.kill()
            _, stderr = process.communicate(timeout=180)
        finally:
            process.kill()
    last = stderr.strip().splitlines()[-1]
    assert process.returncode == 1, stderr[-2000:]
    assert last.startswith(f"gridiron: run failed: the temporary Prefect server at {url} "), stderr[-2000:]
    assert "stopped answering" in last and "Start the Prefect server" not in last
    assert query(tmp_path / "c.yaml", "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'games'") == [(0,)]


def test_status_lists_a_run_whose_process_was_killed_before_it_recorded_its_end(tmp_path, capsys, monkeypatch):
    """A SIGKILLed run never writes its pipeline_runs row; the home's run lock still names it, and
    no live process holds the lock: status lists it as left Running by a process that is gone."""
    from datetime import UTC, datetime

    from gridiron.storage import connect, migrate, record_run, run_lock

    home = tmp_path / "home"
    with connect(home / "gridiron.duckdb") as con:
        migrate(con)
    with run_lock(home, "run-killed", "killed-kestrel"):
        pass  # released, as the kernel releases it when the process is killed
    monkeypatch.setenv("GRIDIRON_HOME", str(home))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "killed-kestrel was left Running by a process that is gone (pid " in out
    assert "and never recorded its end; 'gridiron run' starts a new one" in out

    with connect(home / "gridiron.duckdb") as con:  # once the run's row exists, it is an ordinary run
        record_run(con, {"run_id": "run-killed", "started_at": datetime.now(UTC), "status": "failed", "error": "x"}, [])
    assert main(["status"]) == 0
    assert "left Running" not in capsys.readouterr().out


def test_a_run_stopped_by_sigterm_says_so_last_and_records_why(tmp_path, small_snapshot):
    """SIGTERM (a worker cancelling, a service stopping) while collect waits on a hung API: the run
    exits 143, its last line and its recorded reason say which signal stopped it in which phase,
    that nothing was committed and that a rerun is safe."""
    import signal

    from gridiron.testing.fake_cfbd import FakeCFBD, Fault
    from gridiron.testing.servers import wait_for
    from tests.helpers import API_KEY, write_config

    config = write_config(tmp_path / "c.yaml", storage={"home": str(tmp_path / "home")},
                          source={"timeout_seconds": 5, "http_max_attempts": 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    with FakeCFBD(small_snapshot, api_key=API_KEY) as api:
        api.add_fault(Fault("/games", "delay", delay=60, times=-1))
        process = subprocess.Popen(
            [sys.executable, "-m", "gridiron", "--config", str(config), "run"], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**env, "CFBD_API_KEY": API_KEY, "CFBD_BASE_URL": api.url, "PREFECT_HOME": str(tmp_path / "prefect")})
        try:
            wait_for(lambda: api.requests_to("/games"), 240, "the run to call /games (collect under way)")
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
    said = ("stopped by SIGTERM during collect: nothing of this run was committed (a load under way is rolled back); "
            "a rerun is safe")
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == f"gridiron: run {said}"
    assert query(config, "SELECT status, error FROM pipeline_runs") == [("failed", said)]
    assert query(config, "SELECT count(*) FROM games") == [(0,)]


@pytest.mark.parametrize("args,line", [
    (["backup"], "gridiron: backup failed: no warehouse at {home}/gridiron.duckdb to back up"),
    (["schedule"], "gridiron: schedule failed: deploy needs a running Prefect server: start one (prefect server "
                   "start) and set PREFECT_API_URL"),
    (["restore", "--at", "yesterday"], "gridiron: restore failed: 'yesterday' is not a point in time: use an ISO "
                                       "8601 date or time, e.g. 2026-11-27T06:00:00Z"),
    (["backtest", "--season", "twenty"], None),  # argparse: exit 2 with its usage line
])
def test_each_command_fails_with_one_line(tmp_path, args, line):
    done = gridiron(*args, env={"GRIDIRON_HOME": str(tmp_path)})
    if line is None:
        assert done.returncode == 2 and "argument --season: invalid int value: 'twenty'" in done.stderr
        return
    assert done.returncode == 1 and done.stderr.strip() == line.format(home=tmp_path)
