"""Helpers shared by the test modules (no test module imports another; snapshot subsets and the
servers are in `gridiron.testing`, shared with the benchmarks): configs,
the `gridiron` command in a subprocess, warehouse queries, API-shaped rows and staged loads."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from gridiron.planning import partition_signature
from gridiron.sources import Partition, SnapshotSource, bundled_snapshot_dir, checksum, normalise
from gridiron.storage import PartitionLoad, StagingArea, TableOutput
from gridiron.transforms import stage_partition

REPO = Path(__file__).resolve().parents[1]
BUNDLED = bundled_snapshot_dir()
API_KEY = "test-key-123"
NOW = datetime(2026, 11, 27, tzinfo=UTC)
def write_config(path: Path, **values) -> Path:
    base = {
        "start_year": 2022,
        "end_year": 2023,
        "max_retries": 1,
        "retry_delay": 0.05,
        # box scores cost a call a week: the flow tests that count calls leave them out (test_flows
        # has the box-score run)
        "source": {"min_request_interval": 0, "http_backoff_seconds": 0.01, "timeout_seconds": 5,
                   "box_scores": False},
    }
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    path.write_text(yaml.safe_dump(base))
    return path


def gridiron(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridiron", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})}, cwd=cwd or REPO,
    )


def query(config_file: Path, sql: str, params=()):
    home = Path(yaml.safe_load(config_file.read_text())["storage"]["home"])
    with duckdb.connect(str(home / "gridiron.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def staged_files(config_file: Path) -> dict[Path, float]:
    home = Path(yaml.safe_load(config_file.read_text())["storage"]["home"])
    return {p: p.stat().st_mtime_ns for p in (home / "staging").rglob("*.parquet")}


def change_score(snapshot: Path, game_id: int, home_points: int) -> None:
    path = snapshot / "games" / "2023.json.gz"
    rows = json.loads(gzip.decompress(path.read_bytes()))
    for row in rows:
        if row["id"] == game_id:
            row["homePoints"] = home_points
    path.write_bytes(gzip.compress(json.dumps(rows).encode()))


def game(game_id, home, away, home_pts, away_pts, *, completed=True, neutral=False, conf=False,
         season_type="regular", home_conf="Big Ten", away_conf="Big Ten", home_class="fbs",
         away_class="fbs", season=2023, week=1, start="2023-09-02T19:30:00.000Z"):
    """One game as the CFBD API returns it (camelCase, team names beside ids)."""
    return {
        "id": game_id, "season": season, "week": week, "seasonType": season_type,
        "startDate": start, "startTimeTBD": False, "completed": completed, "neutralSite": neutral,
        "conferenceGame": conf, "attendance": None, "venueId": None, "venue": None,
        "homeId": home, "homeTeam": f"Team {home}", "homeConference": home_conf,
        "homeClassification": home_class, "homePoints": home_pts, "homeLineScores": None,
        "awayId": away, "awayTeam": f"Team {away}", "awayConference": away_conf,
        "awayClassification": away_class, "awayPoints": away_pts, "awayLineScores": None,
        "excitementIndex": None, "highlights": None, "notes": None,
        **{f"{side}{field}": None for side in ("home", "away")
           for field in ("PregameElo", "PostgameElo", "PostgameWinProbability")},
    }


def staged(area: StagingArea, partition: Partition, rows) -> PartitionLoad:
    """Stage rows the way the process phase does and describe them as a load."""
    data = normalise(rows)
    digest = checksum(data)
    raw = area.write_raw(data, digest)
    signature = partition_signature(partition, {partition.key: digest}, "test")
    frames = stage_partition(partition, rows).frames
    outputs = [
        TableOutput(table, str(area.write_table(frame, table, signature, 100)), frame.height)
        for table, frame in frames.items()
    ]
    return PartitionLoad(
        key=partition.key, endpoint=partition.endpoint, season=partition.season, scope=partition.scope,
        params=partition.params, checksum=digest, signature=signature, rows=len(rows),
        fetched_at=NOW, source="snapshot", calls_remaining=None, raw_path=str(raw), outputs=outputs,
    )


def real_rows(partition: Partition) -> list[dict]:
    """A partition's rows from the bundled snapshot."""
    return SnapshotSource(BUNDLED).fetch(partition).payload


def seed_monitored_warehouse(home: Path) -> Path:
    """A warehouse as the dashboard finds it after a few runs: real 2023 games and standings, three
    runs (one failed on a partition, one with a quality breach), a quarantined partition, the
    calls left, health history, a promoted model with its backtest and predictions."""
    from datetime import timedelta

    from gridiron.storage import (
        FetchRecord,
        QuarantineRecord,
        commit_partitions,
        connect,
        migrate,
        record_health,
        record_quality,
        record_run,
    )

    area = StagingArea(home)
    path = home / "gridiron.duckdb"
    t0 = NOW - timedelta(days=3)
    with connect(path) as con:
        migrate(con)
        teams, games = staged(area, Partition("teams"), real_rows(Partition("teams"))), None
        games = staged(area, Partition("games", 2023), real_rows(Partition("games", 2023)))
        lines = staged(area, Partition("lines", 2023), real_rows(Partition("lines", 2023)))
        fetches = [FetchRecord("games/2023", t0 + timedelta(days=i), "api", games.checksum, 3734, 990 - 10 * i, i == 0)
                   for i in range(3)]
        quarantine = QuarantineRecord("lines/2023", lines.checksum, "lines/2023: lines.spread: spread_within_100 fails on 2 row(s)",
                                      "[]", lines.raw_path)
        commit_partitions(con, [teams, games], fetches, "run-1", quarantined=[quarantine])
        runs = [("run-1", "completed", None, {}), ("run-2", "failed",
                 "PartitionsFailed: 1 partition(s) failed and were not loaded: lines/2023: gave up after 4 requests",
                 {"lines/2023": "gave up after 4 requests (the retry budget: max_retries + 1): server error (HTTP 503)",
                  None: "PartitionsFailed: 1 partition(s) failed and were not loaded"}),
                ("run-3", "completed", None, {})]
        for i, (run_id, status, error, errors) in enumerate(runs):
            started = t0 + timedelta(days=i)
            record_run(con, {"run_id": run_id, "flow_run_name": f"seeded-{run_id}", "started_at": started,
                             "finished_at": started + timedelta(seconds=20 + i), "status": status, "error": error,
                             "source": "api", "duration_seconds": 20.0 + i, "records_collected": 19286,
                             "records_processed": 22270, "records_loaded": 29734, "peak_rss_mb": 400.0,
                             "warnings": i, "errors": 1 if status == "failed" else 0},
                       [{"phase": p, "started_at": started + timedelta(seconds=j), "duration_seconds": 1.0 + j,
                         "records": 100 * j, "peak_rss_mb": 300.0, "status": "completed"}
                        for j, p in enumerate(("collect", "process", "train", "load", "validate", "backup"))],
                       errors)
            record_quality(con, run_id, "validate", [
                {"table_name": "games", "rows": 3734, "score": 1.0},
                {"table_name": "lines", "rows": 2934, "score": 0.7 if run_id == "run-3" else 0.99},
                {"table_name": "overall", "rows": 6668, "score": 0.85 if run_id == "run-3" else 0.995}], 0.8)
            record_health(con, [{"name": "cpu", "healthy": True, "value": 20.0 + 5 * i, "threshold": 95.0},
                                {"name": "memory", "healthy": True, "value": 40.0, "threshold": 90.0},
                                {"name": "disk", "healthy": True, "value": 55.0, "threshold": 90.0}], started)
        report = {"season": 2023, "games": 792,
                  "model": {"su_accuracy": 0.71, "mae": 12.9, "brier": 0.189, "log_loss": 0.55, "ats": 0.5},
                  "baselines": {"vegas": {"su_accuracy": 0.731, "mae": 12.2, "brier": 0.175},
                                "elo": {"su_accuracy": 0.70, "mae": 13.4, "brier": 0.19}},
                  "calibration": [{"bin": "0.2-0.3", "games": 50, "predicted": 0.25, "observed": 0.3},
                                  {"bin": "0.7-0.8", "games": 90, "predicted": 0.75, "observed": 0.72}]}
        con.execute("INSERT INTO model_runs (version, trained_at, backtest_season, games, su_accuracy, mae, brier, "
                    "is_promoted, decision, metrics) VALUES ('m-1', ?, 2023, 792, 0.71, 12.9, 0.189, true, 'promoted', ?)",
                    [t0, json.dumps(report)])
        # three games without a result, kicking off after now (so upcoming), one the ratings barely know;
        # a fourth past kickoff without a result (unscored)
        unplayed = con.execute("SELECT game_id FROM games WHERE NOT has_result ORDER BY game_id LIMIT 4").fetchall()
        for i, (game_id,) in enumerate(unplayed[:3]):
            con.execute("UPDATE games SET start_date = now() + to_days(?) WHERE game_id = ?", [3 + i, game_id])
            con.execute("INSERT INTO predictions (game_id, model_version, home_win_prob, predicted_margin, "
                        "generated_at, basis_games, is_low_confidence) VALUES (?, 'm-1', 0.62, 3.5, now(), ?, ?)",
                        [game_id, 2 if i == 2 else 30, i == 2])
        # the ledger: two games of Michigan's 2023 week 1 and 2, forecast the day before kickoff
        played = con.execute("SELECT game_id, start_date FROM games WHERE has_result AND home_team = 'Michigan' "
                             "ORDER BY start_date LIMIT 2").fetchall()
        for game_id, kickoff in played:
            con.execute("INSERT INTO forecasts VALUES (?, 'm-1', 'm-1', ?, 0.8, 21.0)",
                        [game_id, kickoff - timedelta(days=1)])
    return path
