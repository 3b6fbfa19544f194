"""Quality scores: what fails, how much of a table it touches, and one number per table and run.

Dimensions and weights (scores are 0..1; a table's score is the weighted sum):

| dimension | weight | measured as |
|---|---|---|
| completeness | 0.25 | per column that should be filled: share of non-null values against `max_null_percentage` (a column at or under the allowed null share scores 1), averaged |
| validity | 0.30 | share of rows passing every type, nullability and range check (a missing, unexpected or mistyped column makes it 0) |
| uniqueness | 0.15 | share of rows whose key is not duplicated |
| consistency | 0.20 | share of rows passing the cross-column and cross-table rules (home != away, completed games have scores, W+L+T = games, team ids known) |
| timeliness | 0.10 | 1 while the data is younger than the schedule allows, falling linearly to 0 at three times that age |

The run's overall score is the mean of its tables' scores (every table counts the same, whatever
its size). Validity, uniqueness and consistency failures are *hard*: a partition with any is
quarantined. Completeness and timeliness only lower the score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import polars as pl

from gridiron.quality.dimensions import (
    CHECK_COLUMNS,
    CONSISTENCY,
    DIMENSIONS,
    HARD,
    STRUCTURAL_CHECKS,
    UNIQUE_CHECKS,
    UNIQUENESS,
    VALIDITY,
    WEIGHTS,
)
from gridiron.tables import TABLES


def _schemas():
    """The pandera schemas, imported when a frame is first judged: importing this module (every
    flow does) leaves pandera and pandas unloaded, ~0.6 s a run that has nothing to judge saves."""
    from gridiron.quality.schemas import SCHEMAS

    return SCHEMAS


@dataclass
class CheckFailure:
    """One failed check: table, column, check, dimension, rows failing and an example row."""

    table: str
    column: str | None
    check: str
    dimension: str
    rows: int  # rows failing (0 for a structural failure: the whole table is affected)
    example: str

    def describe(self) -> str:
        """The failure in one line: where, which check, how many rows, an example."""
        where = f"{self.table}.{self.column}" if self.column and self.column != self.table else self.table
        count = f"{self.rows} row(s)" if self.rows else "the table"
        return f"{where}: {self.check} fails on {count}, e.g. {self.example}"


@dataclass
class TableQuality:
    """A table's score in each dimension, and the checks that failed."""

    table: str
    rows: int
    completeness: float = 1.0
    validity: float = 1.0
    uniqueness: float = 1.0
    consistency: float = 1.0
    timeliness: float = 1.0
    failures: list[CheckFailure] = field(default_factory=list)

    @property
    def score(self) -> float:
        """The weighted total of the dimension scores."""
        return round(sum(getattr(self, d) * w for d, w in WEIGHTS.items()), 4)

    @property
    def hard_failures(self) -> list[CheckFailure]:
        """The failures that quarantine a partition (validity, uniqueness, consistency)."""
        return [f for f in self.failures if f.dimension in HARD]

    def as_row(self) -> dict:
        """The table's scores as a quality_reports row."""
        row = {d: round(getattr(self, d), 4) for d in DIMENSIONS}
        return {"table_name": self.table, "rows": self.rows, **row, "score": self.score,
                "failed_checks": json.dumps([asdict(f) for f in self.failures])}


def _dimension(table: str, check: str) -> str:
    if any(check.startswith(prefix) for prefix in UNIQUE_CHECKS):
        return UNIQUENESS
    if check in _schemas()[table].consistency_checks:
        return CONSISTENCY
    return VALIDITY


def _example(frame: pl.DataFrame, table: str, index: int | None, column: str | None, check: str, failure_case: str) -> str:
    if index is None or index >= frame.height:
        first_line = failure_case.strip().splitlines()[0] if failure_case.strip() else failure_case
        return first_line[:160]
    row = frame.row(index, named=True)
    columns = list(_schemas()[table].key)
    for extra in (column, *CHECK_COLUMNS.get(check, ())):
        if extra in row and extra not in columns:
            columns.append(extra)
    return "{" + ", ".join(f"{c}: {row[c]!r}" for c in columns if c in row) + "}"


def passes_schema(table: str, frames: Sequence[pl.DataFrame]) -> bool:
    """Whether every one of `frames` passes its table's pandera schema, decided in one validation of
    their union. Every check of the schemas is row-wise or a key's uniqueness, so a union that
    passes has parts that pass; a failing union says nothing of its parts (False). Frames that
    differ in columns or types cannot be joined (False: check them one by one)."""
    from pandera.errors import SchemaErrors

    if not frames or any(frame.schema != frames[0].schema for frame in frames[1:]):
        return False
    try:
        _schemas()[table].schema.validate(pl.concat(frames, rechunk=False), lazy=True)
    except SchemaErrors:
        return False
    return True


def check_frame(
    table: str, frame: pl.DataFrame, *, known_ids: dict[str, pl.Series] | None = None,
    schema_passed: bool = False,
) -> tuple[list[CheckFailure], dict[str, set[int]]]:
    """Validate an eager frame against its schema, and its ids against the known ones
    (`known_ids`: {"team_id": ..., "game_id": ...}; a relationship without known ids is skipped).
    `schema_passed`: the frame is known to pass its schema (`passes_schema`), so only its ids are
    checked.

    Returns the failures (one per column x check, with the count and an example row) and, per hard
    dimension, the indices of the failing rows (-1 stands for "the whole table").
    """
    from pandera.errors import SchemaErrors

    schema = _schemas()[table]
    failures: list[CheckFailure] = []
    failing: dict[str, set[int]] = {d: set() for d in HARD}
    try:
        if not schema_passed:
            schema.schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        for (column, check), group in cases.group_by("column", "check", maintain_order=True):
            dimension = _dimension(table, check)
            indices = [i for i in group["index"].to_list() if i is not None]
            structural = any(check.startswith(p) for p in STRUCTURAL_CHECKS) or not indices
            failing[dimension].update([-1] if structural else indices)
            first = indices[0] if indices else None
            failures.append(CheckFailure(
                table=table, column=column, check=check, dimension=dimension,
                rows=0 if structural else len(set(indices)),
                example=_example(frame, table, first, column, check, str(group["failure_case"][0])),
            ))
    for reference in TABLES[table].references:  # checked before anything is loaded
        column, parent = reference.column, reference.parent_column
        known = (known_ids or {}).get(parent)
        if known is None or column not in frame.columns:
            continue
        unknown = frame.with_row_index("_row").filter(~pl.col(column).is_in(known.implode()))
        if unknown.height:
            failing[CONSISTENCY].update(unknown["_row"].to_list())
            first = unknown.row(0, named=True)
            shown = [c for c in _schemas()[table].key if c != column] + [column]
            name_column = column.replace("_id", "_team")
            if name_column in first and name_column != column:
                shown.append(name_column)
            failures.append(CheckFailure(
                table=table, column=column, check=f"{parent}_known", dimension=CONSISTENCY,
                rows=unknown.height,
                example="{" + ", ".join(f"{'team' if c == name_column else c}: {first[c]!r}" for c in shown) + "}",
            ))
    return failures, failing


def completeness(table: str, frame: pl.DataFrame, max_null_percentage: float) -> float:
    """The mean over the columns that should be filled of their null share against the allowed one."""
    columns = [c for c in _schemas()[table].complete_columns if c in frame.columns]
    if not columns or frame.height == 0:
        return 1.0
    allowed = 1 - max_null_percentage
    shares = [1 - frame[c].null_count() / frame.height for c in columns]
    return sum(min(1.0, share / allowed) if allowed > 0 else 1.0 for share in shares) / len(shares)


def timeliness(age_days: float | None, allowed_days: float | None) -> float:
    """1 while data is younger than allowed, falling linearly to 0 at three times that age."""
    if age_days is None or allowed_days is None or age_days <= allowed_days:
        return 1.0
    return max(0.0, 1 - (age_days - allowed_days) / (2 * allowed_days))


def assess(
    table: str,
    frame: pl.DataFrame,
    *,
    max_null_percentage: float,
    age_days: float | None = None,
    allowed_age_days: float | None = None,
    known_ids: dict[str, pl.Series] | None = None,
    schema_passed: bool = False,
) -> TableQuality:
    """Every dimension of one table's frame (a partition's rows, or the whole table);
    `schema_passed` as for `check_frame`."""
    failures, failing = check_frame(table, frame, known_ids=known_ids, schema_passed=schema_passed)
    rows = frame.height

    def share_passing(dimension: str) -> float:
        bad = failing[dimension]
        if -1 in bad:
            return 0.0
        return 1.0 if rows == 0 else 1 - len(bad) / rows

    return TableQuality(
        table=table, rows=rows,
        completeness=completeness(table, frame, max_null_percentage),
        validity=share_passing(VALIDITY), uniqueness=share_passing(UNIQUENESS),
        consistency=share_passing(CONSISTENCY), timeliness=timeliness(age_days, allowed_age_days),
        failures=failures,
    )


def combine(parts: Sequence[TableQuality]) -> TableQuality:
    """One table's quality from several partitions' (row-weighted)."""
    table = parts[0].table
    rows = sum(p.rows for p in parts)
    weights = [p.rows if rows else 1 for p in parts]
    total = sum(weights) or 1
    merged = {d: sum(getattr(p, d) * w for p, w in zip(parts, weights)) / total for d in DIMENSIONS}
    return TableQuality(table=table, rows=rows, **merged, failures=[f for p in parts for f in p.failures])


def overall_score(tables: Iterable[TableQuality]) -> float:
    """The mean of the tables' scores (1.0 with no tables)."""
    scores = [t.score for t in tables]
    return round(sum(scores) / len(scores), 4) if scores else 1.0


def worst_checks(tables: Iterable[TableQuality], limit: int = 5) -> list[str]:
    """The failures that cost the most, described in one line each."""
    ranked = sorted(
        (f for t in tables for f in t.failures),
        key=lambda f: (f.dimension not in HARD, -(f.rows or 10**9)),
    )
    return [f.describe() for f in ranked[:limit]]
