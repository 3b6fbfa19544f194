"""The commands that watch the pipeline: the health checks (`health`) and the dashboard (`monitor`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.commands.base import Command, CommandError, arg
from gridiron.config import PipelineConfig


def health(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron health: run the health checks and print them."""
    from gridiron.health import record_checks, run_checks

    api_url = os.environ.get("PREFECT_API_URL")
    running = None
    if api_url:  # the Prefect API check names a problem reading it; the stuck-run check then has nothing to judge
        from cli.monitor.data import read_prefect

        live = read_prefect(api_url)
        if live.problem:
            print(f"(could not read the running runs: {live.problem})")
        else:
            running = [(run.name, run.started_at, run.run_id) for run in live.running if run.started_at]
    checks = run_checks(config, prefect_api_url=api_url, running=running)
    for check in checks:
        print(f"{'ok  ' if check.healthy else 'FAIL'} {check.name:<13} {check.detail}")
    record_checks(config, checks)  # the dashboard's health history
    failing = [c for c in checks if not c.healthy]
    if failing:
        raise CommandError("; ".join(f"{c.name}: {c.detail}" for c in failing))
    return 0


def monitor(config: PipelineConfig, args: argparse.Namespace) -> int:
    """Serve the Streamlit dashboard (headless, no usage statistics) until interrupted."""
    import importlib.util
    import socket

    if importlib.util.find_spec("streamlit") is None:
        raise CommandError("the dashboard needs streamlit: pip install streamlit")
    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise CommandError(f"cannot serve on {args.host}:{args.port}: {error.strerror}") from None
    app = Path(__file__).resolve().parents[1] / "monitor" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
               "--server.port", str(args.port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
               "--client.toolbarMode", "minimal"]
    if args.config:
        command += ["--", "--config", args.config]
    print(f"gridiron monitor: http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def metrics(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron metrics: serve the Prometheus scrape endpoint until stopped."""
    import socket

    from cli.exporter import serve

    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise CommandError(f"cannot serve on {args.host}:{args.port}: {error.strerror}") from None
    serve(config, args.host, args.port, os.environ.get("PREFECT_API_URL"))
    return 0


HEALTH = Command(
    "health", "CPU, memory, disk, warehouse, CFBD API, Prefect API, last success, duration, stuck runs: "
              "exits 1 naming the failing checks",
    health)
MONITOR = Command(
    "monitor", "serve the dashboard (runs, phases, quality, errors, system, standings, predictions, model "
               "quality) on http://127.0.0.1:8505; --host and --port to change (loopback unless told)",
    monitor, (arg("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"),
              arg("--port", type=int, default=8505, help="port (default 8505)")))
METRICS = Command(
    "metrics", "serve Prometheus metrics (runs, phases, quality, quota, backups, rows, model, health) on "
               "http://127.0.0.1:9108/metrics; --host and --port to change",
    metrics, (arg("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"),
              arg("--port", type=int, default=9108, help="port (default 9108)")))
