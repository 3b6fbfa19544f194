"""The commands that run the pipeline: now (`run`), on the work pool (`deploy`, `schedule`) and
over past seasons (`backfill`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.commands.base import (
    Command,
    CommandError,
    arg,
    needs_prefect_server,
    prefect_api,
    prefect_environment,
    stops_on_sigterm,
)
from cli.console import console
from gridiron.config import PipelineConfig


def run(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron run: run the pipeline once, on the configured Prefect server or a temporary one."""
    from gridiron import clock

    try:
        as_of = clock.as_of_override()
    except clock.ClockError as error:
        raise CommandError(str(error)) from None
    temporary = prefect_environment(config)
    from flows import ncaa_pipeline  # after the environment is set

    if not args.quiet:
        print(f"gridiron: running ncaa-pipeline on {prefect_api(temporary)}", file=sys.stderr, flush=True)
    if as_of and not args.quiet:
        print(f"gridiron: as of {as_of:%Y-%m-%d %H:%M} UTC ({clock.AS_OF_VARIABLE}): fetches are planned, data "
              "is stamped and upcoming games are chosen as at that time", file=sys.stderr)
    if config.enable_notifications and temporary:
        print("gridiron: note: notifications are sent by the automations 'gridiron deploy' makes on a "
              "Prefect server; this temporary server has none, so this run notifies nobody", file=sys.stderr)
    with console(quiet=args.quiet), stops_on_sigterm():  # after Prefect set up its logging on import
        result = ncaa_pipeline(full_refresh=args.full_refresh, config_path=args.config)
    tables = ", ".join(f"{t} {n}" for t, n in sorted(result.rows_by_table.items())) or "nothing changed"
    print(
        f"ncaa-pipeline completed: {len(result.partitions_loaded)} partitions loaded from "
        f"{result.source} ({tables}); warehouse {result.warehouse}"
    )
    if result.forecasts is not None:
        print(f"forecasts: {result.forecasts} upcoming game(s) (kickoff after the data's as-of time) by model "
              f"{result.model}" + (f"; {result.unscored} past kickoff without a result, unscored (not forecast)"
                                   if result.unscored else ""))
    if result.not_fetched:
        print(f"warning: {len(result.not_fetched)} partitions due were not fetched for the API call budget "
              f"(they wait for the next run): {', '.join(sorted(result.not_fetched))}")
    return 0


def deploy(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron deploy: create or update the work pool, deployments, automations and blocks."""
    needs_prefect_server("deploy needs a running Prefect server: start one (prefect server start) and set PREFECT_API_URL")
    prefect_environment(config)
    from deployments.setup import deploy

    for line in deploy(config, args.config or os.environ.get("GRIDIRON_CONFIG")):
        print(line)
    return 0


def schedule(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron schedule: deploy, then start a worker that runs the deployments on their schedule."""
    deploy(config, args)
    from deployments.setup import WORK_POOL

    prefect = Path(sys.executable).with_name("prefect")
    print(f"starting a worker on {WORK_POOL} (Ctrl-C twice to stop)", flush=True)
    os.execv(str(prefect), [str(prefect), "worker", "start", "--pool", WORK_POOL, "--type", "process"])
    return 0  # not reached


def backfill(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backfill: run past seasons through the work pool in chunks."""
    needs_prefect_server("it runs through the work pool: set PREFECT_API_URL to the server "
                         "`gridiron deploy` used, and start a worker (gridiron schedule)")
    prefect_environment(config)
    from deployments.backfill import BackfillError, backfill

    try:
        for line in backfill(args.first, args.last, args.chunk, args.wait):
            print(line, flush=True)
    except BackfillError as error:
        raise CommandError(str(error)) from None
    return 0


RUN = Command(
    "run", "run the pipeline once, now (incremental; --full-refresh refetches every partition and rebuilds every table)",
    run, (arg("--full-refresh", action="store_true", help="refetch and rebuild everything"),
          arg("--quiet", action="store_true", help="print only the result (or the failure)")))
DEPLOY = Command(
    "deploy", "create or update the work pool, the notification blocks, the deployments (cron from "
              "schedule_interval and schedule_time, UTC) and the gridiron-* automations; says what changed",
    deploy)
SCHEDULE = Command("schedule", "deploy, then start a worker on the pool (runs on the schedule)", schedule)
BACKFILL = Command(
    "backfill", "run past seasons through the work pool, one ncaa-pipeline/backfill run per --chunk of "
                "seasons (queued one after another: one warehouse writer); --wait follows them to their end",
    backfill, (arg("--from", dest="first", type=int, required=True, metavar="YYYY"),
               arg("--to", dest="last", type=int, required=True, metavar="YYYY"),
               arg("--chunk", type=int, default=2, help="seasons per run (default 2)"),
               arg("--wait", action="store_true", help="wait for every run; exit 1 if one did not complete")))
