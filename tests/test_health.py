"""Health checks, the run log file and its secret redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from gridiron.config import parse_config
from gridiron.health import run_history_checks, stuck_runs_check, system_checks, warehouse_check
from gridiron.logs import RedactSecrets, log_path, run_log, secrets_from
from gridiron.storage import connect, migrate, record_run
from tests.helpers import gridiron

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def config(tmp_path, **values):
    return parse_config({"storage": {"home": str(tmp_path)}, **values})


def test_health_command_exits_1_and_names_the_disk_check(tmp_path):
    path = tmp_path / "c.yaml"
    # CPU and memory limits at 100% can never fail: the outcome does not depend on how busy the machine is
    path.write_text(f"storage:\n  home: {tmp_path}\nhealth:\n  max_disk_percent: 0.001\n"
                    "  max_cpu_percent: 100\n  max_memory_percent: 100\n")
    done = gridiron("health", env={"GRIDIRON_CONFIG": str(path)})
    assert done.returncode == 1
    assert "FAIL disk" in done.stdout and "ok   cpu" in done.stdout and "ok   memory" in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("gridiron: health failed: disk: disk holding ") and "(limit 0.001%)" in last


def test_system_checks_hold_usage_against_the_limits(tmp_path):
    checks = {c.name: c for c in system_checks(config(tmp_path, health={"max_memory_percent": 100}))}
    assert set(checks) == {"cpu", "memory", "disk"}
    assert checks["memory"].healthy and checks["memory"].threshold == 100


def test_a_missing_or_broken_warehouse_is_unhealthy(tmp_path):
    assert "no warehouse at" in warehouse_check(config(tmp_path)).detail
    (tmp_path / "gridiron.duckdb").write_bytes(b"not a database")
    check = warehouse_check(config(tmp_path))
    assert not check.healthy and "does not answer" in check.detail


def _runs(tmp_path, durations, last_finished):
    with connect(tmp_path / "gridiron.duckdb") as con:
        migrate(con)
        for index, seconds in enumerate(durations):
            started = last_finished - timedelta(days=len(durations) - index)
            record_run(con, {"run_id": f"r{index}", "started_at": started, "finished_at": started + timedelta(seconds=seconds),
                             "status": "completed", "duration_seconds": seconds}, [])


def test_a_stale_last_success_and_a_slow_run_are_named(tmp_path):
    _runs(tmp_path, [60, 62, 58, 61, 300], NOW - timedelta(days=3))
    checks = {c.name: c for c in run_history_checks(config(tmp_path), now=NOW)}
    assert not checks["last_success"].healthy and "allowed 36 h" in checks["last_success"].detail
    assert not checks["duration"].healthy and "last run 300 s against a median of 60 s" in checks["duration"].detail


def test_stuck_runs_are_those_running_past_max_pipeline_duration(tmp_path):
    cfg = config(tmp_path, max_pipeline_duration=600)
    check = stuck_runs_check(cfg, [("quick-otter", NOW - timedelta(minutes=5)), ("slow-sloth", NOW - timedelta(minutes=30))], now=NOW)
    assert not check.healthy and "slow-sloth (30 min)" in check.detail and "quick-otter" not in check.detail


def test_a_run_left_running_by_a_dead_process_is_named_at_once(tmp_path):
    """The lock's record names the last run to hold it; nobody holds it now, yet Prefect says that
    run is Running: its process is gone. No need to wait for max_pipeline_duration."""
    from gridiron.storage import run_lock

    with run_lock(tmp_path, "run-dead", "dead-duck"):
        pass  # released, as when the process is killed
    cfg = config(tmp_path, max_pipeline_duration=3600)
    check = stuck_runs_check(cfg, [("dead-duck", NOW - timedelta(minutes=2), "run-dead"),
                                   ("other", NOW - timedelta(minutes=1), "run-other")], now=NOW)
    assert not check.healthy and check.detail.startswith("left Running by a process that is gone")
    assert check.detail.endswith(": dead-duck; start a new run with 'gridiron run'")
    with run_lock(tmp_path, "run-live", "live-lynx"):  # a live holder: judged by duration only
        assert stuck_runs_check(cfg, [("live-lynx", NOW - timedelta(minutes=2), "run-live")], now=NOW).healthy


def test_secrets_and_bearer_tokens_never_reach_the_log(tmp_path):
    logger = logging.getLogger("gridiron.test")
    with run_log(tmp_path, ["sk-very-secret-key"]) as log:
        logger.warning("calling with key %s", "sk-very-secret-key")
        logger.info("header Authorization: Bearer abc.def-123")
        logger.error("and one error")
    path = log.path
    assert (log.warnings, log.errors) == (1, 1)
    text = path.read_text()
    assert "sk-very-secret-key" not in text and "abc.def-123" not in text
    assert "calling with key ***" in text and "Bearer ***" in text
    assert path == log_path(tmp_path) and path.name.startswith("pipeline_")


def test_notification_urls_and_the_smtp_password_count_as_secrets():
    from pydantic import SecretStr

    config = parse_config({"slack_webhook": "https://hooks.slack.com/services/T0/B0/xyz",
                           "escalation_webhook": "https://pager.example.com/hook?token=abc"})
    config = config.model_copy(update={"api_key": SecretStr("cfbd-key-1")})
    secrets = secrets_from(config, {"GRIDIRON_SMTP_PASSWORD": "smtp-pass", "HOME": "/root"})
    assert sorted(secrets) == sorted(["cfbd-key-1", "https://hooks.slack.com/services/T0/B0/xyz",
                                      "https://pager.example.com/hook?token=abc", "smtp-pass"])


def test_redaction_ignores_tiny_values():
    assert RedactSecrets(["", "ab"]).redact("a b ab") == "a b ab"


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_run_writes_its_phases_to_the_days_log_without_the_api_key(config_file, fake_cfbd, monkeypatch, tmp_path):
    from flows import ncaa_pipeline
    from tests.helpers import API_KEY

    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    ncaa_pipeline(config_path=str(config_file))
    text = log_path(tmp_path / "home").read_text()
    for line in ("collect: 12 partitions from api", "process: 12 partitions staged", "load: committed 12 partitions",
                 "validate: integrity holds", "train: model"):
        assert line in text
    assert API_KEY not in text


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_the_health_flow_fails_when_unhealthy_and_keeps_an_artifact(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows import health_check

    path = tmp_path / "c.yaml"
    path.write_text(f"storage:\n  home: {tmp_path}\nhealth:\n  max_disk_percent: 0.001\n")
    state = health_check(config_path=str(path), return_state=True)
    assert state.is_failed() and "disk: disk holding" in state.message
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["gridiron-health"])))
    assert artifacts and any(row["name"] == "disk" and row["healthy"] is False for row in (
        artifacts[0].data if isinstance(artifacts[0].data, list) else __import__("json").loads(artifacts[0].data)))


def _health_server():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/health"


def test_the_watchdog_reports_a_lost_api_after_its_grace_and_not_a_live_one():
    import threading

    from gridiron.watchdog import ApiWatchdog

    server, url = _health_server()
    lost = threading.Event()
    messages = []
    with ApiWatchdog(url, interval_seconds=0.1, grace_seconds=0.3, on_lost=lambda m: (messages.append(m), lost.set())):
        assert not lost.wait(1.0)  # it answers: nothing happens
        server.shutdown()
        server.server_close()  # now nothing listens
        assert lost.wait(30)
    assert messages[0].startswith(f"the Prefect API at http://127.0.0.1:{server.server_address[1]}/api stopped "
                                  "answering (ConnectError")
    assert messages[0].endswith("Start the Prefect server again, then run again")


def test_a_run_failing_on_a_lost_api_is_still_ended_by_the_watchdog_not_left_to_prefects_retries():
    """A call that meets the dead server fails the run at once; Prefect's engine then retries its
    state report for about a minute. The watchdog keeps watching past that failure and ends it."""
    import threading

    from gridiron.watchdog import ApiWatchdog

    server, url = _health_server()
    lost = threading.Event()
    watchdog = ApiWatchdog(url, interval_seconds=0.1, grace_seconds=0.3, on_lost=lambda m: lost.set())
    with pytest.raises(ConnectionError):
        with watchdog:
            server.shutdown()
            server.server_close()
            raise ConnectionError("a task's call met the dead server")
    assert lost.wait(30)  # after the block has ended


def test_a_run_failing_while_the_api_answers_stops_the_watchdog():
    import threading

    from gridiron.watchdog import ApiWatchdog

    server, url = _health_server()
    lost = threading.Event()
    watchdog = ApiWatchdog(url, interval_seconds=0.1, grace_seconds=0.3, on_lost=lambda m: lost.set())
    with pytest.raises(ValueError):
        with watchdog:
            raise ValueError("bad input")
    watchdog._thread.join(30)
    assert not watchdog._thread.is_alive()
    server.shutdown()
    server.server_close()  # gone after the run: nobody is told, nothing ends
    assert not lost.wait(1.0)
