"""Pure transforms from raw API rows to staging tables and marts (polars, no I/O, no clock).

`stage_partition` is the one entry point the process phase calls: one partition's payload (its
normalised bytes, or its parsed rows) and the rows of the partitions it depends on in, the frames it
produces out, keyed by table name. Payload bytes go through the columnar reader (`ingest`) where it
covers them, and through the row path otherwise; both give the transforms the same frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
import polars as pl

from gridiron.endpoints import ENDPOINTS
from gridiron.sources.base import Partition
from gridiron.tables import produced_by
from gridiron.transforms.box_scores import build_game_team_stats
from gridiron.transforms.frames import TransformError, snake_case
from gridiron.transforms.ingest import read_columnar
from gridiron.transforms.staging import (
    build_conferences,
    build_games,
    build_lines,
    build_team_season_stats,
    build_team_seasons,
    build_team_talent,
    build_teams,
    fields_missing,
    numbers_as_strings,
    placeholder_totals,
    unknown_fields,
)
from gridiron.transforms.standings import build_standings, team_games

__all__ = [
    "PRODUCES", "StagedFrames", "TransformError", "build_conferences", "build_game_team_stats", "build_games",
    "build_lines", "build_standings", "build_team_season_stats", "build_team_seasons", "build_team_talent",
    "build_teams", "drop_exact_duplicates", "fingerprint", "snake_case", "stage_partition", "team_games",
]

# endpoint -> the tables its partitions produce (from the table registry)
PRODUCES: dict[str, tuple[str, ...]] = {endpoint: produced_by(endpoint) for endpoint in ENDPOINTS}


@dataclass
class StagedFrames:
    """A partition's staged tables and what staging noticed on the way."""

    frames: dict[str, pl.DataFrame]
    warnings: list[str] = field(default_factory=list)


def _check_season(frame: pl.DataFrame, table: str, season: int) -> None:
    wrong = frame.filter(pl.col("season") != season)
    if wrong.height:
        raise TransformError(
            f"{table} {season}: the partition holds {wrong.height} rows of season "
            f"{wrong['season'][0]}"
        )


def stage_partition(
    partition: Partition,
    rows: Sequence[Mapping[str, Any]] | bytes,
    dependencies: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    conferences: Sequence[str] = (),
) -> StagedFrames:
    """The staging (and mart) frames of one partition. `rows`: its parsed rows, or its normalised
    payload's bytes. `dependencies` maps partition keys to rows."""
    dependencies = dependencies or {}
    columnar = read_columnar(partition, rows) if isinstance(rows, bytes) else None
    if columnar is not None:
        source, keys, duplicates, (as_strings, example) = columnar.frame, columnar.keys, 0, (0, None)
    else:
        rows = orjson.loads(rows) if isinstance(rows, bytes) else rows
        rows, duplicates = drop_exact_duplicates(rows)
        source, keys = rows, {key for row in rows for key in row}
        as_strings, example = numbers_as_strings(partition.endpoint, rows)
    staged = _stage(partition, source, dependencies, conferences)
    new_fields = unknown_fields(partition.endpoint, keys)
    if new_fields:
        staged.warnings.append(
            f"{partition.key}: fields not in the staging tables are ignored: {', '.join(new_fields)}"
        )
    if duplicates:
        staged.warnings.append(f"{partition.key}: dropped {duplicates} exact duplicate row(s)")
    missing = fields_missing(partition.endpoint, keys)
    if missing:
        staged.warnings.append(f"{partition.key}: no row carries {', '.join(missing)}; read as null")
    if as_strings:
        staged.warnings.append(
            f"{partition.key}: {as_strings} numeric value(s) arrived as strings and were read as numbers "
            f"(e.g. {example}): the API's types may have changed")
    return staged


def drop_exact_duplicates(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """Rows with exact duplicates removed (first kept), and how many were dropped. Key order does
    not matter. A flat row is keyed by its items; a nested one (box scores, lines) is compared
    whole with the rows of the same `id`, and only a nested row without an id is serialised."""
    seen: set[Any] = set()
    by_id: dict[Any, list[Mapping[str, Any]]] = {}
    unique = []
    for row in rows:
        try:
            key: Any = frozenset((k, v.__class__, v) for k, v in row.items())  # 1, 1.0 and true differ
        except TypeError:  # a list or dict value
            ident = row.get("id")
            if isinstance(ident, (int, str)) and not isinstance(ident, bool):
                same_id = by_id.setdefault(ident, [])
                if any(_same(row, other) for other in same_id):
                    continue
                same_id.append(row)
                unique.append(row)
                continue
            key = json.dumps(row, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique, len(rows) - len(unique)


def _same(a: Any, b: Any) -> bool:
    """Exactly equal JSON values: `==`, except that 1, 1.0 and true are not the same value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _stage(
    partition: Partition,
    rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
    dependencies: Mapping[str, Sequence[Mapping[str, Any]]],
    conferences: Sequence[str],
) -> StagedFrames:
    """One endpoint's transform over its rows, or the columnar reader's frame of them."""
    transform = TRANSFORMS.get(partition.endpoint)
    if transform is None:
        raise ValueError(f"no transform for endpoint {partition.endpoint!r}")
    return transform(partition, rows, dependencies, conferences)


def _games(partition, rows, dependencies, conferences) -> StagedFrames:
    season = partition.season
    games = build_games(rows)
    _check_season(games, "games", season)
    seen = set(games["home_conference"].drop_nulls()) | set(games["away_conference"].drop_nulls())
    unmatched = sorted(c for c in conferences if c not in seen)
    known = ", ".join(sorted(seen)[:12]) + (", ..." if len(seen) > 12 else "")
    notes = [f"games/{season}: conferences {', '.join(map(repr, unmatched))} match no team's conference "
             f"this season (known: {known})"] if unmatched and len(rows) else []
    return StagedFrames({"games": games, "standings": build_standings(games, conferences)}, notes)


def _lines(partition, rows, dependencies, conferences) -> StagedFrames:
    lines = build_lines(rows)
    _check_season(lines, "lines", partition.season)
    placeholders = placeholder_totals(rows)
    notes = [f"lines/{partition.season}: {placeholders} non-positive total(s) read as missing"] if placeholders else []
    return StagedFrames({"lines": lines}, notes)


def _teams_fbs(partition, rows, dependencies, conferences) -> StagedFrames:
    return StagedFrames({"team_seasons": build_team_seasons(rows, partition.season)})


def _stats_season(partition, rows, dependencies, conferences) -> StagedFrames:
    season = partition.season
    fbs_rows = dependencies.get(Partition("teams_fbs", season).key, [])
    team_rows = dependencies.get(Partition("teams").key)
    stats, unmatched = build_team_season_stats(
        rows, season, build_team_seasons(fbs_rows, season),
        build_teams(team_rows) if team_rows else None,
    )
    if len(rows) and stats.is_empty():
        raise TransformError(
            f"stats_season/{season}: no school name maps to a team id (is the season's FBS "
            "team list or the team list missing?)"
        )
    warnings = (
        [f"stats_season/{season}: no team id for {', '.join(unmatched)}; their rows are dropped"]
        if unmatched
        else []
    )
    return StagedFrames({"team_season_stats": stats}, warnings)


def _talent(partition, rows, dependencies, conferences) -> StagedFrames:
    season = partition.season
    team_rows = dependencies.get(Partition("teams").key)
    if rows and not team_rows:
        raise TransformError(f"talent/{season}: the team list is missing: no school name can map to a team id")
    talent, unmatched = build_team_talent(rows, season, build_teams(team_rows or []))
    warnings = ([f"talent/{season}: no team id for {', '.join(unmatched)}; their rows are dropped"]
                if unmatched else [])
    return StagedFrames({"team_talent": talent}, warnings)


def _games_teams(partition, rows, dependencies, conferences) -> StagedFrames:
    stats, unknown, impossible = build_game_team_stats(rows, partition.season, partition.season_type, partition.week)
    warnings = ([f"{partition.key}: stat categories not in game_team_stats are ignored: {', '.join(unknown)}"]
                if unknown else [])
    if impossible:
        warnings.append(f"{partition.key}: {len(impossible)} impossible made-attempts pair(s) read as missing "
                        f"({'; '.join(impossible[:3])})")
    return StagedFrames({"game_team_stats": stats}, warnings)


def _teams(partition, rows, dependencies, conferences) -> StagedFrames:
    return StagedFrames({"teams": build_teams(rows)})


def _conferences(partition, rows, dependencies, conferences) -> StagedFrames:
    return StagedFrames({"conferences": build_conferences(rows)})


# each endpoint's transform, by its name in the endpoint registry: (partition, rows or frame,
# dependency key -> rows, configured conferences) -> its staged frames and warnings
Transform = Callable[[Partition, Any, Mapping[str, Sequence[Mapping[str, Any]]], Sequence[str]], StagedFrames]
TRANSFORMS: dict[str, Transform] = {
    "games": _games, "lines": _lines, "teams_fbs": _teams_fbs, "stats_season": _stats_season,
    "talent": _talent, "games_teams": _games_teams, "teams": _teams, "conferences": _conferences,
}


def fingerprint(endpoint: str, *, conferences: Sequence[str] = ()) -> str:
    """Identity of the processing an endpoint's partitions get: the transform code and the settings
    it reads. A change of either makes every partition of that endpoint count as changed."""
    digest = hashlib.sha256()
    package = resources.files(__name__)
    for name in sorted(p.name for p in package.iterdir() if p.name.endswith(".py")):
        digest.update(name.encode())
        digest.update((package / name).read_bytes())
    settings = {"conferences": sorted(conferences)} if endpoint == "games" else {}
    digest.update(json.dumps({"endpoint": endpoint, **settings}, sort_keys=True).encode())
    return digest.hexdigest()
