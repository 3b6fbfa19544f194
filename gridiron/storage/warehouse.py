"""The DuckDB warehouse: schema and migrations, the raw manifest, and the one-transaction load.

Layers (grain in one line each):
- raw: `raw_manifest` (one row per partition: what was last loaded), `raw_payloads` (one row per
  partition: its normalised JSON, gzipped, so a rebuild needs no API calls), `raw_fetches` (one row
  per fetch, append-only, with the API calls left after it);
- staging: `teams`, `conferences`, `team_seasons`, `games`, `lines`, `team_season_stats`;
- marts: `standings` (team x season);
- operations: `pipeline_runs` (one row per run), `pipeline_run_phases` (run x phase).

`commit_partitions` replaces the changed partitions' rows, the manifest and the payloads in one
transaction and checks row counts before committing: the warehouse moves from one consistent state
to the next, or stays exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from gridiron.planning import ManifestEntry


class LoadError(RuntimeError):
    """The load was rolled back; the message says which check failed."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_column: str | None  # None: the partition replaces the whole table
    primary_key: tuple[str, ...]


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("games", "season", ("game_id",)),
        TableSpec("standings", "season", ("season", "team_id")),
        TableSpec("lines", "season", ("game_id", "provider")),
        TableSpec("team_seasons", "season", ("season", "team_id")),
        TableSpec("team_season_stats", "season", ("season", "team_id", "stat_name")),
        TableSpec("teams", None, ("team_id",)),
        TableSpec("conferences", None, ("conference_id",)),
    )
}
# marts the train phase writes whole (or per model version), committed with the run's partitions
MARTS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("game_features", None, ("game_id",)),
        TableSpec("predictions", "model_version", ("game_id", "model_version")),
        TableSpec("model_runs", "version", ("version",)),
    )
}

_TEAM_SIDE = """
    {side}_id BIGINT NOT NULL, {side}_team VARCHAR, {side}_conference VARCHAR,
    {side}_classification VARCHAR, {side}_points INTEGER, {side}_pregame_elo INTEGER,
    {side}_postgame_elo INTEGER, {side}_postgame_win_probability DOUBLE"""

_RECORD = "{p}wins INTEGER, {p}losses INTEGER, {p}ties INTEGER, {p}win_pct DOUBLE"

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "raw, staging, standings and operations tables", [
        """CREATE TABLE raw_manifest (
            partition_key VARCHAR PRIMARY KEY, endpoint VARCHAR NOT NULL, season INTEGER,
            params VARCHAR, checksum VARCHAR NOT NULL, signature VARCHAR NOT NULL,
            rows INTEGER NOT NULL, fetched_at TIMESTAMPTZ NOT NULL, source VARCHAR NOT NULL,
            calls_remaining INTEGER, loaded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR)""",
        """CREATE TABLE raw_payloads (
            partition_key VARCHAR PRIMARY KEY, checksum VARCHAR NOT NULL,
            payload_gzip BLOB NOT NULL)""",
        """CREATE TABLE raw_fetches (
            fetched_at TIMESTAMPTZ NOT NULL, run_id VARCHAR, partition_key VARCHAR NOT NULL,
            source VARCHAR NOT NULL, checksum VARCHAR NOT NULL, rows INTEGER NOT NULL,
            calls_remaining INTEGER, is_changed BOOLEAN NOT NULL)""",
        """CREATE TABLE teams (
            team_id BIGINT PRIMARY KEY, school VARCHAR, mascot VARCHAR, abbreviation VARCHAR,
            conference VARCHAR, division VARCHAR, classification VARCHAR, color VARCHAR,
            alternate_color VARCHAR, twitter VARCHAR, venue_id BIGINT, venue VARCHAR,
            city VARCHAR, state VARCHAR, country_code VARCHAR, timezone VARCHAR,
            latitude DOUBLE, longitude DOUBLE, venue_capacity BIGINT, is_grass BOOLEAN,
            is_dome BOOLEAN, is_from_games BOOLEAN DEFAULT false)""",
        """CREATE TABLE conferences (
            conference_id BIGINT PRIMARY KEY, name VARCHAR, short_name VARCHAR,
            abbreviation VARCHAR, classification VARCHAR)""",
        """CREATE TABLE team_seasons (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, school VARCHAR,
            abbreviation VARCHAR, mascot VARCHAR, conference VARCHAR, division VARCHAR,
            classification VARCHAR, PRIMARY KEY (season, team_id))""",
        f"""CREATE TABLE games (
            game_id BIGINT PRIMARY KEY, season INTEGER NOT NULL, week INTEGER,
            season_type VARCHAR, start_date TIMESTAMPTZ, start_time_tbd BOOLEAN,
            is_completed BOOLEAN NOT NULL, is_neutral_site BOOLEAN NOT NULL,
            is_conference_game BOOLEAN NOT NULL, attendance BIGINT, venue_id BIGINT,
            venue VARCHAR, {_TEAM_SIDE.format(side="home")}, {_TEAM_SIDE.format(side="away")},
            excitement_index DOUBLE, notes VARCHAR, is_suspect_score BOOLEAN NOT NULL,
            has_result BOOLEAN NOT NULL)""",
        """CREATE TABLE lines (
            game_id BIGINT NOT NULL, season INTEGER NOT NULL, week INTEGER,
            season_type VARCHAR, provider VARCHAR NOT NULL, spread DOUBLE, spread_open DOUBLE,
            over_under DOUBLE, over_under_open DOUBLE, home_moneyline INTEGER,
            away_moneyline INTEGER, formatted_spread VARCHAR, PRIMARY KEY (game_id, provider))""",
        """CREATE TABLE team_season_stats (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, conference VARCHAR,
            stat_name VARCHAR NOT NULL, stat_value DOUBLE,
            PRIMARY KEY (season, team_id, stat_name))""",
        f"""CREATE TABLE standings (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, conference VARCHAR,
            classification VARCHAR, games INTEGER NOT NULL, {_RECORD.format(p="")},
            {_RECORD.format(p="conf_")}, {_RECORD.format(p="home_")}, {_RECORD.format(p="away_")},
            points_for BIGINT, points_against BIGINT, point_diff BIGINT,
            PRIMARY KEY (season, team_id))""",
        """CREATE TABLE pipeline_runs (
            run_id VARCHAR PRIMARY KEY, flow_run_name VARCHAR, started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ, status VARCHAR NOT NULL, error VARCHAR, source VARCHAR,
            is_full_refresh BOOLEAN, partitions_total INTEGER, partitions_changed INTEGER,
            records_collected BIGINT, records_processed BIGINT, records_loaded BIGINT,
            duration_seconds DOUBLE, peak_rss_mb DOUBLE)""",
        """CREATE TABLE pipeline_run_phases (
            run_id VARCHAR NOT NULL, phase VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL,
            duration_seconds DOUBLE, records BIGINT, peak_rss_mb DOUBLE, status VARCHAR NOT NULL,
            PRIMARY KEY (run_id, phase))""",
        "CREATE INDEX games_season ON games (season)",
        "CREATE INDEX games_home ON games (home_id)",
        "CREATE INDEX games_away ON games (away_id)",
        "CREATE INDEX lines_season ON lines (season)",
    ]),
    (2, "quality: table rows in the manifest, quarantine, quality reports", [
        "ALTER TABLE raw_manifest ADD COLUMN table_rows VARCHAR",
        # games naming an unknown team are quarantined now, never papered over with made-up teams
        "ALTER TABLE teams DROP COLUMN is_from_games",
        """CREATE TABLE raw_quarantine (
            partition_key VARCHAR NOT NULL, checksum VARCHAR NOT NULL, run_id VARCHAR,
            quarantined_at TIMESTAMPTZ NOT NULL, reason VARCHAR NOT NULL, failed_checks VARCHAR,
            payload_gzip BLOB NOT NULL, PRIMARY KEY (partition_key, checksum))""",
        """CREATE TABLE quality_reports (
            run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, rows BIGINT, completeness DOUBLE, validity DOUBLE,
            uniqueness DOUBLE, consistency DOUBLE, timeliness DOUBLE, score DOUBLE NOT NULL,
            threshold DOUBLE NOT NULL, passed BOOLEAN NOT NULL, failed_checks VARCHAR,
            PRIMARY KEY (run_id, stage, table_name))""",
    ]),
    (3, "train: game features, predictions, model runs", [
        """CREATE TABLE game_features (
            game_id BIGINT PRIMARY KEY, season INTEGER NOT NULL, week INTEGER, season_type VARCHAR,
            start_date TIMESTAMPTZ, slate INTEGER, slate_start DATE, home_id BIGINT, away_id BIGINT,
            is_fbs_game BOOLEAN, home_elo DOUBLE, away_elo DOUBLE, elo_diff DOUBLE, elo_prob DOUBLE,
            home_rating DOUBLE, away_rating DOUBLE, rating_diff DOUBLE, rating_margin DOUBLE,
            form_diff DOUBLE, home_rest DOUBLE, away_rest DOUBLE, rest_diff DOUBLE,
            home_games INTEGER, away_games INTEGER, is_neutral DOUBLE, is_conference_game DOUBLE,
            is_postseason DOUBLE, home_is_fbs DOUBLE, away_is_fbs DOUBLE, has_result BOOLEAN)""",
        """CREATE TABLE predictions (
            game_id BIGINT NOT NULL, model_version VARCHAR NOT NULL, home_win_prob DOUBLE NOT NULL,
            predicted_margin DOUBLE NOT NULL, generated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (game_id, model_version))""",
        """CREATE TABLE model_runs (
            version VARCHAR PRIMARY KEY, trained_at TIMESTAMPTZ NOT NULL, run_id VARCHAR,
            first_season INTEGER, last_season INTEGER, backtest_season INTEGER, games INTEGER,
            su_accuracy DOUBLE, mae DOUBLE, brier DOUBLE, log_loss DOUBLE, ats DOUBLE,
            is_promoted BOOLEAN NOT NULL, decision VARCHAR, settings VARCHAR, metrics VARCHAR,
            train_signature VARCHAR)""",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass
class TableOutput:
    table: str
    path: str
    rows: int


@dataclass
class MartOutput:
    """A mart table's rows from the train phase: the whole table, or the rows of one `key`
    (a model version) when the table is keyed."""

    table: str
    path: str
    rows: int
    key: str | None = None


@dataclass
class PartitionLoad:
    """One changed partition, ready to commit: its manifest fields and its staged tables."""

    key: str
    endpoint: str
    season: int | None
    params: dict[str, Any]
    checksum: str
    signature: str
    rows: int
    fetched_at: datetime
    source: str
    calls_remaining: int | None
    raw_path: str
    outputs: list[TableOutput] = field(default_factory=list)


@dataclass
class QuarantineRecord:
    """A partition kept out of the warehouse's tables: its payload and why."""

    key: str
    checksum: str
    reason: str
    failed_checks: str  # JSON list of the failures
    raw_path: str


@dataclass
class FetchRecord:
    key: str
    fetched_at: datetime
    source: str
    checksum: str
    rows: int
    calls_remaining: int | None
    is_changed: bool


@dataclass
class LoadReport:
    partitions: list[str]
    rows_by_table: dict[str, int]
    quarantined: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def read_frame(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """A query's rows as a polars frame, timestamps in UTC whatever the session's time zone (the
    staged frames and the schemas are UTC)."""
    frame = con.sql(query, params=list(params) if params is not None else None).pl()
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open, and a following
    # `con.sql(...)` on the connection then refuses to run
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations the file lacks, each in its own transaction. Returns those applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
    )
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise LoadError(
            f"the warehouse has schema version {current}, newer than this gridiron "
            f"({SCHEMA_VERSION}); upgrade gridiron"
        )
    applied = []
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [version, description, datetime.now(timezone.utc)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def read_manifest(con: duckdb.DuckDBPyConnection) -> dict[str, ManifestEntry]:
    if schema_version(con) == 0:
        return {}
    rows = con.execute(
        "SELECT partition_key, checksum, fetched_at, signature, rows FROM raw_manifest"
    ).fetchall()
    return {
        key: ManifestEntry(key=key, checksum=checksum, fetched_at=fetched_at, signature=signature, rows=count)
        for key, checksum, fetched_at, signature, count in rows
    }


def read_raw_payload(con: duckdb.DuckDBPyConnection, key: str) -> tuple[str, bytes] | None:
    """(checksum, gzipped normalised JSON) of a partition, or None if never loaded."""
    if schema_version(con) == 0:
        return None
    row = con.execute(
        "SELECT checksum, payload_gzip FROM raw_payloads WHERE partition_key = ?", [key]
    ).fetchone()
    return (row[0], bytes(row[1])) if row else None


def last_calls_remaining(con: duckdb.DuckDBPyConnection) -> int | None:
    """The API calls left after the most recent API fetch, if any was recorded."""
    if schema_version(con) == 0:
        return None
    row = con.execute(
        "SELECT calls_remaining FROM raw_fetches WHERE source = 'api' AND calls_remaining "
        "IS NOT NULL ORDER BY fetched_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def _replace_table_rows(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, path: str, rows: int, value: int | str | None
) -> None:
    """Replace a table's rows for one value of its partition column (or the whole table) with a
    staged Parquet file, and check the stored count against the staged one."""
    if spec.partition_column is None:
        predicate, params, where = "", [], "the table"
    else:
        if value is None:
            raise LoadError(f"{spec.name} is partitioned by {spec.partition_column} but no value was given")
        predicate, params = f" WHERE {spec.partition_column} = ?", [value]
        where = f"{spec.partition_column} {value}"
    con.execute(f"DELETE FROM {spec.name}{predicate}", params)
    try:
        con.execute(f"INSERT INTO {spec.name} BY NAME SELECT * FROM read_parquet(?)", [path])
    except duckdb.ConstraintException as error:
        raise LoadError(f"{spec.name} ({where}): the rows clash with rows already stored: {error}") from error
    stored = con.execute(f"SELECT count(*) FROM {spec.name}{predicate}", params).fetchone()[0]
    if stored != rows:
        raise LoadError(f"{spec.name}: {stored} rows stored for {where}, {rows} processed")


def commit_partitions(
    con: duckdb.DuckDBPyConnection,
    loads: Sequence[PartitionLoad],
    fetches: Iterable[FetchRecord],
    run_id: str | None,
    progress: Callable[[str, str, int], None] | None = None,
    quarantined: Sequence[QuarantineRecord] = (),
    marts: Sequence[MartOutput] = (),
) -> LoadReport:
    """Replace the changed partitions' rows, manifest entries and payloads in one transaction.

    Each table's stored row count for the partition must equal the processed count, or nothing is
    committed (`LoadError`). Fetch records are appended in the same transaction. `progress` is
    called with (partition key, table, rows) after each table's rows are replaced.
    """
    rows_by_table: dict[str, int] = {}
    now = datetime.now(timezone.utc)
    con.execute("BEGIN TRANSACTION")
    try:
        # reference tables first, so teams derived from games see the fresh team list
        ordered = sorted(loads, key=lambda load: load.season is not None)
        for load in ordered:
            for output in load.outputs:
                _replace_table_rows(con, TABLES[output.table], output.path, output.rows, load.season)
                rows_by_table[output.table] = rows_by_table.get(output.table, 0) + output.rows
                if progress:
                    progress(load.key, output.table, output.rows)
            payload = Path(load.raw_path).read_bytes()
            con.execute(
                "INSERT OR REPLACE INTO raw_payloads VALUES (?, ?, ?)",
                [load.key, load.checksum, payload],
            )
            con.execute(
                "INSERT OR REPLACE INTO raw_manifest (partition_key, endpoint, season, params, "
                "checksum, signature, rows, fetched_at, source, calls_remaining, loaded_at, run_id, "
                "table_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    load.key, load.endpoint, load.season, json.dumps(load.params, sort_keys=True),
                    load.checksum, load.signature, load.rows, load.fetched_at, load.source,
                    load.calls_remaining, now, run_id,
                    json.dumps({o.table: o.rows for o in load.outputs}, sort_keys=True),
                ],
            )
        for mart in marts:
            _replace_table_rows(con, MARTS[mart.table], mart.path, mart.rows, mart.key)
            rows_by_table[mart.table] = rows_by_table.get(mart.table, 0) + mart.rows
        for record in quarantined:
            con.execute(
                "INSERT OR REPLACE INTO raw_quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                [record.key, record.checksum, run_id, now, record.reason, record.failed_checks,
                 Path(record.raw_path).read_bytes()],
            )
        for fetch in fetches:
            con.execute(
                "INSERT INTO raw_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [fetch.fetched_at, run_id, fetch.key, fetch.source, fetch.checksum, fetch.rows,
                 fetch.calls_remaining, fetch.is_changed],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return LoadReport(
        partitions=[load.key for load in loads], rows_by_table=rows_by_table,
        quarantined=[record.key for record in quarantined],
    )


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {
        name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in TABLES
    }


STANDARD_QUERIES: dict[str, str] = {
    "games per season": "SELECT season, count(*) FROM games GROUP BY season ORDER BY season",
    "standings leaders": (
        "SELECT season, team, wins, losses FROM standings "
        "QUALIFY row_number() OVER (PARTITION BY season ORDER BY win_pct DESC, point_diff DESC) = 1"
    ),
    "games with both teams": (
        "SELECT count(*) FROM games g JOIN teams h ON h.team_id = g.home_id "
        "JOIN teams a ON a.team_id = g.away_id"
    ),
    "median closing spread": (
        "SELECT game_id, median(spread) FROM lines GROUP BY game_id LIMIT 5"
    ),
}


def record_run(
    con: duckdb.DuckDBPyConnection, run: dict[str, Any], phases: Sequence[dict[str, Any]]
) -> None:
    """Insert or replace one run's row in `pipeline_runs` and its phases (own transaction)."""
    columns = [
        "run_id", "flow_run_name", "started_at", "finished_at", "status", "error", "source",
        "is_full_refresh", "partitions_total", "partitions_changed", "records_collected",
        "records_processed", "records_loaded", "duration_seconds", "peak_rss_mb",
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"INSERT OR REPLACE INTO pipeline_runs ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [run.get(column) for column in columns],
        )
        con.execute("DELETE FROM pipeline_run_phases WHERE run_id = ?", [run["run_id"]])
        for phase in phases:
            con.execute(
                "INSERT INTO pipeline_run_phases VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run["run_id"], phase["phase"], phase["started_at"], phase["duration_seconds"],
                 phase["records"], phase["peak_rss_mb"], phase["status"]],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def content_checksums(con: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None) -> dict[str, str]:
    """Per table `rows:sum-of-row-hashes`: independent of row order, changed by any value.

    DuckDB's `hash` is stable for a given DuckDB version; compare checksums made by one version.
    """
    names = list(tables) if tables is not None else [
        row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
    ]
    sums = {}
    for name in names:
        count, total = con.execute(
            f'SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM "{name}" AS t'
        ).fetchone()
        sums[name] = f"{count}:{total}"
    return sums


def record_quality(
    con: duckdb.DuckDBPyConnection, run_id: str, stage: str, rows: Sequence[dict[str, Any]], threshold: float
) -> None:
    """Store a run's quality report (one row per table and one named 'overall'), own transaction."""
    now = datetime.now(timezone.utc)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM quality_reports WHERE run_id = ? AND stage = ?", [run_id, stage])
        for row in rows:
            con.execute(
                "INSERT INTO quality_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, stage, row["table_name"], now, row.get("rows"), row.get("completeness"),
                 row.get("validity"), row.get("uniqueness"), row.get("consistency"),
                 row.get("timeliness"), row["score"], threshold, row["score"] >= threshold,
                 row.get("failed_checks")],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
