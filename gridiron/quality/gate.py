"""The quality gate of the process phase and the integrity checks of the validate phase.

- `judge_partition`: one partition's staged frames against their schemas; any hard failure
  quarantines the partition (its reason lists the failures).
- `run_quality`: the run's tables (row-weighted over its partitions, quarantined ones included)
  and the overall score the threshold is held against.
- `integrity_problems`: the committed warehouse: row counts against the manifest, unique keys,
  foreign keys, the standard queries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb
import polars as pl

from gridiron.quality.schemas import SCHEMAS
from gridiron.quality.scoring import TableQuality, assess, combine, overall_score
from gridiron.storage.warehouse import STANDARD_QUERIES, TABLES, read_frame

# (child table, column) -> (parent table, column)
FOREIGN_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("games", "home_id"): ("teams", "team_id"),
    ("games", "away_id"): ("teams", "team_id"),
    ("lines", "game_id"): ("games", "game_id"),
    ("standings", "team_id"): ("teams", "team_id"),
    ("team_seasons", "team_id"): ("teams", "team_id"),
    ("team_season_stats", "team_id"): ("teams", "team_id"),
}


@dataclass
class PartitionVerdict:
    key: str
    tables: list[TableQuality]
    reason: str | None = None  # why it is quarantined; None when it passed

    @property
    def quarantined(self) -> bool:
        return self.reason is not None


def judge_partition(
    key: str,
    frames: Mapping[str, pl.DataFrame],
    *,
    max_null_percentage: float,
    known_ids: dict[str, pl.Series] | None = None,
    age_days: float | None = None,
    allowed_age_days: float | None = None,
) -> PartitionVerdict:
    tables = [
        assess(
            table, frame, max_null_percentage=max_null_percentage, age_days=age_days,
            allowed_age_days=allowed_age_days, known_ids=known_ids,
        )
        for table, frame in frames.items()
    ]
    hard = [failure for table in tables for failure in table.hard_failures]
    reason = f"{key}: " + "; ".join(f.describe() for f in hard[:5]) if hard else None
    if reason and len(hard) > 5:
        reason += f"; and {len(hard) - 5} more"
    return PartitionVerdict(key=key, tables=tables, reason=reason)


def run_quality(verdicts: Iterable[PartitionVerdict]) -> tuple[list[TableQuality], float]:
    """Per table quality over the run's partitions, and the run's overall score."""
    by_table: dict[str, list[TableQuality]] = {}
    for verdict in verdicts:
        for table in verdict.tables:
            by_table.setdefault(table.table, []).append(table)
    tables = [combine(parts) for _, parts in sorted(by_table.items())]
    return tables, overall_score(tables)


@dataclass
class IntegrityReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def _expected_rows(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int | None], int]:
    """(table, season or None) -> rows the manifest says were loaded."""
    expected: dict[tuple[str, int | None], int] = {}
    for season, table_rows in con.execute(
        "SELECT season, table_rows FROM raw_manifest WHERE table_rows IS NOT NULL"
    ).fetchall():
        for table, rows in json.loads(table_rows).items():
            scope = season if TABLES[table].partition_column else None
            expected[(table, scope)] = expected.get((table, scope), 0) + rows
    return expected


def integrity_problems(con: duckdb.DuckDBPyConnection) -> IntegrityReport:
    report = IntegrityReport()
    # row counts against the manifest
    expected = _expected_rows(con)
    for (table, season), rows in sorted(expected.items(), key=str):
        if season is None:
            stored = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        else:
            stored = con.execute(f"SELECT count(*) FROM {table} WHERE season = ?", [season]).fetchone()[0]
        if stored != rows:
            where = f"season {season}" if season is not None else "the table"
            report.problems.append(f"{table} ({where}): {stored} rows stored, the manifest says {rows}")
    report.checked.append(f"row counts of {len(expected)} table partitions against the manifest")
    # keys
    for name, spec in TABLES.items():
        key = ", ".join(spec.primary_key)
        duplicated = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {name} GROUP BY {key} HAVING count(*) > 1)"
        ).fetchone()[0]
        if duplicated:
            report.problems.append(f"{name}: {duplicated} duplicated key(s) ({key})")
    report.checked.append(f"keys of {len(TABLES)} tables unique")
    # foreign keys
    for (child, column), (parent, parent_column) in FOREIGN_KEYS.items():
        missing = con.execute(
            f"SELECT count(*), min({column}) FROM {child} WHERE {column} IS NOT NULL AND {column} NOT IN "
            f"(SELECT {parent_column} FROM {parent})"
        ).fetchone()
        if missing[0]:
            report.problems.append(
                f"{child}.{column}: {missing[0]} row(s) name a {parent_column} missing from {parent} "
                f"(e.g. {missing[1]})"
            )
    report.checked.append(f"{len(FOREIGN_KEYS)} foreign keys")
    # the standard queries answer
    for name, query in STANDARD_QUERIES.items():
        try:
            con.execute(query).fetchall()
        except duckdb.Error as error:
            report.problems.append(f"standard query '{name}' fails: {error}")
    report.checked.append(f"{len(STANDARD_QUERIES)} standard queries")
    return report


def warehouse_quality(
    con: duckdb.DuckDBPyConnection,
    tables: Iterable[str],
    *,
    max_null_percentage: float,
    ages: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> list[TableQuality]:
    """Whole-table quality of the committed warehouse (ids checked against `teams` and `games`)."""
    known = {
        "team_id": con.sql("SELECT team_id FROM teams").pl()["team_id"],
        "game_id": con.sql("SELECT game_id FROM games").pl()["game_id"],
    }
    results = []
    for table in tables:
        if table not in SCHEMAS:
            continue
        frame = read_frame(con, f"SELECT * FROM {table}")
        age, allowed = (ages or {}).get(table, (None, None))
        results.append(assess(table, frame, max_null_percentage=max_null_percentage,
                              known_ids=known, age_days=age, allowed_age_days=allowed))
    return results
