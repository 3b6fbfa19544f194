"""Operations records: runs and their phases, quality reports, backtests, and what `status` shows.

- `pipeline_runs` (one row per run) and `pipeline_run_phases` (run x phase): durations, records,
  peak memory, status, error;
- `quality_reports` (run x stage x table, plus a row named `overall`): dimension scores, threshold,
  passed, failed checks;
- `model_runs` also takes a row per `gridiron backtest` (decision `backtest only`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb

from gridiron.storage.db import transaction
from gridiron.storage.loading import table_counts
from gridiron.storage.schema import schema_version

RUN_COLUMNS = (
    "run_id", "flow_run_name", "started_at", "finished_at", "status", "error", "source",
    "is_full_refresh", "partitions_total", "partitions_changed", "records_collected",
    "records_processed", "records_loaded", "duration_seconds", "peak_rss_mb",
)
PHASE_COLUMNS = ("phase", "started_at", "duration_seconds", "records", "peak_rss_mb", "status")
QUALITY_DIMENSIONS = ("rows", "completeness", "validity", "uniqueness", "consistency", "timeliness")


def record_run(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], phases: Sequence[Mapping[str, Any]]
) -> None:
    """Insert or replace one run's row in `pipeline_runs` and its phases (own transaction)."""
    with transaction(con):
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
    now = datetime.now(timezone.utc)
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
