"""The commands on the warehouse: what it holds (`status`), its backups (`backup`, `restore`) and
a backtest of the model on it (`backtest`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime

from cli.commands.base import Command, CommandError, arg, prefect_environment
from cli.console import console
from gridiron.config import PipelineConfig

STATUS_GAMES = 20  # of next week's games, how many `gridiron status` prints


def status(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron status: what the warehouse holds, the recent runs, quality and forecasts."""
    from gridiron import clock
    from gridiron.forecast_view import how_we_did, next_week, pick_rows, still_upcoming
    from gridiron.storage import (
        abandoned_run,
        connect,
        forecast_scores,
        schema_version,
        unscored_games,
        upcoming_forecasts,
        warehouse_status,
        weekly_ledger,
    )

    path = config.warehouse_path
    if not path.exists():
        raise CommandError(f"no warehouse at {path} yet: run 'gridiron run' first")
    with connect(path, read_only=True) as con:
        if schema_version(con) == 0:
            raise CommandError(f"{path} is not a gridiron warehouse (no schema_version table)")
        status = warehouse_status(con)
        forecasts = forecast_scores(con)
        now = clock.now()
        upcoming, ledger = upcoming_forecasts(con), weekly_ledger(con)
        unscored = unscored_games(con, now)
        gone = abandoned_run(con, config.home)
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
    ahead = still_upcoming(upcoming, now)
    if ahead.height:
        week = next_week(ahead)
        zone = datetime.now().astimezone().tzname()
        print(f"next week's forecasts ({ahead.height} games still to kick off; as of "
              f"{week['generated_at'].max():%Y-%m-%d %H:%M} UTC; kickoff in {zone}):")
        for row in pick_rows(week.head(STATUS_GAMES)):
            print(f"  {row['kickoff']}  {row['game']:<44} {row['pick']:<30} {row['win probability']:>4}  "
                  f"line {row['line']}" + (f"  ({row['confidence']})" if row["confidence"] else ""))
        if week.height > STATUS_GAMES:
            print(f"  ... and {week.height - STATUS_GAMES} more games that week (the dashboard lists them all)")
    else:
        print(f"no forecasts: no game without a result kicks off after {now:%Y-%m-%d %H:%M} UTC")
    if unscored:
        print(f"{unscored} game(s) past kickoff have no result yet: unscored, not forecast")
    if ledger.height:
        print("how we did (FBS v FBS; each week, the last forecast before kickoff; the line on the games that have one):")
        print(f"  {'week':<18} {'games':>5} {'straight up':>11} {'MAE':>5} {'Brier':>6}   {'with line':>9} "
              f"{'we':>6} {'line':>6}")
        for row in how_we_did(ledger.head(5)):
            print(f"  {row['week']:<18} {row['games']:>5} {row['straight up']:>11} {row['MAE']:>5} {row['Brier']:>6}   "
                  f"{row['games with a line']:>9} {row['we, on those']:>6} {row['the line']:>6}")
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
    print("recent runs:" if status.recent_runs or gone else "no runs recorded")
    if gone:
        print(f"  {gone.get('started_at', '?')[:19].replace('T', ' ')} gone      "
              f"{gone.get('flow_run_name') or gone['run_id']} was left Running by a process that is gone (pid "
              f"{gone.get('pid')} on {gone.get('host')}) and never recorded its end; 'gridiron run' starts a new one")
    for started, state, seconds, changed, loaded, error in status.recent_runs:
        line = f"  {started:%Y-%m-%d %H:%M:%S} {state:<9} {seconds or 0:7.1f}s  {changed or 0} changed, {loaded or 0} rows"
        print(line + (f"  ({error.splitlines()[0][:100]})" if error else ""))
    return 0


def backup(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backup: make a verified backup now, or list the backups."""
    from gridiron.storage import backup_damage, list_backups

    if args.list:
        backups = list_backups(config.home / "backups")
        if not backups:
            print(f"no backups in {config.home / 'backups'}")
            return 0
        print(f"{'backup':<26} {'created (UTC)':<20} {'verified':<9} {'size':>9}  tables  reason")
        for info in backups:  # each file checked against its checksum again: a backup damaged since says so
            problem = backup_damage(info)
            no_key = bool(problem and info.key_id and "not available" in problem)
            verified = "NO KEY" if no_key else "DAMAGED" if problem else "yes" if info.verified else "NO"
            reason = info.reason + (f" (encrypted, key {info.key_id})" if info.key_id else "")
            print(
                f"{info.name:<26} {info.created_at:%Y-%m-%d %H:%M:%S}  {verified:<9}"
                f"{info.size_bytes / 1e6:>7.1f} MB  {len(info.tables):>6}  "
                + (f"{problem.split(': ', 1)[-1]}; a restore passes over it" if problem else reason)
            )
        return 0
    if args.encrypt_existing:
        return _encrypt_existing(config)
    if not config.warehouse_path.exists():
        raise CommandError(f"no warehouse at {config.warehouse_path} to back up")
    prefect_environment(config)
    from flows import backup

    with console():
        result = backup(config.model_copy(update={"enable_backup": True}), None, True)
    print(f"backup {result.backup} written and verified; {result.kept} backups kept "
          f"({result.total_bytes / 1e6:.1f} MB)")
    return 0


def _encrypt_existing(config: PipelineConfig) -> int:
    """gridiron backup --encrypt-existing: encrypt the plain backups with GRIDIRON_BACKUP_KEY."""
    from gridiron.storage import list_backups
    from gridiron.storage.backup import BackupError, encrypt_backup
    from gridiron.storage.encryption import BackupKeyError, current_key

    try:
        key = current_key()
    except BackupKeyError as error:
        raise CommandError(str(error)) from None
    plain = [info for info in list_backups(config.home / "backups") if info.encryption is None]
    for info in plain:
        try:
            encrypt_backup(info, key)
        except BackupError as error:
            raise CommandError(f"{error} (the backups before it are encrypted; it and the rest are as they were)") from None
        print(f"backup {info.name} encrypted with key {key.key_id} and verified")
    print(f"{len(plain)} plain backups encrypted" if plain else "no plain backups: nothing to encrypt")
    return 0


def restore(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron restore: restore the warehouse as it was at a point in time."""
    from gridiron.storage import choose_backup, list_backups, parse_point_in_time

    # a bad time, or no backup old enough, fails here in one line, before Prefect starts
    choose_backup(list_backups(config.home / "backups"), parse_point_in_time(args.at))
    prefect_environment(config)
    from flows import restore_warehouse

    print(f"gridiron: restoring the warehouse to {args.at} ...", file=sys.stderr, flush=True)
    with console():
        result = restore_warehouse(args.at, config_path=args.config)
    print(result.describe(parse_point_in_time(args.at)))
    return 0


def backtest(config: PipelineConfig, args: argparse.Namespace) -> int:
    """gridiron backtest: backtest the model on a season and print its metrics."""
    import json

    from gridiron.model.history import keep_backtest, season_backtest

    started = time.perf_counter()
    with console():
        report = season_backtest(config, args.season)  # HistoryUnavailable / NotEnoughHistory say why
    print(f"gridiron: backtest of {args.season} completed in {time.perf_counter() - started:.1f} s "
          f"({report.games} FBS v FBS games)", file=sys.stderr, flush=True)
    keep_backtest(config, args.season, report)
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


STATUS = Command("status", "what the warehouse holds and how the last runs went", status)
BACKUP = Command(
    "backup", "back the warehouse up now (verified by a restore); --list shows the backups a restore can use, "
              "each checked against its checksums again; --encrypt-existing encrypts the plain ones (GRIDIRON_BACKUP_KEY)",
    backup, (arg("--list", action="store_true", help="list the backups a restore can use"),
             arg("--encrypt-existing", action="store_true",
                 help="encrypt the plain backups with GRIDIRON_BACKUP_KEY, keeping their times")))
BACKTEST = Command(
    "backtest", "walk-forward backtest of the model on a season beside the baselines (home team, Elo, "
                "Vegas line); --json prints one JSON object",
    backtest, (arg("--season", type=int, required=True, metavar="YYYY"),
               arg("--json", action="store_true", help="print one JSON object")))
RESTORE = Command(
    "restore", "bring the warehouse back to the latest verified backup at or before TIME (ISO 8601, UTC; "
               "a date alone means the end of that day)",
    restore, (arg("--at", required=True, metavar="TIME", help="ISO 8601 time (UTC), e.g. 2026-11-27T06:00:00Z"),))
