"""Benchmark: how soon people hear. A real `prefect server start`, `gridiron deploy`, a process
worker, the fake CFBD API, an SMTP server and an HTTP receiver, all on 127.0.0.1 (tests/servers.py).

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

import tests.conftest  # noqa: E402, F401  (clears GRIDIRON_/CFBD_/PREFECT_ variables first)
from bench.report import write_section  # noqa: E402
from gridiron.testing.fake_cfbd import FakeCFBD, Fault  # noqa: E402
from tests.helpers import API_KEY, SMALL, copy_snapshot  # noqa: E402
from tests.servers import HTTPReceiver, PrefectServer, SMTPServer, wait_for  # noqa: E402
from tests.test_operate import Ops, _flow_process  # noqa: E402


def _seen(condition) -> float:
    wait_for(condition, 180, "a notification", every=0.1)
    return datetime.now(UTC).timestamp()


def _flow_run(ops: Ops, run_id: str):
    from prefect.client.orchestration import get_client

    with ops.settings(), get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gridiron-bench-notify-"))
    failed_mail, failed_slack, crashed_mail, stuck_mail, stuck_cancelled = [], [], [], [], []
    try:
        snapshot = copy_snapshot(root / "snapshot", SMALL)
        with PrefectServer(root / "prefect") as server, SMTPServer() as smtp, HTTPReceiver() as hooks, \
                FakeCFBD(snapshot, api_key=API_KEY) as api:
            ops = Ops(root, server, smtp, hooks, api)
            try:
                for _ in range(args.repeat):
                    ops.deploy(api_key="a-revoked-key")
                    run_id, name = ops.run()
                    ops.wait_state(run_id, {"Failed"}, 120)
                    mail_at = _seen(lambda name=name: ops.mail(name))
                    slack_at = _seen(lambda name=name: ops.posts("/slack", name))
                    ended = _flow_run(ops, run_id).end_time.timestamp()
                    failed_mail.append(mail_at - ended)
                    failed_slack.append(slack_at - ended)

                api.add_fault(Fault("/games", "delay", delay=120, times=-1))
                for _ in range(args.repeat):
                    ops.deploy()
                    run_id, name = ops.run()
                    ops.wait_state(run_id, {"Running"}, 120)
                    process = wait_for(lambda run_id=run_id: _flow_process(run_id), 30, "the flow process")
                    wait_for(lambda: api.requests_to("/games"), 60, "the run to call /games")
                    killed = datetime.now(UTC).timestamp()
                    os.kill(process.pid, signal.SIGKILL)
                    crashed_mail.append(_seen(lambda name=name: ops.mail(name)) - killed)

                for _ in range(args.repeat):
                    ops.deploy(max_pipeline_duration=10)
                    run_id, name = ops.run()
                    ops.wait_state(run_id, {"Running"}, 120)
                    mail_at = _seen(lambda name=name: [m for m in ops.mail(name) if "stuck" in m["Subject"]])
                    ops.wait_state(run_id, {"Cancelled"}, 180)
                    flow_run = _flow_run(ops, run_id)
                    stuck_mail.append(mail_at - flow_run.start_time.timestamp())
                    stuck_cancelled.append((flow_run.end_time - flow_run.start_time).total_seconds())
                api.clear_faults()
            finally:
                if ops.worker is not None:
                    ops.worker.__exit__(None, None, None)
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
