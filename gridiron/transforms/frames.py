"""Building typed polars frames from API rows, with errors that name the column and the value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl


class TransformError(ValueError):
    """Raw rows that cannot become the staging table: names the table, column and an example."""


def snake_case(name: str) -> str:
    """`homePoints` -> `home_points`, `thirdDownConversions` -> `third_down_conversions`."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def rows_to_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType], table: str
) -> pl.DataFrame:
    """A frame with exactly `schema`'s columns (missing keys become null, extra keys are dropped).

    A value that does not fit its column's type raises `TransformError` naming table, column, value.
    """
    try:
        return pl.from_dicts(list(rows), schema=dict(schema))
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        pass
    for column, dtype in schema.items():
        for index, row in enumerate(rows):
            value = row.get(column)
            try:
                pl.Series([value], dtype=dtype)
            except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
                ident = row.get("id", index)
                raise TransformError(
                    f"{table}: column {column!r} has {value!r} ({type(value).__name__}) where "
                    f"{dtype} belongs (row id {ident})"
                ) from None
    raise TransformError(f"{table}: rows do not fit the expected columns {list(schema)}")
