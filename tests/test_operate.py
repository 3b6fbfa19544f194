"""Operations end to end, all on 127.0.0.1: a real `prefect server start`, `gridiron deploy`, a
process worker, the fake CFBD API, an SMTP server (aiosmtpd) and an HTTP receiver for Slack and the
webhooks. The notifications are sent by the Prefect server's automations, never by the flow, so
they arrive even when the flow's process was killed.

Each test deploys its own config (deploy is idempotent and updates what changed) and starts runs of
`ncaa-pipeline/scheduled` through the worker. The escalation count stays high except in the
escalation test, whose own deploy gives the automation a fresh trigger and so a fresh count.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gridiron.testing.fake_cfbd import FakeCFBD, Fault
from gridiron.testing.servers import (
    PREFECT,
    HTTPReceiver,
    PrefectREST,
    PrefectServer,
    SMTPServer,
    Worker,
    flow_run_process,
    wait_for,
)
from gridiron.testing.snapshots import SMALL, copy_snapshot
from tests.helpers import API_KEY, REPO, gridiron, write_config

pytestmark = pytest.mark.flow

RECIPIENT = "ops@example.com"
ESCALATION = "/escalation"


@dataclass
class Ops:
    root: Path
    server: PrefectServer
    smtp: SMTPServer
    hooks: HTTPReceiver
    api: FakeCFBD
    worker: Worker | None = None
    deploys: int = 0
    home: Path | None = None
    config_path: Path | None = None

    @functools.cached_property
    def rest(self) -> PrefectREST:
        return PrefectREST(self.server.url)

    def settings(self):
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings({PREFECT_API_URL: self.server.url})

    def config(self, **values) -> Path:
        """A config file aimed at this module's fake API, mail server and receivers."""
        self.deploys += 1
        self.home = self.root / f"home-{self.deploys}"
        base = dict(
            source={"base_url": self.api.url, "timeout_seconds": 600},
            storage={"home": str(self.home)},  # a fresh warehouse: the run calls the API
            enable_notifications=True, notification_email=[RECIPIENT],
            slack_webhook=f"{self.hooks.url}/slack", webhook_url=f"{self.hooks.url}/webhook",
            escalation_webhook=f"{self.hooks.url}{ESCALATION}", escalation_failures=50,
        )
        self.config_path = write_config(self.root / f"config-{self.deploys}.yaml", **{**base, **values})
        return self.config_path

    def env(self, api_key: str) -> dict[str, str]:
        return {
            **self.server.env, "CFBD_API_KEY": api_key, "GRIDIRON_SMTP_HOST": "127.0.0.1",
            "GRIDIRON_SMTP_PORT": str(self.smtp.port), "GRIDIRON_SMTP_SECURITY": "none",
            "GRIDIRON_SMTP_FROM": "gridiron@example.com",
        }

    def deploy(self, api_key: str = API_KEY, **values) -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from deployments.setup import deploy
        from flows.writer import WAREHOUSE_LIMIT
        from gridiron.config import load_config

        path = self.config(**values)
        with self.settings():
            # a run an earlier test killed keeps the warehouse slot until its lease lapses (about a
            # minute, which flows.writer waits out); each test starts with the slot free instead
            with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
                client.delete_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
            return deploy(load_config(path, {}), str(path), env=self.env(api_key))

    def start_worker(self, command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        if self.worker is None:
            # The worker's environment has no CFBD key: runs read the Secret block deploy saved.
            self.worker = Worker(self.server, "gridiron-pool", self.root / "worker.log", env=env,
                                 command=command).__enter__()

    def run(self, deployment: str = "ncaa-pipeline/scheduled") -> tuple[str, str]:
        """Start a run of a deployment; (flow run id, run name)."""
        self.start_worker()
        return self.rest.run_deployment(deployment)

    def state(self, run_id: str) -> str:
        return self.rest.flow_run(run_id)["state_name"]

    def wait_state(self, run_id: str, names: set[str], timeout: float) -> str:
        return self.rest.wait_state(run_id, names, timeout, f" (worker log: {self.root / 'worker.log'})")

    def mail(self, run_name: str) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if run_name in m["Subject"]]

    def posts(self, path: str, run_name: str) -> list[dict]:
        return [p for p in self.hooks.posts(path) if run_name in p.get("text", "")]


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    snapshot = copy_snapshot(root / "snapshot", SMALL)
    with PrefectServer(root / "prefect") as server, SMTPServer() as smtp, HTTPReceiver() as hooks, \
            FakeCFBD(snapshot, api_key=API_KEY) as api:
        state = Ops(root, server, smtp, hooks, api)
        try:
            yield state
        finally:
            if state.worker is not None:
                state.worker.__exit__(None, None, None)
            state.rest.close()


def _made_or_updated(lines: list[str], automation: str) -> bool:
    """deploy changed this automation (created alone, updated after the module's earlier deploys)."""
    return any(line in (f"automation {automation}: created, enabled", f"automation {automation}: updated, enabled")
               for line in lines)


def test_gridiron_deploy_then_gridiron_schedule_runs_the_deployment_to_completed(ops):
    config = ops.config(notify_on_success=True)
    env = {**ops.env(API_KEY), "GRIDIRON_CONFIG": str(config)}
    done = gridiron("deploy", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for expected in ("work pool gridiron-pool: created (process)", "block gridiron-smtp: created",
                     "block gridiron-email: created", "block gridiron-slack: created",
                     "block gridiron-webhook: created", "block gridiron-cfbd-api-key: created",
                     "ncaa-pipeline/scheduled: created, cron '0 6 * * *' (UTC)",
                     "automation gridiron-run-failed: created, enabled",
                     "automation gridiron-run-succeeded: created, enabled",
                     "automation gridiron-stuck-run: created, enabled"):
        assert expected in lines
    assert API_KEY not in done.stdout + done.stderr and ops.hooks.url not in done.stdout

    again = gridiron("deploy", env=env)  # idempotent: nothing made twice, nothing rewritten
    assert again.returncode == 0, again.stderr
    assert [line.split(":")[1].split(",")[0].strip() for line in again.stdout.splitlines()[2:]] == \
        ["unchanged"] * (len(again.stdout.splitlines()) - 2)
    assert again.stdout.splitlines()[:2] == ["work pool gridiron-pool: exists",
                                             "concurrency limit gridiron-warehouse: exists"]

    # `gridiron schedule` deploys (a third time: nothing changes) and becomes the pool's worker.
    ops.start_worker([sys.executable, "-m", "gridiron", "schedule"],
                     env={k: v for k, v in env.items() if k != "CFBD_API_KEY"})
    wait_for(lambda: "Worker 'ProcessWorker" in (ops.root / "worker.log").read_text(), 60, "the worker to start")
    scheduled = (ops.root / "worker.log").read_text()
    assert "ncaa-pipeline/scheduled: unchanged, cron '0 6 * * *' (UTC)" in scheduled
    assert "starting a worker on gridiron-pool" in scheduled
    started = os.times().elapsed
    run = subprocess.run(
        [PREFECT, "deployment", "run", "ncaa-pipeline/scheduled"], capture_output=True, text=True,
        env={**os.environ, **ops.server.env}, timeout=120)
    assert run.returncode == 0, run.stderr
    run_id = next(line.split("UUID:")[1].strip() for line in run.stdout.splitlines() if "UUID:" in line)
    assert ops.wait_state(run_id, {"Completed", "Failed", "Crashed"}, 240) == "Completed", \
        (ops.root / "worker.log").read_text()[-3000:]

    import duckdb

    with duckdb.connect(str(ops.home / "gridiron.duckdb"), read_only=True) as con:
        games = con.sql("select count(*) from games").fetchall()[0][0]
    assert games == 7439  # two real seasons (2022, 2023), fetched from the fake API with the key from the Secret block
    assert ops.api.requests_to("/games")
    name = wait_for(lambda: [m for m in ops.smtp.messages if "completed" in m["Subject"]], 60,
                    "the success email")[0]["Subject"]
    assert name.startswith("gridiron: ncaa-pipeline run ") and os.times().elapsed - started < 300


def test_a_failed_run_is_announced_by_email_slack_and_webhook_with_a_link(ops):
    ops.deploy(api_key="a-revoked-key")  # the run reads this key from the Secret block: HTTP 401
    run_id, name = ops.run()
    assert ops.wait_state(run_id, {"Completed", "Failed", "Crashed"}, 120) == "Failed"

    mail = wait_for(lambda: ops.mail(name), 60, "the failure email")
    slack = wait_for(lambda: ops.posts("/slack", name), 30, "the Slack message")
    webhook = wait_for(lambda: ops.posts("/webhook", name), 30, "the webhook call")

    assert len(mail) == 1 and mail[0]["Subject"] == f"gridiron: ncaa-pipeline run {name} is Failed"
    assert mail[0]["To"] == RECIPIENT and mail[0]["From"] == "gridiron@example.com"
    body = mail[0].get_content()
    assert f"Run: {name} ({run_id})" in body and "State: Failed" in body
    assert "HTTP 401" in body and "CFBD_API_KEY" in body  # the state message says what to fix
    assert f"Link: {ops.server.env['PREFECT_UI_URL']}/runs/flow-run/{run_id}" in body
    assert slack[0]["text"].startswith(f"gridiron: ncaa-pipeline run {name} is Failed")
    assert webhook[0]["source"] == "gridiron" and name in webhook[0]["subject"]
    assert "a-revoked-key" not in body + slack[0]["text"] + webhook[0]["text"]
    assert not ops.hooks.posts(ESCALATION)


def test_a_killed_run_is_still_announced_as_crashed(ops):
    ops.deploy()
    ops.api.add_fault(Fault("/games", "delay", delay=120, times=-1))  # the run waits on the API
    try:
        run_id, name = ops.run()
        ops.wait_state(run_id, {"Running"}, 120)
        process = wait_for(lambda: flow_run_process(run_id), 30, "the flow run's process")
        wait_for(lambda: ops.api.requests_to("/games"), 60, "the run to call /games")
        os.kill(process.pid, signal.SIGKILL)
        assert ops.wait_state(run_id, {"Crashed", "Failed", "Completed"}, 60) == "Crashed"
        mail = wait_for(lambda: ops.mail(name), 60, "the crash email")
    finally:
        ops.api.clear_faults()
    assert mail[0]["Subject"] == f"gridiron: ncaa-pipeline run {name} is Crashed"
    assert wait_for(lambda: ops.posts("/slack", name), 30, "the Slack message")
    assert wait_for(lambda: ops.posts("/webhook", name), 30, "the webhook call")


def test_a_run_hung_past_max_pipeline_duration_is_announced_and_cancelled(ops):
    lines = ops.deploy(max_pipeline_duration=10)
    assert _made_or_updated(lines, "gridiron-stuck-run")
    ops.api.add_fault(Fault("/games", "delay", delay=120, times=-1))
    try:
        run_id, name = ops.run()
        ops.wait_state(run_id, {"Running"}, 120)
        running_at = time.monotonic()
        mail = wait_for(lambda: [m for m in ops.mail(name) if "stuck" in m["Subject"]], 60, "the stuck-run email")
        # The worker sends SIGTERM, then SIGKILL after a 30 s grace when a thread is stuck in a read.
        assert ops.wait_state(run_id, {"Cancelled", "Crashed", "Failed", "Completed"}, 120) == "Cancelled"
        assert time.monotonic() - running_at >= 9  # not before max_pipeline_duration
    finally:
        ops.api.clear_faults()
    assert mail[0]["Subject"] == f"gridiron: ncaa-pipeline run {name} is stuck and is being cancelled"
    assert "Running for more than 10 s (max_pipeline_duration)" in mail[0].get_content()
    assert flow_run_process(run_id) is None  # the worker stopped the process, not just the label


def test_runs_queue_one_at_a_time_and_three_failures_within_the_window_escalate_exactly_once(ops):
    lines = ops.deploy(api_key="a-revoked-key", escalation_failures=3, escalation_window=600)
    assert _made_or_updated(lines, "gridiron-escalation")
    before = len(ops.hooks.posts(ESCALATION))
    runs = [ops.run() for _ in range(4)]  # all due at once: the deployment's limit of 1 queues them
    for run_id, _ in runs:
        assert ops.wait_state(run_id, {"Completed", "Failed", "Crashed"}, 180) == "Failed"

    from prefect.client.orchestration import get_client

    with ops.settings(), get_client(sync_client=True) as client:
        flow_runs = sorted((client.read_flow_run(run_id) for run_id, _ in runs), key=lambda r: r.start_time)
        queued = {s.name for r in flow_runs for s in client.read_flow_run_states(r.id)}
    assert "AwaitingConcurrencySlot" in queued
    for earlier, later in zip(flow_runs, flow_runs[1:]):  # one warehouse writer: never two at once
        assert earlier.end_time <= later.start_time

    third = flow_runs[2].name
    wait_for(lambda: ops.posts("/slack", flow_runs[3].name), 60, "the last failure's Slack message")
    wait_for(lambda: len(ops.hooks.posts(ESCALATION)) > before, 30, "the escalation")
    time.sleep(3)  # a second escalation would come with the fourth failure: none does
    escalations = ops.hooks.posts(ESCALATION)[before:]
    assert len(escalations) == 1
    assert escalations[0]["subject"] == "gridiron ESCALATION: ncaa-pipeline failed 3 times within 600 s"
    assert f"Run: {third} (" in escalations[0]["text"]  # fired by the third failure


def test_an_invalid_edited_config_fails_the_next_run_with_its_one_line_error_and_notifies(ops):
    ops.deploy()
    ops.config_path.write_text(ops.config_path.read_text() + "start_year: 2030\n")  # after end_year
    run_id, name = ops.run()
    assert ops.wait_state(run_id, {"Completed", "Failed", "Crashed"}, 120) == "Failed"
    mail = wait_for(lambda: ops.mail(name), 60, "the failure email")
    assert f"ConfigError: {ops.config_path}: start_year (2030) is after end_year (2023)" in mail[0].get_content()


def test_a_quality_breach_event_is_announced_with_table_score_and_threshold(ops):
    ops.deploy()
    emitted = subprocess.run(
        [sys.executable, "-c", "from tasks.validate import emit_quality_breach; emit_quality_breach.fn("
         "table='games', severity='critical', score=0.42, threshold=0.8, stage='validate', run_id='run-7', "
         "failed_checks=['games.home_points >= 0: 3 rows, e.g. game 401551789'])"],
        env={**os.environ, **ops.server.env}, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert emitted.returncode == 0, emitted.stderr
    mail = wait_for(lambda: [m for m in ops.smtp.messages if "quality breach" in m["Subject"]], 60,
                    "the quality breach email")
    assert mail[0]["Subject"] == "gridiron: data quality breach in games"
    body = mail[0].get_content()
    for line in ("Table: games", "Severity: critical (stage validate)", "Score: 0.42", "Threshold: 0.8",
                 "Failed checks: games.home_points >= 0: 3 rows, e.g. game 401551789", "Run: run-7"):
        assert line in body


def test_an_unhealthy_health_check_run_is_announced_naming_the_check(ops):
    ops.deploy(health={"max_disk_percent": 0.01})  # below any real disk's usage
    run_id, name = ops.run("ncaa-health-check/scheduled")
    assert ops.wait_state(run_id, {"Completed", "Failed", "Crashed"}, 120) == "Failed"
    mail = wait_for(lambda: [m for m in ops.smtp.messages if "unhealthy" in m["Subject"]], 60, "the unhealthy email")
    assert "disk" in mail[0]["Subject"].split("unhealthy: ")[1].split(",")
    assert "(at most one of these every 3600 s)" in mail[0].get_content()


def test_the_config_turns_notifications_off_and_deploy_says_so(ops):
    lines = ops.deploy(enable_notifications=False)
    assert "automation gridiron-run-failed: updated, disabled (enable_notifications is false)" in lines
    assert "automation gridiron-stuck-run: updated, enabled" in lines  # cancelling hung runs stays on
    from prefect.client.orchestration import get_client

    with ops.settings(), get_client(sync_client=True) as client:
        automations = {a.name: a for a in client.read_automations() if a.name.startswith("gridiron-")}
    assert sorted(automations) == sorted(f"gridiron-{n}" for n in (
        "run-failed", "run-succeeded", "stuck-run", "escalation", "quality-breach", "unhealthy"))
    assert [a.type for a in automations["gridiron-stuck-run"].actions] == ["cancel-flow-run"]
    assert not automations["gridiron-run-failed"].enabled
