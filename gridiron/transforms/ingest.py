"""The columnar reader: a partition's normalised payload bytes straight into the typed frame its
transform takes, with polars' JSON reader (one parse in Rust, no Python object per row or field).

It covers the endpoints with volume (games, lines, box scores, season stats). It answers None
whenever the payload needs the row path's judgement, and the row path (parse, drop exact
duplicates, `rows_to_frame`) then reads it with its exact messages:
- the payload does not parse as one table of the expected shapes (a list where a value belongs);
- a value does not fit its column without loss (a string in a numeric column, a float in an
  integer one, an integer too wide);
- a key repeats (the row path drops exact duplicates with a warning; conflicting ones stay for
  the quality gate, which quarantines the partition);
- it is empty.
Both paths hand the transforms the same frame: a test holds them equal on the ten real seasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from gridiron.sources.base import Partition
from gridiron.transforms.box_scores import BOX_LONG_SCHEMA
from gridiron.transforms.staging import _GAME_KEYS, _LINE_SCHEMA, _STAT_SCHEMA, RAW_SCHEMAS

_LINE_FIELDS = {c: t for c, t in _LINE_SCHEMA.items() if c not in _GAME_KEYS}
_SIDE_FIELDS = {"teamId": ("team_id", pl.Int64), "team": ("team", pl.String), "conference": ("conference", pl.String),
                "homeAway": ("home_away", pl.String), "points": ("points", pl.Int32)}


@dataclass(frozen=True)
class Columnar:
    """What the reader made of a payload: the frame the endpoint's transform takes, and the set of
    the rows' top-level keys (for the warnings about fields the API added or dropped)."""

    frame: pl.DataFrame
    keys: set[str]


class _Refused(Exception):
    """The payload is for the row path."""


def read_columnar(partition: Partition, data: bytes) -> Columnar | None:
    """The typed frame of a payload, or None where the row path must read it (see the module)."""
    reader = _READERS.get(partition.endpoint)
    if reader is None:
        return None
    try:
        frame = pl.read_json(data, infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if frame.height == 0:
        return None
    try:
        return Columnar(reader(frame), set(frame.columns))
    except (_Refused, pl.exceptions.PolarsError):
        return None


def _fits(found: pl.DataType, wanted: pl.DataType, *, to_text: bool = False) -> bool:
    """A column read as `found` becomes `wanted` without loss or reinterpretation."""
    if found == wanted or found == pl.Null:
        return True
    if wanted.is_float():
        return found.is_numeric()
    if wanted.is_integer():
        return found.is_integer()
    return to_text and wanted == pl.String and found.is_numeric()


def _column(frame: pl.DataFrame, name: str, dtype: pl.DataType, alias: str | None = None,
            *, to_text: bool = False) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, dtype).alias(alias or name)
    if not _fits(frame.schema[name], dtype, to_text=to_text):
        raise _Refused(name)
    return pl.col(name).cast(dtype, strict=True).alias(alias or name)


def _unique(frame: pl.DataFrame, *keys: str) -> None:
    present = [k for k in keys if k in frame.columns]
    if present and frame.select(pl.struct(present).is_duplicated().any()).item():
        raise _Refused("repeated key")


def _games(frame: pl.DataFrame) -> pl.DataFrame:
    _unique(frame, "id")
    return frame.select(_column(frame, c, t) for c, t in RAW_SCHEMAS["games"].items())


def _stats(frame: pl.DataFrame) -> pl.DataFrame:
    _unique(frame, "team", "statName")
    return frame.select(_column(frame, c, t, to_text=c == "statValue") for c, t in _STAT_SCHEMA.items())


def _list_of_structs(frame: pl.DataFrame, name: str) -> bool:
    """Whether `name` is a list of objects with no null object in it (else the row path names it)."""
    dtype = frame.schema.get(name)
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, (pl.Struct, pl.Null)):
        return False
    return not frame.select(pl.col(name).list.eval(pl.element().is_null()).list.any().any()).item()


def _lines(frame: pl.DataFrame) -> pl.DataFrame:
    _unique(frame, "id")
    keys = [_column(frame, c, _LINE_SCHEMA[c]) for c in _GAME_KEYS]
    if frame.schema.get("lines", pl.Null) == pl.Null:
        return pl.DataFrame(schema=_LINE_SCHEMA)
    if not _list_of_structs(frame, "lines"):
        raise _Refused("lines")
    games = frame.select(*keys, "lines").filter(pl.col("lines").list.len() > 0).explode("lines")
    if not isinstance(games.schema["lines"], pl.Struct):
        return pl.DataFrame(schema=_LINE_SCHEMA)
    providers = games["lines"].struct.unnest()
    return pl.concat([games.drop("lines"), providers.select(
        _column(providers, c, t) for c, t in _LINE_FIELDS.items())], how="horizontal").select(list(_LINE_SCHEMA))


def _box_scores(frame: pl.DataFrame) -> pl.DataFrame:
    _unique(frame, "id")
    if not _list_of_structs(frame, "teams") or frame["teams"].null_count():
        raise _Refused("teams")
    games = (frame.select(_column(frame, "id", pl.Int64, "game_id"), "teams")
             .filter(pl.col("teams").list.len() > 0).explode("teams"))
    if not isinstance(games.schema["teams"], pl.Struct):
        return pl.DataFrame(schema=BOX_LONG_SCHEMA)
    sides = games["teams"].struct.unnest()
    sides = pl.concat([games.select("game_id"), sides], how="horizontal").with_row_index("side")
    stats_type = sides.schema.get("stats", pl.Null)
    if stats_type != pl.Null and not _list_of_structs(sides, "stats"):
        raise _Refused("stats")
    columns = [pl.col("side").cast(pl.Int64), "game_id",
               *(_column(sides, field, dtype, name) for field, (name, dtype) in _SIDE_FIELDS.items())]
    if stats_type == pl.Null or not isinstance(stats_type.inner, pl.Struct):
        return sides.select(*columns, pl.lit(False).alias("has_stat"), pl.lit(None, pl.String).alias("category"),
                            pl.lit(None, pl.String).alias("stat"))
    long = sides.select(*columns, (pl.col("stats").list.len().fill_null(0) > 0).alias("has_stat"),
                        "stats").explode("stats", empty_as_null=True)  # a side without stats keeps its row
    stat = long["stats"].struct.unnest()
    return pl.concat([long.drop("stats"), stat.select(
        _column(stat, "category", pl.String), _column(stat, "stat", pl.String, to_text=True))],
        how="horizontal").select(list(BOX_LONG_SCHEMA))


_READERS = {"games": _games, "stats_season": _stats, "lines": _lines, "games_teams": _box_scores}
