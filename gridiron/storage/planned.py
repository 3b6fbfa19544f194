"""The warehouse as it will be once a run's partitions load, read before they do.

For each registry table: the stored rows minus the partitions this run replaces (by the table's
partition column, or the whole table when it has none), plus the run's staged Parquet files, as
one DuckDB query. The quality gate's known ids, the training frames, the train signature and
`gridiron backtest` all read the warehouse through this one view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import polars as pl

from gridiron.storage.db import connect, table_exists, utc
from gridiron.storage.loading import PartitionLoad
from gridiron.storage.raw import read_manifest
from gridiron.storage.schema import schema_version
from gridiron.tables import TABLES


class PlannedWarehouse:
    """Read-only: the file is opened for the moment of each query (none when it does not exist)."""

    def __init__(self, path: str | Path, loads: Sequence[PartitionLoad] = ()):
        self.path = Path(path)
        self.loads = list(loads)

    def _query(self, con: duckdb.DuckDBPyConnection | None, table: str, columns: str) -> tuple[str, list] | None:
        spec = TABLES[table]
        staged = [path for load in self.loads for path in load.staged(table)]
        parts, params = [], []
        if con is not None and table_exists(con, table):
            if not spec.partition_columns:
                replaced_whole = any(load.staged(table) for load in self.loads)
                if not replaced_whole:
                    parts.append(f"SELECT {columns} FROM {table}")
            else:
                replaced = sorted({"/".join(map(str, load.scope)) for load in self.loads if load.staged(table)})
                scope = f"concat_ws('/', {', '.join(spec.partition_columns)})"
                parts.append(f"SELECT {columns} FROM {table} WHERE NOT list_contains(?, {scope})")
                params.append(replaced)
        if staged:
            parts.append(f"SELECT {columns} FROM read_parquet(?, union_by_name = true)")
            params.append(staged)
        return (" UNION ALL BY NAME ".join(parts), params) if parts else None

    def _read(self, table: str, columns: str = "*") -> pl.DataFrame:
        if self.path.exists():
            with connect(self.path, read_only=True) as con:
                query = self._query(con if schema_version(con) > 0 else None, table, columns)
                return utc(con.sql(query[0], params=query[1]).pl()) if query else pl.DataFrame()
        query = self._query(None, table, columns)
        if not query:
            return pl.DataFrame()
        with duckdb.connect() as con:
            return utc(con.sql(query[0], params=query[1]).pl())

    def frame(self, table: str, columns: Iterable[str] | None = None) -> pl.DataFrame:
        """Every row the table will hold (empty frame when it will hold none)."""
        return self._read(table, ", ".join(columns) if columns else "*")

    def ids(self, table: str, column: str) -> list[int]:
        """The distinct values of an id column the table will hold, sorted."""
        frame = self._read(table, column)
        return sorted(frame[column].unique().to_list()) if frame.height else []

    def signatures(self, endpoints: Iterable[str]) -> dict[str, str]:
        """Partition key -> signature of what will be loaded, for the partitions of `endpoints`."""
        endpoints = set(endpoints)
        found: dict[str, str] = {}
        if self.path.exists():
            with connect(self.path, read_only=True) as con:
                found = {key: entry.signature for key, entry in read_manifest(con).items()
                         if key.split("/")[0] in endpoints and entry.signature}
        found.update({load.key: load.signature for load in self.loads if load.endpoint in endpoints})
        return found
