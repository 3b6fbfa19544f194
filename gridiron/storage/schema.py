"""The warehouse's schema: every table's DDL, in numbered migrations applied once each.

Primary keys come from the table registry (`gridiron.tables`); the raw and operations tables,
which no partition produces, state theirs here. Tables by layer:
- raw: `raw_manifest` (one row per partition: what was last loaded), `raw_payloads` (one row per
  partition: its normalised JSON, gzipped, so a rebuild needs no API calls), `raw_fetches` (one row
  per fetch, append-only, with the API calls left after it), `raw_quarantine` (one row per
  partition x checksum held back by the quality gate);
- staging: `teams`, `conferences`, `team_seasons`, `games`, `lines`, `team_season_stats`,
  `team_talent`, `game_team_stats`;
- marts: `standings`, `game_features`, `predictions`, `model_runs`, `forecasts` (append-only);
- operations: `pipeline_runs` (one row per run, with its warning and error counts),
  `pipeline_run_phases` (run x phase), `pipeline_run_errors` (one row per failed partition of a
  run, or the run's own error), `quality_reports` (run x stage x table), `health_checks` (one row
  per check x time it ran), `schema_version` (one row per applied migration).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from gridiron.storage.db import LoadError, table_exists, transaction
from gridiron.tables import TABLES
from gridiron.transforms.box_scores import BOX_SCORE_COLUMNS


def _pk(table: str) -> str:
    return TABLES[table].primary_key_sql()


_TEAM_SIDE = """
    {side}_id BIGINT NOT NULL, {side}_team VARCHAR, {side}_conference VARCHAR,
    {side}_classification VARCHAR, {side}_points INTEGER, {side}_pregame_elo INTEGER,
    {side}_postgame_elo INTEGER, {side}_postgame_win_probability DOUBLE"""

_RECORD = "{p}wins INTEGER, {p}losses INTEGER, {p}ties INTEGER, {p}win_pct DOUBLE"

_BOX_SCORE_DDL = ", ".join(
    f"{column} {'DOUBLE' if dtype == pl.Float64 else 'INTEGER'}" for column, dtype in BOX_SCORE_COLUMNS.items()
)

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
        f"""CREATE TABLE teams (
            team_id BIGINT NOT NULL, school VARCHAR, mascot VARCHAR, abbreviation VARCHAR,
            conference VARCHAR, division VARCHAR, classification VARCHAR, color VARCHAR,
            alternate_color VARCHAR, twitter VARCHAR, venue_id BIGINT, venue VARCHAR,
            city VARCHAR, state VARCHAR, country_code VARCHAR, timezone VARCHAR,
            latitude DOUBLE, longitude DOUBLE, venue_capacity BIGINT, is_grass BOOLEAN,
            is_dome BOOLEAN, is_from_games BOOLEAN DEFAULT false, {_pk("teams")})""",
        f"""CREATE TABLE conferences (
            conference_id BIGINT NOT NULL, name VARCHAR, short_name VARCHAR,
            abbreviation VARCHAR, classification VARCHAR, {_pk("conferences")})""",
        f"""CREATE TABLE team_seasons (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, school VARCHAR,
            abbreviation VARCHAR, mascot VARCHAR, conference VARCHAR, division VARCHAR,
            classification VARCHAR, {_pk("team_seasons")})""",
        f"""CREATE TABLE games (
            game_id BIGINT NOT NULL, season INTEGER NOT NULL, week INTEGER,
            season_type VARCHAR, start_date TIMESTAMPTZ, start_time_tbd BOOLEAN,
            is_completed BOOLEAN NOT NULL, is_neutral_site BOOLEAN NOT NULL,
            is_conference_game BOOLEAN NOT NULL, attendance BIGINT, venue_id BIGINT,
            venue VARCHAR, {_TEAM_SIDE.format(side="home")}, {_TEAM_SIDE.format(side="away")},
            excitement_index DOUBLE, notes VARCHAR, is_suspect_score BOOLEAN NOT NULL,
            has_result BOOLEAN NOT NULL, {_pk("games")})""",
        f"""CREATE TABLE lines (
            game_id BIGINT NOT NULL, season INTEGER NOT NULL, week INTEGER,
            season_type VARCHAR, provider VARCHAR NOT NULL, spread DOUBLE, spread_open DOUBLE,
            over_under DOUBLE, over_under_open DOUBLE, home_moneyline INTEGER,
            away_moneyline INTEGER, formatted_spread VARCHAR, {_pk("lines")})""",
        f"""CREATE TABLE team_season_stats (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, conference VARCHAR,
            stat_name VARCHAR NOT NULL, stat_value DOUBLE,
            {_pk("team_season_stats")})""",
        f"""CREATE TABLE standings (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, conference VARCHAR,
            classification VARCHAR, games INTEGER NOT NULL, {_RECORD.format(p="")},
            {_RECORD.format(p="conf_")}, {_RECORD.format(p="home_")}, {_RECORD.format(p="away_")},
            points_for BIGINT, points_against BIGINT, point_diff BIGINT,
            {_pk("standings")})""",
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
        f"""CREATE TABLE game_features (
            game_id BIGINT NOT NULL, season INTEGER NOT NULL, week INTEGER, season_type VARCHAR,
            start_date TIMESTAMPTZ, slate INTEGER, slate_start DATE, home_id BIGINT, away_id BIGINT,
            is_fbs_game BOOLEAN, home_elo DOUBLE, away_elo DOUBLE, elo_diff DOUBLE, elo_prob DOUBLE,
            home_rating DOUBLE, away_rating DOUBLE, rating_diff DOUBLE, rating_margin DOUBLE,
            form_diff DOUBLE, home_rest DOUBLE, away_rest DOUBLE, rest_diff DOUBLE,
            home_games INTEGER, away_games INTEGER, is_neutral DOUBLE, is_conference_game DOUBLE,
            is_postseason DOUBLE, home_is_fbs DOUBLE, away_is_fbs DOUBLE, has_result BOOLEAN, {_pk("game_features")})""",
        f"""CREATE TABLE predictions (
            game_id BIGINT NOT NULL, model_version VARCHAR NOT NULL, home_win_prob DOUBLE NOT NULL,
            predicted_margin DOUBLE NOT NULL, generated_at TIMESTAMPTZ NOT NULL,
            {_pk("predictions")})""",
        f"""CREATE TABLE model_runs (
            version VARCHAR NOT NULL, trained_at TIMESTAMPTZ NOT NULL, run_id VARCHAR,
            first_season INTEGER, last_season INTEGER, backtest_season INTEGER, games INTEGER,
            su_accuracy DOUBLE, mae DOUBLE, brier DOUBLE, log_loss DOUBLE, ats DOUBLE,
            is_promoted BOOLEAN NOT NULL, decision VARCHAR, settings VARCHAR, metrics VARCHAR,
            train_signature VARCHAR, {_pk("model_runs")})""",
    ]),
    (4, "monitoring: warnings and errors per run, partition errors, health history", [
        "ALTER TABLE pipeline_runs ADD COLUMN warnings INTEGER",
        "ALTER TABLE pipeline_runs ADD COLUMN errors INTEGER",
        """CREATE TABLE pipeline_run_errors (
            run_id VARCHAR NOT NULL, partition_key VARCHAR, message VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE health_checks (
            checked_at TIMESTAMPTZ NOT NULL, name VARCHAR NOT NULL, healthy BOOLEAN NOT NULL,
            value DOUBLE, threshold DOUBLE, detail VARCHAR, PRIMARY KEY (checked_at, name))""",
    ]),
    (5, "team talent (247Sports composite, /talent) and the game features read from it", [
        f"""CREATE TABLE team_talent (
            season INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, talent DOUBLE,
            {_pk("team_talent")})""",
        *(f"ALTER TABLE game_features ADD COLUMN {column} DOUBLE"
          for column in ("home_talent", "away_talent", "has_talent", "talent_diff", "talent_early")),
    ]),
    (6, "forecasts: every prediction as issued, to be scored against what happened", [
        f"""CREATE TABLE forecasts (
            game_id BIGINT NOT NULL, batch VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
            generated_at TIMESTAMPTZ NOT NULL, home_win_prob DOUBLE NOT NULL,
            predicted_margin DOUBLE NOT NULL, {_pk("forecasts")})""",
    ]),
    (7, "box scores per game x team (/games/teams, partitioned by season, season type and week)", [
        f"""CREATE TABLE game_team_stats (
            game_id BIGINT NOT NULL, season INTEGER NOT NULL, season_type VARCHAR NOT NULL,
            week INTEGER NOT NULL, team_id BIGINT NOT NULL, team VARCHAR, conference VARCHAR,
            home_away VARCHAR NOT NULL, points INTEGER,
            {_BOX_SCORE_DDL},
            {_pk("game_team_stats")})""",
        "CREATE INDEX game_team_stats_team ON game_team_stats (team_id, season)",
    ]),
    (8, "the game features read from the box scores (opponent-adjusted yards per play)", [
        *(f"ALTER TABLE game_features ADD COLUMN {column} DOUBLE" for column in ("eff_diff", "has_box")),
    ]),
    (9, "the source's version tag of each loaded partition (a snapshot file unchanged is not read again)", [
        "ALTER TABLE raw_manifest ADD COLUMN source_version VARCHAR",
    ]),
    (10, "predictions: how much the ratings know of each side (a forecast with little basis is flagged)", [
        "ALTER TABLE predictions ADD COLUMN basis_games INTEGER",
        "ALTER TABLE predictions ADD COLUMN is_low_confidence BOOLEAN",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The warehouse's schema version (0: not migrated yet)."""
    if not table_exists(con, "schema_version"):
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection, migrations: list[tuple[int, str, list[str]]] | None = None) -> list[int]:
    """Apply the migrations the file lacks, each in its own transaction. Returns those applied.

    `migrations` defaults to all of them (a test passes a prefix to build an older warehouse).
    """
    migrations = MIGRATIONS if migrations is None else migrations
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
    for version, description, statements in migrations:
        if version <= current:
            continue
        with transaction(con):
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [version, description, datetime.now(UTC)],
            )
        applied.append(version)
    return applied
