"""The quality gate of the process phase and the integrity checks of the validate phase.

- `judge_partition`: one partition's staged frames against their schemas; any hard failure
  quarantines the partition (its reason lists the failures). `judge_partitions`: the same verdicts
  for many (a season's weeks), each table's schema checked once over all of them when they pass.
- `gate_waves`, `gate_outcome`: the order partitions are judged in, and the gate's decision
  (passing, quarantined with their reasons, breaches with their severity);
- `run_quality`: the run's tables (row-weighted over its partitions, quarantined ones included)
  and the overall score the threshold is held against.
- `integrity_problems`: the committed warehouse: row counts against the manifest, foreign keys,
  the standard queries (DuckDB enforces the primary keys itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import polars as pl

from gridiron.quality.scoring import TableQuality, assess, combine, overall_score, passes_schema, worst_checks
from gridiron.storage import PartitionLoad, QuarantineRecord, read_frame
from gridiron.tables import TABLES, produced_by, references

# the warehouse answers the questions people ask of it (checked after every load)
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


@dataclass(frozen=True)
class PartitionVerdict:
    """The gate's verdict on one staged partition: its tables' quality and, when quarantined, why."""

    key: str
    tables: list[TableQuality]
    reason: str | None = None  # why it is quarantined; None when it passed

    @property
    def quarantined(self) -> bool:
        """Whether any hard check failed, so the partition is not loaded."""
        return self.reason is not None


def judge_partition(
    key: str,
    frames: Mapping[str, pl.DataFrame],
    *,
    max_null_percentage: float,
    known_ids: dict[str, pl.Series] | None = None,
    age_days: float | None = None,
    allowed_age_days: float | None = None,
    schema_passed: frozenset[str] = frozenset(),
) -> PartitionVerdict:
    """`schema_passed`: tables whose frames are known to pass their schema (`judge_partitions`)."""
    tables = [
        assess(
            table, frame, max_null_percentage=max_null_percentage, age_days=age_days,
            allowed_age_days=allowed_age_days, known_ids=known_ids, schema_passed=table in schema_passed,
        )
        for table, frame in frames.items()
    ]
    hard = [failure for table in tables for failure in table.hard_failures]
    reason = f"{key}: " + "; ".join(f.describe() for f in hard[:5]) if hard else None
    if reason and len(hard) > 5:
        reason += f"; and {len(hard) - 5} more"
    return PartitionVerdict(key=key, tables=tables, reason=reason)


def judge_partitions(
    parts: Sequence[tuple[str, Mapping[str, pl.DataFrame], float | None, float | None]],
    *,
    max_null_percentage: float,
    known_ids: dict[str, pl.Series] | None = None,
) -> list[PartitionVerdict]:
    """`judge_partition` of each (key, frames, age, allowed age), the same verdicts in less time:
    pandera costs about the same for a week's 150 rows as for a season's 2,500, so each table's
    frames are validated together first, and only a table whose union fails is validated part by
    part (to say which parts fail and why)."""
    by_table: dict[str, list[pl.DataFrame]] = {}
    for _, frames, _, _ in parts:
        for table, frame in frames.items():
            by_table.setdefault(table, []).append(frame)
    passed = frozenset(table for table, frames in by_table.items() if len(frames) > 1 and passes_schema(table, frames))
    return [
        judge_partition(key, frames, max_null_percentage=max_null_percentage, known_ids=known_ids,
                        age_days=age, allowed_age_days=allowed, schema_passed=passed)
        for key, frames, age, allowed in parts
    ]


def run_quality(verdicts: Iterable[PartitionVerdict]) -> tuple[list[TableQuality], float]:
    """Per table quality over the run's partitions, and the run's overall score."""
    by_table: dict[str, list[TableQuality]] = {}
    for verdict in verdicts:
        for table in verdict.tables:
            by_table.setdefault(table.table, []).append(table)
    tables = [combine(parts) for _, parts in sorted(by_table.items())]
    return tables, overall_score(tables)


def _depth(table: str) -> int:
    """0 for a table that names no other; else one more than the deepest table it names."""
    parents = [ref.parent for ref in TABLES[table].references if ref.parent != table]
    return 1 + max(_depth(parent) for parent in parents) if parents else 0


def gate_waves(loads: Sequence[PartitionLoad]) -> list[list[PartitionLoad]]:
    """The loads in the order the gate judges them: a partition is judged once every partition
    producing a table it references has been (the team list, then what names teams, then what
    names games), so its ids are checked against what will really be loaded."""
    waves: dict[int, list[PartitionLoad]] = {}
    for load in loads:
        depth = max((_depth(t) for t in produced_by(load.endpoint)), default=0)
        waves.setdefault(depth, []).append(load)
    return [waves[depth] for depth in sorted(waves)]


def passing(loads: Iterable[PartitionLoad], verdicts: Mapping[str, PartitionVerdict]) -> list[PartitionLoad]:
    """The loads judged so far that passed."""
    return [load for load in loads if load.key in verdicts and not verdicts[load.key].quarantined]


@dataclass(frozen=True)
class Breach:
    """A table (or the whole run: table `run`) scoring below the threshold."""

    table: str
    severity: str  # "warning" for a table, "critical" when the run stops
    score: float
    threshold: float
    failed_checks: list[str]


@dataclass(frozen=True)
class GateOutcome:
    """The gate's decision on a run's staged partitions."""

    passing: list[PartitionLoad]
    quarantined: list[QuarantineRecord]
    tables: list[TableQuality]
    score: float
    threshold: float
    breaches: list[Breach]

    @property
    def stops(self) -> bool:
        """Below `min_data_quality_score`: nothing of this run may load."""
        return self.score < self.threshold

    def stop_message(self) -> str:
        """Why the run stops at the gate: its score against the threshold and the worst checks."""
        return (
            f"data quality {self.score:.3f} is below min_data_quality_score {self.threshold:.2f}; nothing was "
            f"loaded. Worst checks: " + " | ".join(worst_checks(self.tables))
        )


def table_breaches(tables: Iterable[TableQuality], threshold: float) -> list[Breach]:
    """A warning for each table scoring below the threshold, with its first ten failed checks."""
    return [Breach(t.table, "warning", t.score, threshold, [f.describe() for f in t.failures][:10])
            for t in tables if t.score < threshold]


@dataclass(frozen=True)
class ValidationOutcome:
    """The validate phase's decision on the committed warehouse."""

    score: float
    breaches: list[Breach]
    problems: list[str]  # why the warehouse fails validation (empty: it passes)

    @property
    def fails(self) -> bool:
        """The warehouse is rolled back to its state before the run."""
        return bool(self.problems)

    def message(self) -> str:
        """Why the warehouse failed validation, every problem in one line."""
        return "the warehouse failed validation: " + "; ".join(self.problems)


def validation_outcome(
    tables: Sequence[TableQuality], integrity: Sequence[str], threshold: float
) -> ValidationOutcome:
    """The committed warehouse's score, breaches and verdict: a warning for each table below the
    threshold; a failure (critical, table `warehouse`) for any integrity problem or an overall
    score below the threshold."""
    score = overall_score(tables)
    problems = list(integrity)
    if score < threshold:
        problems.append(f"data quality {score:.3f} is below min_data_quality_score {threshold:.2f} "
                        f"(worst: {' | '.join(worst_checks(tables, 3))})")
    breaches = table_breaches(tables, threshold)
    if problems:
        breaches.append(Breach("warehouse", "critical", score, threshold, problems))
    return ValidationOutcome(score=score, breaches=breaches, problems=problems)


def gate_outcome(
    loads: Sequence[PartitionLoad], verdicts: Mapping[str, PartitionVerdict], threshold: float
) -> GateOutcome:
    """Which partitions pass, which are quarantined and why, the run's table scores, and the
    breaches to announce: each table below the threshold (warning), and the run (critical) when
    its overall score is below it too."""
    tables, score = run_quality(verdicts[load.key] for load in loads)
    quarantined = [
        QuarantineRecord(
            key=load.key, checksum=load.checksum, reason=verdicts[load.key].reason,
            failed_checks=json.dumps([f.describe() for t in verdicts[load.key].tables for f in t.failures]),
            raw_path=load.raw_path,
        )
        for load in loads if verdicts[load.key].quarantined
    ]
    breaches = table_breaches(tables, threshold)
    if score < threshold:
        breaches.append(Breach("run", "critical", score, threshold, worst_checks(tables)))
    return GateOutcome(
        passing=passing(loads, verdicts), quarantined=quarantined, tables=tables, score=score,
        threshold=threshold, breaches=breaches,
    )


@dataclass
class IntegrityReport:
    """What the integrity check of the committed warehouse found wrong, and what it checked."""

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
    """Row counts against the manifest, foreign keys and the standard queries of the warehouse."""
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
    # foreign keys
    # unique keys need no check here: DuckDB enforces the registry's primary keys on every insert
    foreign = references()
    for table, reference in foreign:
        child, column, parent, parent_column = table.name, reference.column, reference.parent, reference.parent_column
        missing = con.execute(
            f"SELECT count(*), min({column}) FROM {child} WHERE {column} IS NOT NULL AND {column} NOT IN "
            f"(SELECT {parent_column} FROM {parent})"
        ).fetchone()
        if missing[0]:
            report.problems.append(
                f"{child}.{column}: {missing[0]} row(s) name a {parent_column} missing from {parent} "
                f"(e.g. {missing[1]})"
            )
    report.checked.append(f"{len(foreign)} foreign keys")
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
    tables: Iterable[str] | None = None,
    *,
    max_null_percentage: float,
    ages: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> list[TableQuality]:
    """Whole-table quality of the committed warehouse (ids checked against `teams` and `games`);
    `tables`: those of them with a schema (None: every table with a schema)."""
    from gridiron.quality.schemas import SCHEMAS  # here: importing the gate leaves pandera unloaded

    known = {
        "team_id": con.sql("SELECT team_id FROM teams").pl()["team_id"],
        "game_id": con.sql("SELECT game_id FROM games").pl()["game_id"],
    }
    results = []
    for table in sorted(SCHEMAS) if tables is None else tables:
        if table not in SCHEMAS:
            continue
        frame = read_frame(con, f"SELECT * FROM {table}")
        age, allowed = (ages or {}).get(table, (None, None))
        results.append(assess(table, frame, max_null_percentage=max_null_percentage,
                              known_ids=known, age_days=age, allowed_age_days=allowed))
    return results
