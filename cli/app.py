"""`gridiron` command line (also `python -m gridiron`).

Every command exits 0 on success and non-zero with one clear line on stderr on failure. Flows are
imported inside a command, after the environment Prefect reads at import is set; the warehouse's
queries are asked of `gridiron.storage`.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from cli.console import console
from gridiron import __version__
from gridiron.config import ConfigError, PipelineConfig, load_config

ENVIRONMENT_HELP = """\
environment:
  CFBD_API_KEY           with it the source is the live CFBD API; without it, the bundled snapshot
  CFBD_BASE_URL          the API's base URL (default https://api.collegefootballdata.com)
  GRIDIRON_SNAPSHOT_DIR  read the snapshot from this directory instead of the bundled one
  GRIDIRON_CONFIG        another config file (default config/pipeline_config.yaml)
  GRIDIRON_HOME          the data directory (default ./data): gridiron.duckdb, staging, cache
  GRIDIRON_SMTP_HOST, _PORT, _USERNAME, _PASSWORD, _SECURITY (ssl|starttls|none), _FROM
                         the SMTP server `deploy` gives the email notifications
  GRIDIRON_SLACK_WEBHOOK, GRIDIRON_WEBHOOK_URL
                         win over slack_webhook / webhook_url in the config
"""

# each command's description, stated once: the subcommand's help and the list in `gridiron help`
COMMANDS: dict[str, str] = {
    "run": "run the pipeline once, now (incremental; --full-refresh refetches every partition and "
           "rebuilds every table)",
    "status": "what the warehouse holds and how the last runs went",
    "deploy": "create or update the work pool, the notification blocks, the deployments (cron from "
              "schedule_interval and schedule_time, UTC) and the gridiron-* automations; says what changed",
    "schedule": "deploy, then start a worker on the pool (runs on the schedule)",
    "backfill": "run past seasons through the work pool, one ncaa-pipeline/backfill run per --chunk of "
                "seasons (queued one after another: one warehouse writer); --wait follows them to their end",
    "backup": "back the warehouse up now (verified by a restore); --list shows the backups a restore can use",
    "backtest": "walk-forward backtest of the model on a season beside the baselines (home team, Elo, "
                "Vegas line); --json prints one JSON object",
    "restore": "bring the warehouse back to the latest verified backup at or before TIME (ISO 8601, UTC; "
               "a date alone means the end of that day)",
    "health": "CPU, memory, disk, warehouse, CFBD API, Prefect API, last success, duration, stuck runs: "
              "exits 1 naming the failing checks",
    "monitor": "serve the dashboard (runs, phases, quality, errors, system, standings, predictions, model "
               "quality) on http://127.0.0.1:8505; --host and --port to change (loopback unless told)",
    "help": "this text",
}


class CommandError(RuntimeError):
    """A failure to report as one line."""


def _prefect_environment(config: PipelineConfig) -> None:
    """Settings Prefect reads when it is imported: set before the flows are imported."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gridiron")
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(config.home / "results"))
    # without PREFECT_API_URL a temporary server starts; Prefect's 20 s is too short for a busy
    # 2-core machine (its wait counts 0.1 s per poll, however long a poll takes)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not os.environ.get("PREFECT_API_URL"):
        # the temporary server shares our stderr; cut short at exit it logs tracebacks of the
        # events it had not flushed, after the command's last line
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def _prefect_api() -> str:
    url = os.environ.get("PREFECT_API_URL")
    return f"the Prefect API at {url}" if url else (
        "a temporary local Prefect server (set PREFECT_API_URL to use a running one)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridiron",
        description="College football data pipeline: CFBD -> polars -> DuckDB, on Prefect 3.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gridiron {__version__}")
    parser.add_argument("--config", help="config file (default: $GRIDIRON_CONFIG or config/pipeline_config.yaml)")
    commands = parser.add_subparsers(dest="command", metavar="command")
    sub = {name: commands.add_parser(name, description=text) for name, text in COMMANDS.items()}
    sub["run"].add_argument("--full-refresh", action="store_true", help="refetch and rebuild everything")
    sub["run"].add_argument("--quiet", action="store_true", help="print only the result (or the failure)")
    sub["backup"].add_argument("--list", action="store_true", help="list the backups a restore can use")
    sub["backtest"].add_argument("--season", type=int, required=True, metavar="YYYY")
    sub["backtest"].add_argument("--json", action="store_true", help="print one JSON object")
    sub["monitor"].add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sub["monitor"].add_argument("--port", type=int, default=8505, help="port (default 8505)")
    sub["backfill"].add_argument("--from", dest="first", type=int, required=True, metavar="YYYY")
    sub["backfill"].add_argument("--to", dest="last", type=int, required=True, metavar="YYYY")
    sub["backfill"].add_argument("--chunk", type=int, default=2, help="seasons per run (default 2)")
    sub["backfill"].add_argument("--wait", action="store_true", help="wait for every run; exit 1 if one did not complete")
    sub["restore"].add_argument("--at", required=True, metavar="TIME",
                                help="ISO 8601 time (UTC), e.g. 2026-11-27T06:00:00Z")
    parser.epilog = _commands_help(sub) + "\n" + ENVIRONMENT_HELP
    return parser


def _commands_help(sub: dict[str, argparse.ArgumentParser]) -> str:
    """`commands:` and one wrapped entry per command, its usage from its own parser."""
    import textwrap

    lines = ["commands:"]
    for name, parser in sub.items():
        usage = " ".join([name] + [
            (f"{a.option_strings[0]} {a.metavar or a.dest.upper()}" if a.required else f"[{a.option_strings[0]}]")
            if a.nargs != 0 else f"[{a.option_strings[0]}]"
            for a in parser._actions if a.option_strings and a.dest != "help"
        ])
        wrapped = textwrap.wrap(COMMANDS[name], 70)
        lines.append(f"  {usage:<22} {wrapped[0]}" if len(usage) <= 22 else f"  {usage}\n{'':<25}{wrapped[0]}")
        lines += [f"{'':<25}{rest}" for rest in wrapped[1:]]
    return "\n".join(lines) + "\n"


def cmd_run(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron run: run the pipeline once, on the configured Prefect server or a temporary one."""
    _prefect_environment(config)
    from flows import ncaa_pipeline  # after the environment is set

    if not args.quiet:
        print(f"gridiron: running ncaa-pipeline on {_prefect_api()}", file=sys.stderr, flush=True)
    if config.enable_notifications and not os.environ.get("PREFECT_API_URL"):
        print("gridiron: note: notifications are sent by the automations 'gridiron deploy' makes on a "
              "Prefect server; this temporary server has none, so this run notifies nobody", file=sys.stderr)
    with console(quiet=args.quiet):  # after Prefect set up its logging on import
        result = ncaa_pipeline(full_refresh=args.full_refresh, config_path=args.config)
    tables = ", ".join(f"{t} {n}" for t, n in sorted(result.rows_by_table.items())) or "nothing changed"
    print(
        f"ncaa-pipeline completed: {len(result.partitions_loaded)} partitions loaded from "
        f"{result.source} ({tables}); warehouse {result.warehouse}"
    )
    if result.not_fetched:
        print(f"warning: {len(result.not_fetched)} partitions due were not fetched for the API call budget "
              f"(they wait for the next run): {', '.join(sorted(result.not_fetched))}")
    return 0


def cmd_status(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron status: what the warehouse holds, the recent runs, quality and forecasts."""
    from gridiron.storage import connect, forecast_scores, schema_version, warehouse_status

    path = config.warehouse_path
    if not path.exists():
        raise CommandError(f"no warehouse at {path} yet: run 'gridiron run' first")
    with connect(path, read_only=True) as con:
        if schema_version(con) == 0:
            raise CommandError(f"{path} is not a gridiron warehouse (no schema_version table)")
        status = warehouse_status(con)
        forecasts = forecast_scores(con)
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    print(f"warehouse {path} (schema version {status.schema_version}, {size / 1e6:.1f} MB)")
    for table, count in status.counts.items():
        print(f"  {table:<20} {count:>8} rows")
    first, last, seasons = status.seasons
    print(f"  seasons {first}-{last} ({seasons})" if seasons else "  no games yet")
    if status.quality:
        score, threshold, passed, when = status.quality
        print(f"data quality {score:.3f} (threshold {threshold:.2f}, "
              f"{'passed' if passed else 'BELOW THRESHOLD'}) at {when:%Y-%m-%d %H:%M:%S}")
    for key, reason in status.quarantined:
        print(f"quarantined {key}: {reason.split(': ', 1)[-1][:150]}")
    scored = forecasts.filter(forecasts["scored"] > 0) if forecasts.height else forecasts
    if scored.height:
        print("forecasts as issued, scored on the games played since:")
    for row in scored.head(3).iter_rows(named=True):
        su = f"{100 * row['su_accuracy']:.1f}% straight up, " if row["su_accuracy"] is not None else ""
        print(f"  {row['issued_at']:%Y-%m-%d %H:%M} {row['model_version']}: {row['scored']} of {row['forecasts']} "
              f"played, {su}MAE {row['mae']:.1f}" + (f", Brier {row['brier']:.3f}" if row["brier"] is not None else ""))
    api_url = os.environ.get("PREFECT_API_URL")
    if api_url:
        from cli.monitor.data import read_prefect

        live = read_prefect(api_url)
        if live.problem:
            print(f"Prefect: {live.problem}")
        else:
            for run in live.running:
                print(f"running now: {run.name}, phase {run.phase or 'starting'} ({run.tasks_done}/{run.tasks_total} tasks)")
            print(f"next scheduled run: {live.next_scheduled:%Y-%m-%d %H:%M} UTC" if live.next_scheduled
                  else "next scheduled run: none (run 'gridiron deploy' to schedule)")
    print("recent runs:" if status.recent_runs else "no runs recorded")
    for started, state, seconds, changed, loaded, error in status.recent_runs:
        line = f"  {started:%Y-%m-%d %H:%M:%S} {state:<9} {seconds or 0:7.1f}s  {changed or 0} changed, {loaded or 0} rows"
        print(line + (f"  ({error.splitlines()[0][:100]})" if error else ""))
    return 0


def cmd_backup(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backup: make a verified backup now, or list the backups."""
    from gridiron.storage import list_backups

    if args.list:
        backups = list_backups(config.home / "backups")
        if not backups:
            print(f"no backups in {config.home / 'backups'}")
            return 0
        print(f"{'backup':<26} {'created (UTC)':<20} {'verified':<9} {'size':>9}  tables  reason")
        for info in backups:
            print(
                f"{info.name:<26} {info.created_at:%Y-%m-%d %H:%M:%S}  {'yes' if info.verified else 'NO':<9}"
                f"{info.size_bytes / 1e6:>7.1f} MB  {len(info.tables):>6}  {info.reason}"
            )
        return 0
    if not config.warehouse_path.exists():
        raise CommandError(f"no warehouse at {config.warehouse_path} to back up")
    _prefect_environment(config)
    from flows import backup

    with console():
        result = backup(config.model_copy(update={"enable_backup": True}), None, True)
    print(f"backup {result.backup} written and verified; {result.kept} backups kept "
          f"({result.total_bytes / 1e6:.1f} MB)")
    return 0


def cmd_restore(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron restore: restore the warehouse as it was at a point in time."""
    from gridiron.storage import choose_backup, list_backups, parse_point_in_time

    # a bad time, or no backup old enough, fails here in one line, before Prefect starts
    choose_backup(list_backups(config.home / "backups"), parse_point_in_time(args.at))
    _prefect_environment(config)
    from flows import restore_warehouse

    print(f"gridiron: restoring the warehouse to {args.at} ...", file=sys.stderr, flush=True)
    with console():
        result = restore_warehouse(args.at, config_path=args.config)
    print(result.describe(parse_point_in_time(args.at)))
    return 0


def cmd_backtest(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backtest: backtest the model on a season and print its metrics."""
    import json
    from datetime import datetime

    from gridiron.model.history import season_backtest
    from gridiron.model.training import TrainSettings
    from gridiron.storage import connect, migrate, record_backtest

    started = time.perf_counter()
    with console():
        report = season_backtest(config, args.season)  # HistoryUnavailable / NotEnoughHistory say why
    print(f"gridiron: backtest of {args.season} completed in {time.perf_counter() - started:.1f} s "
          f"({report.games} FBS v FBS games)", file=sys.stderr, flush=True)
    with connect(config.warehouse_path) as con:  # kept beside the model runs
        migrate(con)
        record_backtest(con, args.season, report.as_json(), TrainSettings.from_config(config).as_dict(),
                        datetime.now(UTC))
    if args.json:
        print(json.dumps(report.as_json()))
        return 0
    m = report.model
    print(f"walk-forward backtest, season {args.season}, {report.games} FBS v FBS games")
    print(f"{'':<22}{'straight up':>12}{'MAE':>8}{'Brier':>8}{'log loss':>10}{'ATS':>8}{'games':>7}")
    rows = [("model", m)] + [(name, metrics) for name, metrics in report.baselines.items()]
    for name, metrics in rows:
        ats = f"{metrics['ats']:.3f}" if metrics.get("ats") is not None else "-"
        print(f"{name:<22}{metrics['su_accuracy']:>12.3f}{metrics['mae']:>8.2f}{metrics['brier']:>8.3f}"
              f"{metrics['log_loss']:>10.3f}{ats:>8}{metrics['games']:>7}")
    if report.market:
        m2 = report.market
        print(f"\nwith the market feature set (betting lines as a feature; not the headline model):\n"
              f"{'model + market':<22}{m2['su_accuracy']:>12.3f}{m2['mae']:>8.2f}{m2['brier']:>8.3f}"
              f"{m2['log_loss']:>10.3f}{'-':>8}{m2['games']:>7}")
    return 0


def cmd_health(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron health: run the health checks and print them."""
    from gridiron.health import record_checks, run_checks

    api_url = os.environ.get("PREFECT_API_URL")
    running = None
    if api_url:
        from tasks.health import running_pipeline_runs

        try:
            running = running_pipeline_runs()
        except Exception as error:  # noqa: BLE001 - the Prefect API check names the problem
            print(f"(could not read running runs from {api_url}: {str(error).splitlines()[0]})")
    checks = run_checks(config, prefect_api_url=api_url, running=running)
    record_checks(config, checks)  # the dashboard's health history
    for check in checks:
        print(f"{'ok  ' if check.healthy else 'FAIL'} {check.name:<13} {check.detail}")
    failing = [c for c in checks if not c.healthy]
    if failing:
        raise CommandError("; ".join(f"{c.name}: {c.detail}" for c in failing))
    return 0


def cmd_monitor(config: PipelineConfig, args: argparse.Namespace) -> int:
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
    app = Path(__file__).resolve().parent / "monitor" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
               "--server.port", str(args.port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
               "--client.toolbarMode", "minimal"]
    if args.config:
        command += ["--", "--config", args.config]
    print(f"gridiron monitor: http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def cmd_deploy(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron deploy: create or update the work pool, deployments, automations and blocks."""
    if not os.environ.get("PREFECT_API_URL"):
        raise CommandError(
            "deploy needs a running Prefect server: start one (prefect server start) and set PREFECT_API_URL"
        )
    _prefect_environment(config)
    from deployments.setup import deploy

    for line in deploy(config, args.config or os.environ.get("GRIDIRON_CONFIG")):
        print(line)
    return 0


def cmd_backfill(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backfill: run past seasons through the work pool in chunks."""
    if not os.environ.get("PREFECT_API_URL"):
        raise CommandError("it runs through the work pool: set PREFECT_API_URL to the server "
                           "`gridiron deploy` used, and start a worker (gridiron schedule)")
    _prefect_environment(config)
    from deployments.backfill import BackfillError, backfill

    try:
        for line in backfill(args.first, args.last, args.chunk, args.wait):
            print(line, flush=True)
    except BackfillError as error:
        raise CommandError(str(error)) from None
    return 0


def cmd_schedule(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron schedule: deploy, then start a worker that runs the deployments on their schedule."""
    cmd_deploy(config, args)
    from deployments.setup import WORK_POOL

    prefect = Path(sys.executable).with_name("prefect")
    print(f"starting a worker on {WORK_POOL} (Ctrl-C twice to stop)", flush=True)
    os.execv(str(prefect), [str(prefect), "worker", "start", "--pool", WORK_POOL, "--type", "process"])
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, load the config and run the command; the exit status says how it ended."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "help"):
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):  # one line per request to Prefect's own API otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        handler = {
            "run": cmd_run, "status": cmd_status, "backup": cmd_backup, "restore": cmd_restore,
            "backtest": cmd_backtest, "health": cmd_health, "deploy": cmd_deploy,
            "schedule": cmd_schedule, "monitor": cmd_monitor, "backfill": cmd_backfill,
        }[args.command]
        return handler(config, args)
    except ConfigError as error:
        print(f"gridiron: config error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gridiron: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for people; the flow logs hold the traceback
        _last_line(f"gridiron: {args.command} failed: {_one_line(error)}")
        return 1


_last_words: list[str] | None = None  # under `entry`: said at exit


def _last_line(text: str) -> None:
    """The failure's one line on stderr: said now, or under `entry` at exit, after everything else."""
    if _last_words is None:
        print(text, file=sys.stderr)
    else:
        _last_words.append(text)


def entry() -> int:
    """The program's entry point: `main`, after which the command has said its last line, so
    Prefect's at-exit INFO line ("Stopping temporary server ...") is kept off the terminal.

    A failure's line is said at exit, after Prefect's own exit handlers: the temporary server
    shares our stderr, and stopped then on a busy machine its shutdown can print a traceback that
    would otherwise land under the line (this handler, registered first, runs last)."""
    global _last_words
    words = _last_words = []
    atexit.register(lambda: [print(text, file=sys.stderr, flush=True) for text in words])
    code = main()
    logging.getLogger("prefect").setLevel(logging.WARNING)
    return code


def _refused(api: str, response) -> str:
    """A request the Prefect API answered with an error status, in one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    detail = " ".join(str(detail).split())[:300]
    line = f"the Prefect API at {api} refused a request (HTTP {response.status_code}: {detail})"
    if "parameters must be less than" in detail:
        line += "; raise PREFECT_SERVER_API_MAX_PARAMETER_SIZE on the server"
    return line


def _one_line(error: BaseException) -> str:
    """The error's first line; one that came from the Prefect API not answering says so."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    seen, cause = set(), error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        request = getattr(cause, "_request", None)  # httpx keeps the failed request there
        if api and request is not None and str(request.url).startswith(api):
            response = getattr(cause, "response", None)
            if response is not None:  # it answered, and refused
                return _refused(api, response)
            return (f"the Prefect API at {api} does not answer ({message}): the run could not record its "
                    "state there; start the Prefect server, then run again")
        cause = cause.__cause__ or cause.__context__
    return message


if __name__ == "__main__":
    sys.exit(main())
