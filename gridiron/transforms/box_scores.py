"""Box scores (`/games/teams`): one row per game x team, each stat category typed. Pure functions.

The API writes every stat as a string ("6-14", "36:53", "2.5"). Both readers hand the transform the
same long frame, one row per game x side x stat (`BOX_LONG_SCHEMA`): the columnar reader
(`transforms.ingest`) from the payload's bytes, `box_long` from parsed rows. The strings are parsed
with frame expressions; the few that are not plain ASCII go through `parse_stat`, the reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from gridiron.transforms.frames import TransformError, rows_to_frame

# `/games/teams` stat categories -> how the string is written and the column(s) it becomes
BOX_SCORE_STATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "firstDowns": ("count", ("first_downs",)),
    "thirdDownEff": ("made-attempts", ("third_down_conversions", "third_down_attempts")),
    "fourthDownEff": ("made-attempts", ("fourth_down_conversions", "fourth_down_attempts")),
    "totalYards": ("count", ("total_yards",)),
    "netPassingYards": ("count", ("net_passing_yards",)),
    "completionAttempts": ("made-attempts", ("pass_completions", "pass_attempts")),
    "yardsPerPass": ("number", ("yards_per_pass",)),
    "rushingYards": ("count", ("rushing_yards",)),
    "rushingAttempts": ("count", ("rushing_attempts",)),
    "yardsPerRushAttempt": ("number", ("yards_per_rush_attempt",)),
    "totalPenaltiesYards": ("made-attempts", ("penalties", "penalty_yards")),
    "turnovers": ("count", ("turnovers",)),
    "fumblesLost": ("count", ("fumbles_lost",)),
    "interceptions": ("count", ("interceptions_thrown",)),
    "fumblesRecovered": ("count", ("fumbles_recovered",)),
    "totalFumbles": ("count", ("total_fumbles",)),
    "rushingTDs": ("count", ("rushing_tds",)),
    "passingTDs": ("count", ("passing_tds",)),
    "possessionTime": ("clock", ("possession_seconds",)),
    "kickingPoints": ("count", ("kicking_points",)),
    "kickReturns": ("count", ("kick_returns",)),
    "kickReturnTDs": ("count", ("kick_return_tds",)),
    "kickReturnYards": ("count", ("kick_return_yards",)),
    "puntReturns": ("count", ("punt_returns",)),
    "puntReturnTDs": ("count", ("punt_return_tds",)),
    "puntReturnYards": ("count", ("punt_return_yards",)),
    "passesIntercepted": ("count", ("passes_intercepted",)),
    "interceptionTDs": ("count", ("interception_tds",)),
    "interceptionYards": ("count", ("interception_yards",)),
    "passesDeflected": ("count", ("passes_deflected",)),
    "qbHurries": ("count", ("qb_hurries",)),
    "sacks": ("number", ("sacks",)),  # half sacks: "2.5"
    "tackles": ("count", ("tackles",)),
    "tacklesForLoss": ("number", ("tackles_for_loss",)),
    "defensiveTDs": ("count", ("defensive_tds",)),
}
_BOX_KEYS = {"game_id": pl.Int64, "season": pl.Int32, "season_type": pl.String, "week": pl.Int32,
             "team_id": pl.Int64, "team": pl.String, "conference": pl.String, "home_away": pl.String,
             "points": pl.Int32}
BOX_SCORE_COLUMNS: dict[str, pl.DataType] = {
    column: (pl.Float64 if kind == "number" else pl.Int32)
    for kind, columns in BOX_SCORE_STATS.values() for column in columns
}
# one row per game x side x stat, in the payload's order; a side without stats has one row whose
# `has_stat` is false; `side` numbers the sides in order
BOX_LONG_SCHEMA: dict[str, pl.DataType] = {
    "side": pl.Int64, "game_id": pl.Int64, "team_id": pl.Int64, "team": pl.String, "conference": pl.String,
    "home_away": pl.String, "points": pl.Int32, "has_stat": pl.Boolean, "category": pl.String, "stat": pl.String,
}
_WHOLE = re.compile(r"^-?\d+$")
_PAIR = re.compile(r"^(-?\d+)-(-?\d+)$")
_CLOCK = re.compile(r"^(\d+):([0-5]\d)$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")  # "7.3", "-12", ".0" (real rows write it so)
# made-attempts pairs where made can be at most attempts (penalties-yards is no such pair)
_WITHIN = ("thirdDownEff", "fourthDownEff", "completionAttempts")


def parse_stat(kind: str, text: str) -> tuple[float | int, ...] | None:
    """A box-score string as numbers: "6-14" -> (6, 14), "36:53" -> (2213,) seconds, "7.3" -> (7.3,)."""
    text = text.strip()
    if kind == "count":
        return (int(text),) if _WHOLE.match(text) else None
    if kind == "made-attempts":
        match = _PAIR.match(text)
        return (int(match[1]), int(match[2])) if match else None
    if kind == "clock":
        match = _CLOCK.match(text)
        return (int(match[1]) * 60 + int(match[2]),) if match else None
    return (float(text),) if _NUMBER.match(text) else None


def box_long(rows: Sequence[Mapping[str, Any]], season: int, season_type: str, week: int) -> pl.DataFrame:
    """Parsed `/games/teams` rows as the long frame (`BOX_LONG_SCHEMA`); a game whose `teams` is
    not a list is refused by name."""
    records: list[dict[str, Any]] = []
    side = 0
    for game in rows:
        teams = game.get("teams")
        if not isinstance(teams, list):
            raise TransformError(f"game_team_stats {season} {season_type} week {week}: game {game.get('id')} "
                                 f"has teams {teams!r}, expected a list")
        for team in teams:
            base = {"side": side, "game_id": game.get("id"), "team_id": team.get("teamId"), "team": team.get("team"),
                    "conference": team.get("conference"), "home_away": team.get("homeAway"),
                    "points": team.get("points")}
            stats = team.get("stats") or []
            records.extend({**base, "has_stat": True, "category": stat.get("category"),
                            "stat": None if stat.get("stat") is None else str(stat.get("stat"))} for stat in stats)
            if not stats:
                records.append({**base, "has_stat": False, "category": None, "stat": None})
            side += 1
    return rows_to_frame(records, BOX_LONG_SCHEMA, "game_team_stats")


def _parsed(long: pl.DataFrame) -> pl.DataFrame:
    """The long frame with each known stat's `kind` and numbers (`first`; `second` of a pair; null:
    not parseable as its kind)."""
    kinds = {category: kind for category, (kind, _) in BOX_SCORE_STATS.items()}
    text = pl.col("stat").str.strip_chars()
    kind = pl.col("category").replace_strict(kinds, default=None, return_dtype=pl.String)
    pair = text.str.extract_groups(_PAIR.pattern)
    clock = text.str.extract_groups(_CLOCK.pattern)
    first = (pl.when(kind == "count").then(pl.when(text.str.contains(_WHOLE.pattern)).then(text.cast(pl.Float64, strict=False)))
             .when(kind == "made-attempts").then(pair.struct.field("1").cast(pl.Float64, strict=False))
             .when(kind == "clock").then(clock.struct.field("1").cast(pl.Float64, strict=False) * 60
                                         + clock.struct.field("2").cast(pl.Float64, strict=False))
             .when(kind == "number").then(pl.when(text.str.contains(_NUMBER.pattern)).then(text.cast(pl.Float64, strict=False))))
    second = pl.when(kind == "made-attempts").then(pair.struct.field("2").cast(pl.Float64, strict=False))
    frame = long.with_columns(kind=kind, first=first, second=second)
    odd = frame.filter(pl.col("kind").is_not_null() & pl.col("stat").is_not_null() & ~pl.col("stat").str.contains(r"^[\x00-\x7f]*$"))
    if odd.height:  # not plain ASCII ("\uff17"): the reference parser, once per distinct string
        pairs = sorted(set(zip(odd["kind"], odd["stat"])))
        values = [parse_stat(k, t) or () for k, t in pairs]
        fixes = pl.DataFrame({"kind": [k for k, _ in pairs], "stat": [t for _, t in pairs],
                              "odd_first": [v[0] if v else None for v in values],
                              "odd_second": [v[1] if len(v) > 1 else None for v in values]},
                             schema={"kind": pl.String, "stat": pl.String, "odd_first": pl.Float64,
                                     "odd_second": pl.Float64})
        frame = (frame.join(fixes, on=["kind", "stat"], how="left", maintain_order="left")
                 .with_columns(first=pl.coalesce("odd_first", "first"), second=pl.coalesce("odd_second", "second"))
                 .drop("odd_first", "odd_second"))
    return frame


def build_game_team_stats(
    rows: Sequence[Mapping[str, Any]] | pl.DataFrame, season: int, season_type: str, week: int
) -> tuple[pl.DataFrame, list[str], list[str]]:
    """Box scores, one row per game x team, each stat category typed into its column(s).

    Takes the API's rows or the long frame (`BOX_LONG_SCHEMA`). A category the API leaves out (no
    kick return, no defensive stats before 2016) is null. Real rows hold impossible pairs now and
    then ("1--1" fourth downs, more conversions than attempts): both numbers are read as missing,
    and said. Returns the frame, the categories not known here (ignored: a newer API's additions)
    and what was read as missing.
    """
    long = rows if isinstance(rows, pl.DataFrame) else box_long(rows, season, season_type, week)
    unknown = sorted({str(c) for c in long.filter(pl.col("has_stat") & ~pl.col("category").is_in(list(BOX_SCORE_STATS))
                                                  .fill_null(False))["category"].to_list()})
    frame = _parsed(long.with_row_index("order"))
    known = pl.col("kind").is_not_null() & pl.col("stat").is_not_null()
    bad = frame.filter(known & pl.col("first").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise TransformError(
            f"game_team_stats {season} {season_type} week {week}: game {row['game_id']}, {row['team']}: "
            f"{row['category']} is {row['stat']!r}, not {row['kind'].replace('count', 'a whole number')}")
    within = pl.col("category").is_in(_WITHIN) & ~((pl.col("first") >= 0) & (pl.col("first") <= pl.col("second")))
    impossible = frame.filter(known & within)
    usable = frame.filter(known & ~within.fill_null(False))
    values = pl.concat([  # one row per side x column: the first number, and the second of a pair
        usable.select("order", "side", pl.col("category").replace_strict(
            {c: n[index] for c, (_, n) in BOX_SCORE_STATS.items() if len(n) > index}, default=None).alias("column"),
            pl.col(value).alias("value")).drop_nulls("column")
        for index, value in enumerate(("first", "second"))])
    wide = (values.sort("order").group_by("side", "column").agg(pl.col("value").last())
            .pivot(on="column", index="side", values="value")) if values.height else pl.DataFrame(
        schema={"side": pl.Int64})
    sides = frame.group_by("side", maintain_order=True).agg(
        *(pl.col(c).first() for c in ("game_id", "team_id", "team", "conference", "home_away", "points")))
    sides = sides.join(wide, on="side", how="left", maintain_order="left").with_columns(
        (pl.col(c).cast(t) if c in wide.columns else pl.lit(None, t)).alias(c) for c, t in BOX_SCORE_COLUMNS.items())
    stats = sides.select(
        pl.col("game_id"), pl.lit(season, pl.Int32).alias("season"), pl.lit(season_type, pl.String).alias("season_type"),
        pl.lit(week, pl.Int32).alias("week"),
        *(pl.col(c).cast(t) for c, t in _BOX_KEYS.items() if c not in ("game_id", "season", "season_type", "week")),
        *BOX_SCORE_COLUMNS)
    _check_sides(stats, season)
    said = [f"game {r['game_id']} {r['team']} {r['category']} {r['stat']!r}" for r in impossible.iter_rows(named=True)]
    return stats.sort("game_id", "home_away", descending=[False, True], maintain_order=True), unknown, said


def _check_sides(stats: pl.DataFrame, season: int) -> None:
    """Every side names its team and home or away; no team twice in one game (in the payload's order)."""
    bad_side = stats.filter(pl.col("team_id").is_null() | ~pl.col("home_away").is_in(["home", "away"]).fill_null(True))
    if bad_side.height:
        row = bad_side.row(0, named=True)
        raise TransformError(f"game_team_stats {season}: game {row['game_id']} has a team {row['team']!r} "
                             f"with id {row['team_id']} and homeAway {row['home_away']!r}")
    repeated = stats.filter(pl.struct("game_id", "team_id").is_duplicated())
    if repeated.height:
        row = repeated.row(0, named=True)
        raise TransformError(f"game_team_stats {season}: game {row['game_id']} has {row['team']} more than "
                             "once with different values")
