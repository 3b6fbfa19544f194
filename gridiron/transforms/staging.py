"""Staging tables: the API's rows renamed to snake_case, typed, one row per entity. Pure functions.

| table | grain | key |
|---|---|---|
| games | one row per game | game_id |
| lines | one row per game x betting provider | (game_id, provider) |
| teams | one row per team (current affiliation) | team_id |
| team_seasons | one row per FBS team x season (membership that season) | (season, team_id) |
| conferences | one row per conference | conference_id |
| team_season_stats | one row per FBS team x season x statistic | (season, team_id, stat_name) |
| team_talent | one row per team x season | (season, team_id) |
| game_team_stats | one row per game x team: the box score, typed | (game_id, team_id) |

Staging renames, types and flattens, and fails on what it cannot do that for (a value of the wrong
type, a row without its id). Rules about the rows, a key given twice with different values or a
team on both sides of a game, are the quality gate's (`gridiron.quality`), which quarantines the
partition: the grain above is what the gate holds the staged frames to, not what staging asserts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from gridiron.transforms.frames import TransformError, rows_to_frame, snake_case

Rows = Sequence[Mapping[str, Any]]

_GAME_SCHEMA = {
    "id": pl.Int64, "season": pl.Int32, "week": pl.Int32, "seasonType": pl.String,
    "startDate": pl.String, "startTimeTBD": pl.Boolean, "completed": pl.Boolean,
    "neutralSite": pl.Boolean, "conferenceGame": pl.Boolean, "attendance": pl.Int64,
    "venueId": pl.Int64, "venue": pl.String,
    "homeId": pl.Int64, "homeTeam": pl.String, "homeConference": pl.String,
    "homeClassification": pl.String, "homePoints": pl.Int32, "homePregameElo": pl.Int32,
    "homePostgameElo": pl.Int32, "homePostgameWinProbability": pl.Float64,
    "awayId": pl.Int64, "awayTeam": pl.String, "awayConference": pl.String,
    "awayClassification": pl.String, "awayPoints": pl.Int32, "awayPregameElo": pl.Int32,
    "awayPostgameElo": pl.Int32, "awayPostgameWinProbability": pl.Float64,
    "excitementIndex": pl.Float64, "notes": pl.String,
}
_RENAME_GAMES = {
    "id": "game_id", "startTimeTBD": "start_time_tbd", "completed": "is_completed",
    "neutralSite": "is_neutral_site", "conferenceGame": "is_conference_game",
}


def _parse_utc(column: str) -> pl.Expr:
    # CFBD sends ISO 8601 in UTC ("2023-08-26T18:30:00.000Z"); tolerate missing fractions/offsets.
    return pl.col(column).str.to_datetime(time_zone="UTC", strict=False, time_unit="us")


def typed(source: Rows | pl.DataFrame, schema: Mapping[str, pl.DataType], table: str) -> pl.DataFrame:
    """The API's rows as a frame of `schema` (`rows_to_frame`); a frame the columnar reader
    (`transforms.ingest`) already typed to it passes through."""
    return source if isinstance(source, pl.DataFrame) else rows_to_frame(source, schema, table)


def build_games(rows: Rows | pl.DataFrame) -> pl.DataFrame:
    """Games, one row per game (all divisions). Adds the result flags every mart relies on:

    - `is_suspect_score`: marked completed but 0-0 (real data has such rows; never a real result);
    - `has_result`: completed, both scores present, not suspect: the games that count.
    """
    frame = typed(rows, _GAME_SCHEMA, "games")
    frame = frame.rename({c: _RENAME_GAMES.get(c, snake_case(c)) for c in frame.columns})
    bad_dates = frame.filter(pl.col("start_date").is_not_null())
    parsed = bad_dates.select(_parse_utc("start_date"))
    if parsed["start_date"].null_count():
        index = parsed["start_date"].is_null().arg_max()
        example = bad_dates.row(index, named=True)
        raise TransformError(
            f"games: start_date {example['start_date']!r} is not an ISO 8601 timestamp "
            f"(game_id {example['game_id']})"
        )
    for column in ("game_id", "season", "home_id", "away_id"):
        missing = frame.filter(pl.col(column).is_null())
        if missing.height:
            ident = missing["game_id"][0] if column != "game_id" else "unknown"
            raise TransformError(f"games: {missing.height} row(s) without {column} (e.g. game_id {ident})")
    both_scores = pl.col("home_points").is_not_null() & pl.col("away_points").is_not_null()
    suspect = pl.col("is_completed") & (pl.col("home_points") == 0) & (pl.col("away_points") == 0)
    return (
        frame.with_columns(
            _parse_utc("start_date"),
            pl.col("is_completed").fill_null(False),
            pl.col("is_neutral_site").fill_null(False),
            pl.col("is_conference_game").fill_null(False),
            pl.col("start_time_tbd").fill_null(False),
        )
        .with_columns(is_suspect_score=suspect.fill_null(False))
        .with_columns(
            has_result=(pl.col("is_completed") & both_scores & ~pl.col("is_suspect_score")).fill_null(False)
        )
        .sort("game_id")
    )


_LINE_SCHEMA = {
    "id": pl.Int64, "season": pl.Int32, "week": pl.Int32, "seasonType": pl.String,
    "provider": pl.String, "spread": pl.Float64, "formattedSpread": pl.String,
    "spreadOpen": pl.Float64, "overUnder": pl.Float64, "overUnderOpen": pl.Float64,
    "homeMoneyline": pl.Float64, "awayMoneyline": pl.Float64,
}
_GAME_KEYS = ("id", "season", "week", "seasonType")


def flat_lines(rows: Rows) -> pl.DataFrame:
    """The API's games with their `lines` as one typed row per game x provider (`_LINE_SCHEMA`):
    each provider's fields and its game's keys."""
    flat = []
    for game in rows:
        providers = game.get("lines") or []
        if not isinstance(providers, list):
            raise TransformError(f"lines: game {game.get('id')} has lines {providers!r}, not a list")
        for line in providers:
            if not isinstance(line, Mapping):
                raise TransformError(f"lines: game {game.get('id')} has a line that is not an object")
            flat.append({**line, **{key: game.get(key) for key in _GAME_KEYS}})
    return rows_to_frame(flat, _LINE_SCHEMA, "lines")


def build_lines(rows: Rows | pl.DataFrame) -> pl.DataFrame:
    """Betting lines, one row per game x provider. `spread` is from the home side (negative =
    home favoured). Games without any provider row contribute nothing. A non-positive total
    (`overUnder`), a provider's placeholder, becomes null (see `placeholder_totals`). Takes the
    API's games, or their providers already flat (`flat_lines`, or the columnar reader's)."""
    lines = rows if isinstance(rows, pl.DataFrame) else flat_lines(rows)
    lines = lines.rename({c: "game_id" if c == "id" else snake_case(c) for c in lines.columns})
    if lines["provider"].null_count():
        raise TransformError("lines: a line has no provider")
    return lines.with_columns(
        # a total of zero or less is a provider's placeholder for "no total" (real 2018 rows carry -1)
        *(pl.when(pl.col(c) > 0).then(pl.col(c)).alias(c) for c in ("over_under", "over_under_open"))
    ).select(
        "game_id", "season", "week", "season_type", "provider", "spread", "spread_open",
        "over_under", "over_under_open",
        pl.col("home_moneyline").round().cast(pl.Int32), pl.col("away_moneyline").round().cast(pl.Int32),
        "formatted_spread",
    ).sort("game_id", "provider")


_TEAM_SCHEMA = {
    "id": pl.Int64, "school": pl.String, "mascot": pl.String, "abbreviation": pl.String,
    "conference": pl.String, "division": pl.String, "classification": pl.String,
    "color": pl.String, "alternateColor": pl.String, "twitter": pl.String,
    "location": pl.Struct({
        "id": pl.Int64, "name": pl.String, "city": pl.String, "state": pl.String,
        "countryCode": pl.String, "timezone": pl.String, "latitude": pl.Float64,
        "longitude": pl.Float64, "capacity": pl.Int64, "grass": pl.Boolean, "dome": pl.Boolean,
    }),
}


def _teams_frame(rows: Rows, table: str) -> pl.DataFrame:
    frame = rows_to_frame(rows, _TEAM_SCHEMA, table)
    if frame["id"].null_count():
        raise TransformError(f"{table}: a team has no id")
    location = frame["location"].struct.unnest()
    location = location.rename({c: f"venue_{snake_case(c)}" for c in location.columns})
    location = location.rename({
        "venue_name": "venue", "venue_city": "city", "venue_state": "state",
        "venue_country_code": "country_code", "venue_timezone": "timezone",
        "venue_latitude": "latitude", "venue_longitude": "longitude",
        "venue_grass": "is_grass", "venue_dome": "is_dome",
    })
    frame = frame.drop("location").rename({"id": "team_id", "alternateColor": "alternate_color"})
    return pl.concat([frame, location], how="horizontal")


def build_teams(rows: Rows) -> pl.DataFrame:
    """All teams (every division), one row per team, with today's affiliation."""
    return _teams_frame(rows, "teams").sort("team_id")


def build_team_seasons(rows: Rows, season: int) -> pl.DataFrame:
    """FBS membership of one season: one row per team x season, the conference that season."""
    frame = _teams_frame(rows, "team_seasons").select(
        pl.lit(season, pl.Int32).alias("season"),
        "team_id", "school", "abbreviation", "mascot", "conference", "division", "classification",
    )
    return frame.sort("team_id")


_CONFERENCE_SCHEMA = {
    "id": pl.Int64, "name": pl.String, "shortName": pl.String, "abbreviation": pl.String,
    "classification": pl.String,
}


def build_conferences(rows: Rows) -> pl.DataFrame:
    """Conferences, one row per conference."""
    frame = rows_to_frame(rows, _CONFERENCE_SCHEMA, "conferences").rename(
        {"id": "conference_id", "shortName": "short_name"}
    )
    return frame.sort("conference_id")


_STAT_SCHEMA = {
    "season": pl.Int32, "team": pl.String, "conference": pl.String, "statName": pl.String,
    "statValue": pl.String,  # the API allows string or number; cast below
}


def build_team_season_stats(
    rows: Rows | pl.DataFrame, season: int, team_seasons: pl.DataFrame, teams: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, list[str]]:
    """Season statistics, one row per team x season x stat (long format, snake_case stat names).

    The API names teams by school only: names map to ids through that season's FBS list, then the
    full team list. Returns the frame and the school names that matched no team (dropped).
    """
    frame = rows if isinstance(rows, pl.DataFrame) else rows_to_frame(
        [{**row, "statValue": None if row.get("statValue") is None else str(row["statValue"])} for row in rows],
        _STAT_SCHEMA, "team_season_stats")
    names = team_seasons.select(pl.col("school").alias("team"), "team_id")
    if teams is not None:
        extra = teams.select(pl.col("school").alias("team"), "team_id").join(names, on="team", how="anti")
        names = pl.concat([names, extra])
    names = names.unique("team", keep="first")
    joined = frame.join(names, on="team", how="left")
    unmatched = sorted(joined.filter(pl.col("team_id").is_null())["team"].unique().to_list())
    stats = (
        joined.filter(pl.col("team_id").is_not_null())
        .with_columns(
            pl.col("season").fill_null(season),
            pl.col("statName").replace_strict(
                {name: snake_case(name) for name in joined["statName"].drop_nulls().unique()},
                default=None, return_dtype=pl.String).alias("stat_name"),
            pl.col("statValue").cast(pl.Float64, strict=False).alias("stat_value"),
        )
        .select("season", "team_id", "team", "conference", "stat_name", "stat_value")
    )
    wrong_season = stats.filter(pl.col("season") != season)
    if wrong_season.height:
        raise TransformError(
            f"team_season_stats {season}: holds rows of season {wrong_season['season'][0]}"
        )
    return stats.sort("team_id", "stat_name"), unmatched


_TALENT_SCHEMA = {"year": pl.Int32, "team": pl.String, "talent": pl.Float64}


def build_team_talent(rows: Rows, season: int, teams: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The 247Sports team talent composite, one row per team x season.

    The API names teams by school only (every name is a `school` of the full team list) and writes a
    whole number as a JSON integer; the service academies have 0 in some seasons (a real value: they
    sign few rated recruits). Returns the frame and the school names that matched no team (dropped).
    """
    frame = rows_to_frame(rows, _TALENT_SCHEMA, "team_talent")
    names = teams.select(pl.col("school").alias("team"), "team_id").unique("team", keep="first")
    joined = frame.join(names, on="team", how="left")
    unmatched = sorted(joined.filter(pl.col("team_id").is_null())["team"].unique().to_list())
    talent = (
        joined.filter(pl.col("team_id").is_not_null())
        .with_columns(pl.col("year").fill_null(season).alias("season"))
        .select("season", "team_id", "team", "talent")
    )
    wrong = talent.filter(pl.col("season") != season)
    if wrong.height:
        raise TransformError(f"team_talent {season}: holds rows of season {wrong['season'][0]}")
    return talent.sort("team_id"), unmatched


def placeholder_totals(rows: Rows | pl.DataFrame) -> int:
    """How many provider rows carry a total of zero or less (cleaned to null by `build_lines`).
    Takes the API's games, or their providers already flat."""
    if isinstance(rows, pl.DataFrame):
        return rows.select((pl.col("overUnder") <= 0).sum() + (pl.col("overUnderOpen") <= 0).sum()).item()
    return sum(
        1
        for game in rows
        for line in (game.get("lines") or [])
        if isinstance(line, Mapping)
        for key in ("overUnder", "overUnderOpen")
        if isinstance(line.get(key), (int, float)) and line[key] <= 0
    )


# API fields the staging tables deliberately leave out (the raw payload keeps them)
_IGNORED_FIELDS: dict[str, set[str]] = {
    "games": {"homeLineScores", "awayLineScores", "highlights"},
    "lines": {"homeTeam", "homeTeamId", "homeConference", "homeClassification", "homeScore",
              "awayTeam", "awayTeamId", "awayConference", "awayClassification", "awayScore",
              "startDate", "lines"},
    "teams": {"alternateNames", "logos", "location"},
    "teams_fbs": {"alternateNames", "logos", "location"},
    "stats_season": set(),
    "talent": set(),
    "games_teams": set(),
    "conferences": set(),
}
_SCHEMAS: dict[str, Mapping[str, pl.DataType]] = {
    "games": _GAME_SCHEMA, "teams": _TEAM_SCHEMA, "teams_fbs": _TEAM_SCHEMA, "conferences": _CONFERENCE_SCHEMA,
    "talent": _TALENT_SCHEMA,
}
RAW_SCHEMAS = _SCHEMAS  # the typed top-level fields of the flat endpoints, for the columnar reader
_USED_FIELDS: dict[str, set[str]] = {
    "games": set(_GAME_SCHEMA),
    "lines": set(_GAME_KEYS),
    "teams": set(_TEAM_SCHEMA),
    "teams_fbs": set(_TEAM_SCHEMA),
    "stats_season": set(_STAT_SCHEMA),
    "talent": set(_TALENT_SCHEMA),
    "games_teams": {"id", "teams"},
    "conferences": set(_CONFERENCE_SCHEMA),
}


def unknown_fields(endpoint: str, keys: set[str]) -> list[str]:
    """Of the keys the API rows carry, those the staging tables neither use nor knowingly leave
    out: new fields of a newer API version. They are ignored (and logged), never an error."""
    return sorted(keys - (_USED_FIELDS[endpoint] | _IGNORED_FIELDS[endpoint]))


def numbers_as_strings(endpoint: str, rows: Rows) -> tuple[int, str | None]:
    """How many values of numeric columns arrived as strings (the typed frame reads them as
    numbers; a changed API should still be noticed), and one example `field 'value'`."""
    schema = _SCHEMAS.get(endpoint, {})
    numeric = [c for c, t in schema.items() if t.is_numeric()]
    found = [(c, row[c]) for row in rows for c in numeric if isinstance(row.get(c), str)]
    return len(found), (f"{found[0][0]} {found[0][1]!r}" if found else None)


def fields_missing(endpoint: str, keys: set[str]) -> list[str]:
    """Fields the staging table reads that none of the rows' keys name (read as null): a sign the
    API changed. None while there are no keys (an empty payload says nothing of its fields)."""
    return [c for c in _SCHEMAS.get(endpoint, {}) if keys and c not in keys]
