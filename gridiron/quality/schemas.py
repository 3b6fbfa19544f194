"""pandera (polars backend) schemas of every staging and mart table.

Each check belongs to one quality dimension: *validity* (types, nullability, ranges), *uniqueness*
(keys) or *consistency* (rules across columns or tables). Schemas are strict: a column the
warehouse does not know fails validation (schema drift in our own frames is a bug). At the API
boundary drift is softer: fields the staging tables do not use are ignored and logged, since later
API versions add fields (e.g. `playoff` on games).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date

import pandera.polars as pa
import polars as pl

from gridiron.tables import TABLES

MAX_WEEK = 20
MAX_ABS_SPREAD = 100


def _season_range() -> pa.Check:
    # the first college football game was played in 1869; a season can be at most next year's
    return pa.Check.in_range(1869, date.today().year + 1, name="season_in_range")


def _frame_check(name: str, expression: pl.Expr) -> pa.Check:
    """A row-wise rule across columns; rows where it is false (or null) fail."""
    return pa.Check(lambda data: data.lazyframe.select(expression.fill_null(False)), name=name)


@dataclass(frozen=True)
class TableSchema:
    """A table's pandera schema, its key, the columns that should be filled and its consistency checks."""

    name: str
    schema: pa.DataFrameSchema
    key: tuple[str, ...]
    complete_columns: tuple[str, ...]  # completeness is measured on these (others may be null)
    consistency_checks: frozenset[str] = field(default_factory=frozenset)


def _table(
    name: str,
    columns: dict[str, pa.Column],
    complete: tuple[str, ...],
    checks: list[pa.Check] | None = None,
) -> TableSchema:
    """A table's schema; its key (checked unique) comes from the table registry."""
    checks = checks or []
    key = TABLES[name].key
    columns = dict(columns)
    if len(key) == 1:  # a column-level check names the column in its failures
        columns[key[0]] = copy.copy(columns[key[0]])
        columns[key[0]].unique = True
    return TableSchema(
        name=name,
        schema=pa.DataFrameSchema(columns, checks=checks, unique=list(key) if len(key) > 1 else None,
                                  strict=True, name=name),
        key=key,
        complete_columns=complete,
        consistency_checks=frozenset(check.name for check in checks),
    )


def _points(nullable: bool = True) -> pa.Column:
    return pa.Column(pl.Int32, pa.Check.ge(0, name="points_not_negative"), nullable=nullable)


def _pct() -> pa.Column:
    return pa.Column(pl.Float64, pa.Check.in_range(0, 1, name="pct_in_0_1"), nullable=True)


def _count() -> pa.Column:
    return pa.Column(pl.Int32, pa.Check.ge(0, name="count_not_negative"))


_GAMES = _table(
    "games",
    {
        "game_id": pa.Column(pl.Int64),
        "season": pa.Column(pl.Int32, _season_range()),
        "week": pa.Column(pl.Int32, pa.Check.in_range(0, MAX_WEEK, name="week_in_range"), nullable=True),
        "season_type": pa.Column(pl.String, nullable=True),
        "start_date": pa.Column(pl.Datetime("us", "UTC"), nullable=True),
        "start_time_tbd": pa.Column(pl.Boolean),
        "is_completed": pa.Column(pl.Boolean),
        "is_neutral_site": pa.Column(pl.Boolean),
        "is_conference_game": pa.Column(pl.Boolean),
        "attendance": pa.Column(pl.Int64, pa.Check.ge(0, name="attendance_not_negative"), nullable=True),
        "venue_id": pa.Column(pl.Int64, nullable=True),
        "venue": pa.Column(pl.String, nullable=True),
        **{
            f"{side}_{column}": spec
            for side in ("home", "away")
            for column, spec in {
                "id": pa.Column(pl.Int64),
                "team": pa.Column(pl.String, nullable=True),
                "conference": pa.Column(pl.String, nullable=True),
                "classification": pa.Column(pl.String, pa.Check.isin(["fbs", "fcs", "ii", "iii"], name="known_classification"), nullable=True),
                "points": _points(),
                "pregame_elo": pa.Column(pl.Int32, nullable=True),
                "postgame_elo": pa.Column(pl.Int32, nullable=True),
                "postgame_win_probability": pa.Column(pl.Float64, pa.Check.in_range(0, 1, name="probability_in_0_1"), nullable=True),
            }.items()
        },
        "excitement_index": pa.Column(pl.Float64, nullable=True),
        "notes": pa.Column(pl.String, nullable=True),
        "is_suspect_score": pa.Column(pl.Boolean),
        "has_result": pa.Column(pl.Boolean),
    },
    complete=("start_date", "season_type", "home_team", "away_team"),
    checks=[
        _frame_check("home_differs_from_away", pl.col("home_id") != pl.col("away_id")),
        _frame_check(
            "completed_has_both_scores",
            ~pl.col("is_completed") | (pl.col("home_points").is_not_null() & pl.col("away_points").is_not_null()),
        ),
    ],
)

_LINES = _table(
    "lines",
    {
        "game_id": pa.Column(pl.Int64),
        "season": pa.Column(pl.Int32, _season_range()),
        "week": pa.Column(pl.Int32, pa.Check.in_range(0, MAX_WEEK, name="week_in_range"), nullable=True),
        "season_type": pa.Column(pl.String, nullable=True),
        "provider": pa.Column(pl.String),
        **{
            column: pa.Column(pl.Float64, pa.Check(lambda s: s.lazyframe.select(pl.col(s.key).abs() <= MAX_ABS_SPREAD), name="spread_within_100"), nullable=True)
            for column in ("spread", "spread_open")
        },
        "over_under": pa.Column(pl.Float64, pa.Check.in_range(0, 250, name="total_in_range"), nullable=True),
        "over_under_open": pa.Column(pl.Float64, pa.Check.in_range(0, 250, name="total_in_range"), nullable=True),
        "home_moneyline": pa.Column(pl.Int32, nullable=True),
        "away_moneyline": pa.Column(pl.Int32, nullable=True),
        "formatted_spread": pa.Column(pl.String, nullable=True),
    },
    complete=("spread",),
)

_TEAM_COLUMNS = {
    "team_id": pa.Column(pl.Int64),
    "school": pa.Column(pl.String),
    "mascot": pa.Column(pl.String, nullable=True),
    "abbreviation": pa.Column(pl.String, nullable=True),
    "conference": pa.Column(pl.String, nullable=True),
    "division": pa.Column(pl.String, nullable=True),
    "classification": pa.Column(pl.String, nullable=True),
}

_TEAMS = _table(
    "teams",
    {
        **_TEAM_COLUMNS,
        "color": pa.Column(pl.String, nullable=True),
        "alternate_color": pa.Column(pl.String, nullable=True),
        "twitter": pa.Column(pl.String, nullable=True),
        "venue_id": pa.Column(pl.Int64, nullable=True),
        "venue": pa.Column(pl.String, nullable=True),
        "city": pa.Column(pl.String, nullable=True),
        "state": pa.Column(pl.String, nullable=True),
        "country_code": pa.Column(pl.String, nullable=True),
        "timezone": pa.Column(pl.String, nullable=True),
        "latitude": pa.Column(pl.Float64, pa.Check.in_range(-90, 90, name="latitude_in_range"), nullable=True),
        "longitude": pa.Column(pl.Float64, pa.Check.in_range(-180, 180, name="longitude_in_range"), nullable=True),
        "venue_capacity": pa.Column(pl.Int64, pa.Check.ge(0, name="capacity_not_negative"), nullable=True),
        "is_grass": pa.Column(pl.Boolean, nullable=True),
        "is_dome": pa.Column(pl.Boolean, nullable=True),
    },
    complete=("school",),
)

_TEAM_SEASONS = _table(
    "team_seasons",
    {"season": pa.Column(pl.Int32, _season_range()), **{
        k: v for k, v in _TEAM_COLUMNS.items()
        if k in ("team_id", "school", "abbreviation", "mascot", "conference", "division", "classification")
    }},
    complete=("school", "conference"),
)

_CONFERENCES = _table(
    "conferences",
    {
        "conference_id": pa.Column(pl.Int64),
        "name": pa.Column(pl.String),
        "short_name": pa.Column(pl.String, nullable=True),
        "abbreviation": pa.Column(pl.String, nullable=True),
        "classification": pa.Column(pl.String, nullable=True),
    },
    complete=("name",),
)

_TEAM_SEASON_STATS = _table(
    "team_season_stats",
    {
        "season": pa.Column(pl.Int32, _season_range()),
        "team_id": pa.Column(pl.Int64),
        "team": pa.Column(pl.String, nullable=True),
        "conference": pa.Column(pl.String, nullable=True),
        "stat_name": pa.Column(pl.String),
        "stat_value": pa.Column(pl.Float64, nullable=True),
    },
    complete=("stat_value",),
)


_TEAM_TALENT = _table(
    "team_talent",
    {
        "season": pa.Column(pl.Int32, _season_range()),
        "team_id": pa.Column(pl.Int64),
        "team": pa.Column(pl.String, nullable=True),
        # the composite runs to about 1,000 (Alabama 1015.43 in 2023); 0 is real (service academies)
        "talent": pa.Column(pl.Float64, pa.Check.in_range(0, 2000, name="talent_in_range"), nullable=True),
    },
    complete=("talent",),
)


def _box_score_columns() -> dict[str, pa.Column]:
    from gridiron.transforms.box_scores import BOX_SCORE_COLUMNS  # the typed columns, stated once

    columns = {}
    for column, dtype in BOX_SCORE_COLUMNS.items():
        if column == "possession_seconds":  # overtime keeps no clock: a team holds at most 60 minutes
            checks = [pa.Check.in_range(0, 3600, name="possession_within_a_game")]
        elif "yards" in column:  # yards can be negative (a sack-filled passing game, a lost return)
            checks = []
        else:
            checks = [pa.Check.ge(0, name="count_not_negative")]
        columns[column] = pa.Column(dtype, checks, nullable=True)
    return columns


_GAME_TEAM_STATS = _table(
    "game_team_stats",
    {
        "game_id": pa.Column(pl.Int64),
        "season": pa.Column(pl.Int32, _season_range()),
        "season_type": pa.Column(pl.String),
        "week": pa.Column(pl.Int32, pa.Check.in_range(0, MAX_WEEK, name="week_in_range")),
        "team_id": pa.Column(pl.Int64),
        "team": pa.Column(pl.String, nullable=True),
        "conference": pa.Column(pl.String, nullable=True),
        "home_away": pa.Column(pl.String, pa.Check.isin(["home", "away"], name="home_or_away")),
        "points": _points(),
        **_box_score_columns(),
    },
    complete=("points", "total_yards", "rushing_attempts", "pass_attempts"),
    checks=[
        _frame_check("completions_within_attempts",
                     pl.col("pass_completions").is_null() | (pl.col("pass_completions") <= pl.col("pass_attempts"))),
        _frame_check("conversions_within_attempts",
                     (pl.col("third_down_conversions").is_null()
                      | (pl.col("third_down_conversions") <= pl.col("third_down_attempts")))
                     & (pl.col("fourth_down_conversions").is_null()
                        | (pl.col("fourth_down_conversions") <= pl.col("fourth_down_attempts")))),
    ],
)


def _record(prefix: str) -> dict[str, pa.Column]:
    p = f"{prefix}_" if prefix else ""
    return {f"{p}wins": _count(), f"{p}losses": _count(), f"{p}ties": _count(), f"{p}win_pct": _pct()}


_STANDINGS = _table(
    "standings",
    {
        "season": pa.Column(pl.Int32, _season_range()),
        "team_id": pa.Column(pl.Int64),
        "team": pa.Column(pl.String, nullable=True),
        "conference": pa.Column(pl.String, nullable=True),
        "classification": pa.Column(pl.String, nullable=True),
        "games": _count(),
        **_record(""), **_record("conf"), **_record("home"), **_record("away"),
        "points_for": pa.Column(pl.Int64, pa.Check.ge(0, name="points_not_negative")),
        "points_against": pa.Column(pl.Int64, pa.Check.ge(0, name="points_not_negative")),
        "point_diff": pa.Column(pl.Int64),
    },
    complete=("team", "win_pct"),
    checks=[
        _frame_check("wins_losses_ties_add_up_to_games",
                     pl.col("wins") + pl.col("losses") + pl.col("ties") == pl.col("games")),
        _frame_check("point_diff_adds_up", pl.col("points_for") - pl.col("points_against") == pl.col("point_diff")),
        _frame_check("home_and_away_within_games",
                     pl.col("home_wins") + pl.col("home_losses") + pl.col("home_ties")
                     + pl.col("away_wins") + pl.col("away_losses") + pl.col("away_ties") <= pl.col("games")),
    ],
)

SCHEMAS: dict[str, TableSchema] = {
    table.name: table
    for table in (_GAMES, _LINES, _TEAMS, _TEAM_SEASONS, _CONFERENCES, _TEAM_SEASON_STATS, _TEAM_TALENT,
                  _GAME_TEAM_STATS, _STANDINGS)
}
