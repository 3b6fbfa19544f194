"""Operations records: runs and their phases, quality reports, backtests, and what `status` shows.

- `pipeline_runs` (one row per run) and `pipeline_run_phases` (run x phase): durations, records,
  peak memory, status, error;
- `quality_reports` (run x stage x table, plus a row named `overall`): dimension scores, threshold,
  passed, failed checks;
- `pipeline_run_errors` (the partitions a run could not load, and the run's own error) and
  `health_checks` (each check each time it ran);
- `model_runs` also takes a row per `gridiron backtest` (decision `backtest only`);
- `monitor_frames`: what the dashboard reads, one query per view.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from gridiron import clock
from gridiron.storage.db import read_frame, transaction
from gridiron.storage.loading import table_counts
from gridiron.storage.runlock import lock_state
from gridiron.storage.schema import schema_version

RUN_COLUMNS = (
    "run_id", "flow_run_name", "started_at", "finished_at", "status", "error", "source",
    "is_full_refresh", "partitions_total", "partitions_changed", "records_collected",
    "records_processed", "records_loaded", "duration_seconds", "peak_rss_mb", "warnings", "errors",
)
PHASE_COLUMNS = ("phase", "started_at", "duration_seconds", "records", "peak_rss_mb", "status")
QUALITY_DIMENSIONS = ("rows", "completeness", "validity", "uniqueness", "consistency", "timeliness")


def record_run(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], phases: Sequence[Mapping[str, Any]],
    errors: Mapping[str | None, str] | None = None,
) -> None:
    """Insert or replace one run's row in `pipeline_runs`, its phases and its errors (partition key
    -> message; None for the run's own error), in one transaction."""
    now = datetime.now(UTC)
    with transaction(con):
        con.execute("DELETE FROM pipeline_run_errors WHERE run_id = ?", [run["run_id"]])
        for partition, message in (errors or {}).items():
            con.execute("INSERT INTO pipeline_run_errors VALUES (?, ?, ?, ?)", [run["run_id"], partition, message, now])
        con.execute(
            f"INSERT OR REPLACE INTO pipeline_runs ({', '.join(RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in RUN_COLUMNS)})",
            [run.get(column) for column in RUN_COLUMNS],
        )
        con.execute("DELETE FROM pipeline_run_phases WHERE run_id = ?", [run["run_id"]])
        for phase in phases:
            con.execute(
                f"INSERT INTO pipeline_run_phases (run_id, {', '.join(PHASE_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' for _ in PHASE_COLUMNS)})",
                [run["run_id"], *(phase[column] for column in PHASE_COLUMNS)],
            )


def record_quality(
    con: duckdb.DuckDBPyConnection, run_id: str, stage: str, rows: Sequence[Mapping[str, Any]], threshold: float
) -> None:
    """Store a run's quality report (one row per table and one named 'overall'), own transaction."""
    now = datetime.now(UTC)
    with transaction(con):
        con.execute("DELETE FROM quality_reports WHERE run_id = ? AND stage = ?", [run_id, stage])
        for row in rows:
            con.execute(
                "INSERT INTO quality_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, stage, row["table_name"], now, *(row.get(d) for d in QUALITY_DIMENSIONS),
                 row["score"], threshold, row["score"] >= threshold, row.get("failed_checks")],
            )


def last_quality_rows(con: duckdb.DuckDBPyConnection, stage: str) -> list[dict[str, Any]]:
    """The per-table rows (table and dimensions) of a stage's most recent report; [] when none."""
    if schema_version(con) < 2:
        return []
    rows = con.execute(
        f"SELECT table_name, {', '.join(QUALITY_DIMENSIONS)} FROM quality_reports "
        "WHERE stage = ? AND table_name <> 'overall' AND run_id = ("
        "  SELECT run_id FROM quality_reports WHERE stage = ? ORDER BY created_at DESC LIMIT 1)",
        [stage, stage],
    ).fetchall()
    return [dict(zip(("table", *QUALITY_DIMENSIONS), row)) for row in rows]


def record_backtest(
    con: duckdb.DuckDBPyConnection, season: int, report: Mapping[str, Any], settings: Mapping[str, Any],
    now: datetime,
) -> str:
    """Keep a `gridiron backtest` beside the model runs (never promoted); returns its version."""
    version = f"backtest-{season}-{now:%Y%m%dT%H%M%S}"
    m = report["model"]
    con.execute(
        "INSERT OR REPLACE INTO model_runs (version, trained_at, backtest_season, games, su_accuracy, mae, "
        "brier, log_loss, ats, is_promoted, decision, settings, metrics) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false, 'backtest only', ?, ?)",
        [version, now, season, report["games"], m["su_accuracy"], m["mae"], m["brier"], m["log_loss"],
         m["ats"], json.dumps(settings, default=str), json.dumps(report)],
    )
    return version


@dataclass(frozen=True)
class WarehouseStatus:
    """What `gridiron status` shows of a warehouse."""

    schema_version: int
    counts: dict[str, int]
    seasons: tuple[int | None, int | None, int]  # first, last, how many
    recent_runs: list[tuple[datetime, str, float | None, int | None, int | None, str | None]]
    quality: tuple[float, float, bool, datetime] | None  # score, threshold, passed, when
    quarantined: list[tuple[str, str]]  # partition key, reason: held back and not loaded since


def warehouse_status(con: duckdb.DuckDBPyConnection, runs: int = 5) -> WarehouseStatus:
    """The warehouse as `gridiron status` shows it: schema, seasons, the recent runs, the last quality
    score and the partitions held back in quarantine."""
    version = schema_version(con)
    seasons = con.execute("SELECT min(season), max(season), count(DISTINCT season) FROM games").fetchone()
    recent = con.execute(
        "SELECT started_at, status, duration_seconds, partitions_changed, records_loaded, error "
        "FROM pipeline_runs ORDER BY started_at DESC LIMIT ?", [runs]
    ).fetchall()
    quality = held = None
    if version >= 2:
        quality = con.execute(
            "SELECT score, threshold, passed, created_at FROM quality_reports WHERE table_name = 'overall' "
            "AND stage = 'validate' ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        held = con.execute(
            "SELECT q.partition_key, q.reason FROM raw_quarantine q LEFT JOIN raw_manifest m "
            "USING (partition_key) WHERE m.loaded_at IS NULL OR q.quarantined_at > m.loaded_at ORDER BY 1"
        ).fetchall()
    return WarehouseStatus(version, table_counts(con), tuple(seasons), recent, quality, held or [])


def abandoned_run(con: duckdb.DuckDBPyConnection, home: str | Path) -> dict[str, Any] | None:
    """The last run to take the home's run lock, when no live process holds the lock and the run
    never recorded its end in `pipeline_runs` (its process was killed, or could not write): the
    lock's record of it (run id, flow run name, pid, host, start). None otherwise."""
    record, held = lock_state(home)
    if held or not record or not record.get("run_id"):
        return None
    recorded = con.execute("SELECT count(*) FROM pipeline_runs WHERE run_id = ?", [record["run_id"]]).fetchone()[0]
    return None if recorded else record


def record_health(con: duckdb.DuckDBPyConnection, checks: Sequence[Mapping[str, Any]], at: datetime) -> None:
    """Keep one health-check run (name, healthy, value, threshold, detail per check)."""
    with transaction(con):
        for check in checks:
            con.execute("INSERT OR REPLACE INTO health_checks VALUES (?, ?, ?, ?, ?, ?)",
                        [at, check["name"], check["healthy"], check.get("value"), check.get("threshold"),
                         check.get("detail")])


MONITOR_QUERIES: dict[str, str] = {
    "runs": "SELECT run_id, flow_run_name, started_at, finished_at, status, error, source, duration_seconds, "
            "records_collected, records_processed, records_loaded, peak_rss_mb, warnings, errors "
            "FROM pipeline_runs ORDER BY started_at",
    "phases": "SELECT p.run_id, p.phase, p.started_at, p.duration_seconds, p.records, p.status, r.started_at AS run_started_at "
              "FROM pipeline_run_phases p JOIN pipeline_runs r USING (run_id) ORDER BY p.started_at",
    "quality": "SELECT run_id, stage, table_name, created_at, score, threshold, passed FROM quality_reports "
               "WHERE stage = 'validate' ORDER BY created_at",
    "calls": "SELECT fetched_at, calls_remaining FROM raw_fetches WHERE calls_remaining IS NOT NULL ORDER BY fetched_at",
    # a partition's error is resolved once a later run loaded that partition
    "errors": "SELECT e.run_id, e.partition_key, e.message, e.created_at, r.flow_run_name, "
              "coalesce(m.loaded_at > e.created_at, false) AS is_resolved FROM pipeline_run_errors e "
              "JOIN pipeline_runs r USING (run_id) LEFT JOIN raw_manifest m ON m.partition_key = e.partition_key "
              "ORDER BY e.created_at DESC",
    "health": "SELECT checked_at, name, healthy, value, threshold, detail FROM health_checks ORDER BY checked_at",
    "standings": "SELECT season, team, conference, wins, losses, ties, win_pct, conf_wins, conf_losses, "
                 "points_for, points_against FROM standings ORDER BY season DESC, conference, win_pct DESC",
    "models": "SELECT version, trained_at, backtest_season, games, su_accuracy, mae, brier, is_promoted, decision, metrics "
              "FROM model_runs ORDER BY trained_at",
}


# each forecast batch (a train run's predictions, as issued) scored on the games played since;
# straight up and Brier leave out ties, as the backtest does
FORECAST_SCORES = """
    SELECT f.batch, min(f.generated_at) AS issued_at, any_value(f.model_version) AS model_version,
           count(*) AS forecasts, count(*) FILTER (WHERE g.has_result) AS scored,
           avg(CASE WHEN g.has_result AND g.home_points <> g.away_points
                    THEN ((f.predicted_margin > 0) = (g.home_points > g.away_points))::INTEGER END) AS su_accuracy,
           avg(CASE WHEN g.has_result THEN abs(f.predicted_margin - (g.home_points - g.away_points)) END) AS mae,
           avg(CASE WHEN g.has_result AND g.home_points <> g.away_points
                    THEN power(f.home_win_prob - (g.home_points > g.away_points)::INTEGER, 2) END) AS brier
    FROM forecasts f JOIN games g USING (game_id)
    GROUP BY f.batch ORDER BY issued_at DESC"""
FORECASTS_SINCE = 6  # the migration that made the forecasts table
BASIS_SINCE = 10  # the migration that gave predictions how much the ratings know of each side

# each game's median closing spread across providers (home side), as `backtest.vegas_lines` takes it
MEDIAN_LINE = "SELECT game_id, median(spread) AS spread FROM lines WHERE spread IS NOT NULL GROUP BY game_id"

# the champion's forecasts of games without a result, with the median closing line where one exists
# (the reader filters on kickoff: `forecast_view.still_upcoming`)
UPCOMING = f"""
    SELECT g.game_id, g.season, g.season_type, g.week, g.start_date, g.home_team, g.away_team, g.is_neutral_site,
           p.predicted_margin, p.home_win_prob, {{basis}}, p.model_version, p.generated_at, v.spread
    FROM predictions p JOIN games g USING (game_id)
    LEFT JOIN ({MEDIAN_LINE}) v USING (game_id)
    WHERE NOT g.has_result AND p.model_version = (SELECT version FROM model_runs WHERE is_promoted
                                                  ORDER BY trained_at DESC LIMIT 1)
    ORDER BY g.start_date, g.game_id"""

# per game played, the last forecast made before its kickoff, the result and the median closing line
LEDGER_GAMES = f"""
    WITH issued AS (
        SELECT f.game_id, f.generated_at, f.predicted_margin, f.home_win_prob,
               row_number() OVER (PARTITION BY f.game_id ORDER BY f.generated_at DESC, f.batch DESC) AS newest
        FROM forecasts f JOIN games g USING (game_id) WHERE f.generated_at < g.start_date)
    SELECT g.game_id, g.season, g.season_type, g.week, g.start_date, i.generated_at, i.predicted_margin,
           i.home_win_prob, g.home_points - g.away_points AS margin, v.spread,
           g.home_classification = 'fbs' AND g.away_classification = 'fbs' AS is_fbs_game
    FROM issued i JOIN games g USING (game_id)
    LEFT JOIN ({MEDIAN_LINE}) v USING (game_id)
    WHERE i.newest = 1 AND g.has_result"""

# per week played, the ledger's FBS v FBS games (as the backtest scores them) summed up, beside the
# line on the games that have one; straight up and Brier leave out ties
WEEKLY_LEDGER = f"""
    WITH scored AS ({LEDGER_GAMES})
    SELECT season, season_type, week, min(start_date) AS first_kickoff, count(*) AS games,
           avg(CASE WHEN margin <> 0 THEN ((predicted_margin > 0) = (margin > 0))::INTEGER END) AS su_accuracy,
           avg(abs(predicted_margin - margin)) AS mae,
           avg(CASE WHEN margin <> 0 THEN power(home_win_prob - (margin > 0)::INTEGER, 2) END) AS brier,
           count(spread) AS line_games,
           avg(CASE WHEN spread IS NOT NULL AND margin <> 0 THEN ((predicted_margin > 0) = (margin > 0))::INTEGER END)
               AS su_on_line_games,
           avg(CASE WHEN spread IS NOT NULL AND spread <> 0 AND margin <> 0 THEN ((spread < 0) = (margin > 0))::INTEGER END)
               AS line_su_accuracy,
           avg(CASE WHEN spread IS NOT NULL THEN abs(-spread - margin) END) AS line_mae
    FROM scored WHERE is_fbs_game GROUP BY season, season_type, week ORDER BY first_kickoff DESC"""


def upcoming_forecasts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The champion's forecasts of the games without a result, soonest first, with the line."""
    if schema_version(con) < FORECASTS_SINCE:
        return pl.DataFrame()
    basis = ("p.basis_games, p.is_low_confidence" if schema_version(con) >= BASIS_SINCE
             else "NULL::INTEGER AS basis_games, NULL::BOOLEAN AS is_low_confidence")
    return read_frame(con, UPCOMING.format(basis=basis))


def ledger_games(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every game played that was forecast before kickoff: the last such forecast, the result
    (`margin`, home minus away) and the median closing line (`spread`, home side), by kickoff."""
    if schema_version(con) < FORECASTS_SINCE:
        return pl.DataFrame()
    return read_frame(con, LEDGER_GAMES + " ORDER BY g.start_date, g.game_id")


def unscored_games(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Games past kickoff by `now` (or with no kickoff time) without a result: neither scored nor forecast."""
    return con.execute("SELECT count(*) FROM games WHERE NOT has_result AND (start_date IS NULL OR start_date <= ?)",
                       [now]).fetchone()[0]


def weekly_ledger(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """How the forecasts made before kickoff did on FBS v FBS games, one row per week played, newest first."""
    if schema_version(con) < FORECASTS_SINCE:
        return pl.DataFrame()
    return read_frame(con, WEEKLY_LEDGER)


def forecast_scores(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """What we predicted at each date against what happened: one row per forecast batch, newest
    first (`scored` of its `forecasts` have a result so far; the metrics are over those)."""
    if schema_version(con) < FORECASTS_SINCE:
        return pl.DataFrame()
    return read_frame(con, FORECAST_SCORES)


def monitor_frames(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> dict[str, pl.DataFrame]:
    """What the dashboard shows of the warehouse, one frame per view (empty frames before the
    first run, or before the migration that made a view's table); `now`: the pipeline's clock,
    for the games past kickoff without a result (`unscored`)."""
    if schema_version(con) < 4:
        return {name: pl.DataFrame() for name in (*MONITOR_QUERIES, "forecasts", "upcoming", "ledger", "unscored")}
    frames = {name: read_frame(con, query) for name, query in MONITOR_QUERIES.items()}
    frames["forecasts"] = forecast_scores(con)
    frames["upcoming"] = upcoming_forecasts(con)
    frames["ledger"] = weekly_ledger(con)
    frames["unscored"] = pl.DataFrame({"games": [unscored_games(con, now or clock.now())]})
    return frames
