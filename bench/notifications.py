"""Benchmark: how soon people hear. A real `prefect server start`, `gridiron deploy`, a process
worker, the fake CFBD API, an SMTP server and an HTTP receiver, all on 127.0.0.1 (gridiron/testing/servers.py).

- failed run: the run's end (server time) to the email and to the Slack message (polled every 0.1 s);
- killed run: SIGKILL of the flow's process to the "Crashed" email;
- stuck run: with max_pipeline_duration 10 s, the run's start to the "stuck" email and to Cancelled.

Writes its table into BENCHMARKS.md between this benchmark's markers.

    .venv/bin/python bench/notifications.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.chdir(REPO)

from bench.report import config_file, write_section  # noqa: E402
from flows.writer import WAREHOUSE_LIMIT  # noqa: E402
from gridiron.testing.fake_cfbd import FakeCFBD, Fault  # noqa: E402
from gridiron.testing.servers import (  # noqa: E402
    HTTPReceiver,
    PrefectREST,
    PrefectServer,
    SMTPServer,
    Worker,
    flow_run_process,
    wait_for,
)
from gridiron.testing.snapshots import SMALL, copy_snapshot  # noqa: E402
from gridiron.testing.timing import environment_without_settings, timed_gridiron  # noqa: E402

API_KEY = "bench-key-123"


def _seen(condition) -> float:
    wait_for(condition, 180, "a notification", every=0.1)
    return datetime.now(UTC).timestamp()


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Rig:
    """The services, one deploy per measurement (`gridiron deploy`, as an operator would) and a
    worker started with the first run."""

    def __init__(self, root: Path, server: PrefectServer, smtp: SMTPServer, hooks: HTTPReceiver, api: FakeCFBD):
        self.root, self.server, self.smtp, self.hooks, self.api = root, server, smtp, hooks, api
        self.rest = PrefectREST(server.url)
        self.worker: Worker | None = None
        self.deploys = 0

    def deploy(self, api_key: str = API_KEY, **values) -> None:
        self.deploys += 1
        config = config_file(
            self.root / f"config-{self.deploys}.yaml", start_year=2022, end_year=2023,
            source={"base_url": self.api.url, "timeout_seconds": 600, "min_request_interval": 0,
                    "box_scores": False},
            storage={"home": str(self.root / f"home-{self.deploys}")},
            enable_notifications=True, notification_email=["ops@example.com"],
            slack_webhook=f"{self.hooks.url}/slack", webhook_url=f"{self.hooks.url}/webhook",
            escalation_failures=50, **values)
        self.rest.free_concurrency_limit(WAREHOUSE_LIMIT)  # a killed run's slot would wait out its lease
        env = {**self.server.env, "CFBD_API_KEY": api_key, "GRIDIRON_CONFIG": str(config),
               "GRIDIRON_SMTP_HOST": "127.0.0.1", "GRIDIRON_SMTP_PORT": str(self.smtp.port),
               "GRIDIRON_SMTP_SECURITY": "none", "GRIDIRON_SMTP_FROM": "gridiron@example.com"}
        timed_gridiron(["deploy"], {**os.environ, **env}, REPO).check("gridiron deploy")

    def run(self) -> tuple[str, str]:
        if self.worker is None:  # no CFBD key in its environment: runs read the Secret block deploy saved
            self.worker = Worker(self.server, "gridiron-pool", self.root / "worker.log", cwd=REPO).__enter__()
        return self.rest.run_deployment("ncaa-pipeline/scheduled")

    def mail(self, run_name: str) -> list:
        return [m for m in self.smtp.messages if run_name in m["Subject"]]

    def posts(self, path: str, run_name: str) -> list[dict]:
        return [p for p in self.hooks.posts(path) if run_name in p.get("text", "")]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.__exit__(None, None, None)
        self.rest.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clean = environment_without_settings()  # a developer's shell must not steer the services
    os.environ.clear()
    os.environ.update(clean)
    root = Path(tempfile.mkdtemp(prefix="gridiron-bench-notify-"))
    failed_mail, failed_slack, crashed_mail, stuck_mail, stuck_cancelled = [], [], [], [], []
    try:
        snapshot = copy_snapshot(root / "snapshot", SMALL)
        with PrefectServer(root / "prefect") as server, SMTPServer() as smtp, HTTPReceiver() as hooks, \
                FakeCFBD(snapshot, api_key=API_KEY) as api:
            ops = Rig(root, server, smtp, hooks, api)
            try:
                for _ in range(args.repeat):
                    ops.deploy(api_key="a-revoked-key")
                    run_id, name = ops.run()
                    ops.rest.wait_state(run_id, {"Failed"}, 120)
                    mail_at = _seen(lambda name=name: ops.mail(name))
                    slack_at = _seen(lambda name=name: ops.posts("/slack", name))
                    ended = _timestamp(ops.rest.flow_run(run_id)["end_time"])
                    failed_mail.append(mail_at - ended)
                    failed_slack.append(slack_at - ended)

                api.add_fault(Fault("/games", "delay", delay=120, times=-1))
                for _ in range(args.repeat):
                    ops.deploy()
                    run_id, name = ops.run()
                    ops.rest.wait_state(run_id, {"Running"}, 120)
                    process = wait_for(lambda run_id=run_id: flow_run_process(run_id), 30, "the flow process")
                    wait_for(lambda: api.requests_to("/games"), 60, "the run to call /games")
                    killed = datetime.now(UTC).timestamp()
                    os.kill(process.pid, signal.SIGKILL)
                    crashed_mail.append(_seen(lambda name=name: ops.mail(name)) - killed)

                for _ in range(args.repeat):
                    ops.deploy(max_pipeline_duration=10)
                    run_id, name = ops.run()
                    ops.rest.wait_state(run_id, {"Running"}, 120)
                    mail_at = _seen(lambda name=name: [m for m in ops.mail(name) if "stuck" in m["Subject"]])
                    ops.rest.wait_state(run_id, {"Cancelled"}, 180)
                    flow_run = ops.rest.flow_run(run_id)
                    started = _timestamp(flow_run["start_time"])
                    stuck_mail.append(mail_at - started)
                    stuck_cancelled.append(_timestamp(flow_run["end_time"]) - started)
                api.clear_faults()
            finally:
                ops.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def row(what: str, values: list[float]) -> str:
        return f"| {what} | {statistics.median(values):.1f} s | {min(values):.1f}-{max(values):.1f} s |"

    body = "\n".join([
        f"Medians of {args.repeat} runs each (`.venv/bin/python bench/notifications.py --repeat {args.repeat}`), "
        "local SQLite-backed Prefect server; everything is sent by the server's automations.",
        "",
        "| from -> to | median | range |",
        "|---|---|---|",
        row("failed run's end -> email", failed_mail),
        row("failed run's end -> Slack message", failed_slack),
        row("SIGKILL of the flow's process -> \"Crashed\" email", crashed_mail),
        row("stuck run's start -> \"stuck\" email (max_pipeline_duration 10 s)", stuck_mail),
        row("stuck run's start -> Cancelled (SIGTERM, then SIGKILL after 30 s)", stuck_cancelled),
    ])
    print(write_section("notifications", "Notifications (issue: operate)", body))


if __name__ == "__main__":
    main()
