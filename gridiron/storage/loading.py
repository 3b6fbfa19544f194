"""The one-transaction load: a run's partitions, marts, quarantine and fetch history, together.

`commit_partitions` replaces the changed partitions' rows (by the registry's partition column),
their manifest entries and payloads, the train phase's marts, the quarantined payloads and the
fetch records in one transaction, and checks each replaced table's row count before committing:
the warehouse moves from one consistent state to the next, or stays exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from gridiron.planning import CollectedPartition, CollectResult
from gridiron.sources.base import Partition
from gridiron.storage.db import LoadError, transaction
from gridiron.tables import PARTITION_TABLES, TABLES, Table


@dataclass(frozen=True)
class TableOutput:
    """One table's rows from one partition, staged as a Parquet file."""

    table: str
    path: str
    rows: int


@dataclass(frozen=True)
class MartOutput:
    """A mart table's rows from the train phase: the whole table, or the rows of one `key`
    (a model version) when the table is partitioned."""

    table: str
    path: str
    rows: int
    key: str | None = None


@dataclass(frozen=True)
class PartitionLoad:
    """One changed partition, ready to commit: its manifest fields and its staged tables."""

    key: str
    endpoint: str
    season: int | None
    scope: tuple[int | str, ...]  # the values of its tables' partition columns (`Partition.scope`)
    params: dict[str, Any]
    checksum: str
    signature: str
    rows: int
    fetched_at: datetime
    source: str
    calls_remaining: int | None
    raw_path: str
    outputs: list[TableOutput] = field(default_factory=list)
    version: str | None = None  # the source's version tag of the payload (`Source.version`)

    @property
    def partition(self) -> Partition:
        """The typed partition its key names."""
        return Partition.from_key(self.key)

    @classmethod
    def from_collected(cls, collected: CollectedPartition, outputs: Sequence[TableOutput]) -> PartitionLoad:
        """The load of a collected partition with its staged outputs."""
        partition = collected.partition
        return cls(
            key=collected.key, endpoint=partition.endpoint, season=partition.season,
            scope=partition.scope, params=partition.params, checksum=collected.checksum, signature=collected.signature,
            rows=collected.rows, fetched_at=collected.fetched_at, source=collected.source,
            calls_remaining=collected.calls_remaining, raw_path=collected.raw_path or "",
            outputs=list(outputs), version=collected.version,
        )

    def staged(self, table: str) -> list[str]:
        """The staged files of one of its tables."""
        return [output.path for output in self.outputs if output.table == table]


@dataclass(frozen=True)
class QuarantineRecord:
    """A partition kept out of the warehouse's tables: its payload and why."""

    key: str
    checksum: str
    reason: str
    failed_checks: str  # JSON list of the failures
    raw_path: str


@dataclass(frozen=True)
class FetchRecord:
    """One API fetch, for the quota history (`raw_fetches`)."""

    key: str
    fetched_at: datetime
    source: str
    checksum: str
    rows: int
    calls_remaining: int | None
    is_changed: bool


def api_fetches(collected: CollectResult) -> list[FetchRecord]:
    """This run's API fetches (snapshot reads cost nothing and are not logged)."""
    return [
        FetchRecord(p.key, p.fetched_at, p.source, p.checksum, p.rows, p.calls_remaining, p.is_changed)
        for p in collected.partitions
        if p.was_fetched and p.source == "api"
    ]


def version_updates(collected: CollectResult) -> dict[str, tuple[str, str]]:
    """key -> (checksum, version tag) of this run's reads that found the content already loaded:
    the tag is recorded on that content's manifest row, so the next run need not read it again (a
    warehouse loaded before tags were kept; a file rewritten with the same rows)."""
    return {p.key: (p.checksum, p.version) for p in collected.partitions
            if p.was_fetched and not p.is_changed and p.version}


@dataclass(frozen=True)
class LoadReport:
    """What one load committed: partition keys, rows per table, quarantined keys."""

    partitions: list[str]
    rows_by_table: dict[str, int]
    quarantined: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows committed over every table."""
        return sum(self.rows_by_table.values())

    @property
    def records(self) -> int:
        """The phase's record count: the rows it committed."""
        return self.rows


def replace_table_rows(
    con: duckdb.DuckDBPyConnection, table: Table, path: str, rows: int,
    value: int | str | tuple[int | str, ...] | None,
) -> None:
    """Replace a table's rows for one value of its partition column(s) (or the whole table) with a
    staged Parquet file, and check the stored count against the staged one."""
    columns = table.partition_columns
    values = () if value is None else value if isinstance(value, tuple) else (value,)
    if not columns:
        predicate, params, where = "", [], "the table"
    else:
        if len(values) != len(columns):
            raise LoadError(f"{table.name} is partitioned by {', '.join(columns)} but the partition gives "
                            f"{values or 'no value'}")
        predicate = " WHERE " + " AND ".join(f"{column} = ?" for column in columns)
        params = list(values)
        where = ", ".join(f"{column} {value}" for column, value in zip(columns, values))
    con.execute(f"DELETE FROM {table.name}{predicate}", params)
    try:
        con.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM read_parquet(?)", [path])
    except duckdb.ConstraintException as error:
        raise LoadError(f"{table.name} ({where}): the rows clash with rows already stored: {error}") from error
    stored = con.execute(f"SELECT count(*) FROM {table.name}{predicate}", params).fetchone()[0]
    if stored != rows:
        raise LoadError(f"{table.name}: {stored} rows stored for {where}, {rows} processed")


def commit_partitions(
    con: duckdb.DuckDBPyConnection,
    loads: Sequence[PartitionLoad],
    fetches: Sequence[FetchRecord],
    run_id: str | None,
    progress: Callable[[str, str, int], None] | None = None,
    quarantined: Sequence[QuarantineRecord] = (),
    marts: Sequence[MartOutput] = (),
    versions: Mapping[str, tuple[str, str]] | None = None,
) -> LoadReport:
    """Replace the changed partitions' rows, manifest entries and payloads in one transaction.

    Each table's stored row count for the partition must equal the processed count, or nothing is
    committed (`LoadError`). Fetch records are appended in the same transaction, and `versions`
    (`version_updates`) set on the manifest rows of the same content. `progress` is called with
    (partition key, table, rows) after each table's rows are replaced.
    """
    rows_by_table: dict[str, int] = {}
    now = datetime.now(UTC)
    with transaction(con):
        # reference tables first, so teams derived from games see the fresh team list
        for load in sorted(loads, key=lambda load: load.season is not None):
            for output in load.outputs:
                replace_table_rows(con, PARTITION_TABLES[output.table], output.path, output.rows, load.scope)
                rows_by_table[output.table] = rows_by_table.get(output.table, 0) + output.rows
                if progress:
                    progress(load.key, output.table, output.rows)
            con.execute(
                "INSERT OR REPLACE INTO raw_payloads VALUES (?, ?, ?)",
                [load.key, load.checksum, Path(load.raw_path).read_bytes()],
            )
            con.execute(
                "INSERT OR REPLACE INTO raw_manifest (partition_key, endpoint, season, params, "
                "checksum, signature, rows, fetched_at, source, calls_remaining, loaded_at, run_id, "
                "table_rows, source_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    load.key, load.endpoint, load.season, json.dumps(load.params, sort_keys=True),
                    load.checksum, load.signature, load.rows, load.fetched_at, load.source,
                    load.calls_remaining, now, run_id,
                    json.dumps({o.table: o.rows for o in load.outputs}, sort_keys=True), load.version,
                ],
            )
        for mart in marts:
            replace_table_rows(con, TABLES[mart.table], mart.path, mart.rows, mart.key)
            rows_by_table[mart.table] = rows_by_table.get(mart.table, 0) + mart.rows
        for record in quarantined:
            con.execute(
                "INSERT OR REPLACE INTO raw_quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                [record.key, record.checksum, run_id, now, record.reason, record.failed_checks,
                 Path(record.raw_path).read_bytes()],
            )
        for key, (checksum, version) in (versions or {}).items():
            con.execute("UPDATE raw_manifest SET source_version = ? WHERE partition_key = ? AND checksum = ?",
                        [version, key, checksum])
        for fetch in fetches:
            con.execute(
                "INSERT INTO raw_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [fetch.fetched_at, run_id, fetch.key, fetch.source, fetch.checksum, fetch.rows,
                 fetch.calls_remaining, fetch.is_changed],
            )
    return LoadReport(
        partitions=[load.key for load in loads], rows_by_table=rows_by_table,
        quarantined=[record.key for record in quarantined],
    )


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in each table the partitions produce."""
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in PARTITION_TABLES}
