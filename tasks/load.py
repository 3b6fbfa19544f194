"""Load tasks: migrate the schema, commit a run's partitions in one transaction, check, record."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gridiron.storage import (
    FetchRecord,
    LoadReport,
    MartOutput,
    PartitionLoad,
    QuarantineRecord,
    commit_partitions,
    connect,
    migrate,
    record_run,
    table_counts,
)


@task(name="migrate-warehouse", cache_policy=NO_CACHE)
def migrate_warehouse(warehouse: str) -> list[int]:
    with connect(warehouse) as con:
        return migrate(con)


@task(name="commit-partitions", cache_policy=NO_CACHE)
def commit_changes(
    warehouse: str, loads: list[PartitionLoad], fetches: list[FetchRecord], run_id: str | None,
    quarantined: list[QuarantineRecord], marts: list[MartOutput], versions: dict[str, tuple[str, str]] | None = None,
) -> LoadReport:
    logger = get_run_logger()

    def progress(key: str, table: str, rows: int) -> None:
        logger.debug("load: %s -> %s, %d rows (not committed yet)", key, table, rows)

    with connect(warehouse) as con:
        return commit_partitions(con, loads, fetches, run_id, progress, quarantined, marts, versions)


@task(name="count-warehouse-tables", cache_policy=NO_CACHE)
def count_warehouse_tables(warehouse: str) -> dict[str, int]:
    """Rows per table after the commit (the integrity checks are the validate phase's)."""
    with connect(warehouse) as con:
        return table_counts(con)


@task(name="record-pipeline-run", cache_policy=NO_CACHE)
def record_pipeline_run(warehouse: str, run: dict[str, Any], phases: list[dict[str, Any]],
                        errors: dict[str | None, str] | None = None) -> None:
    with connect(warehouse) as con:
        migrate(con)
        record_run(con, run, phases, errors)
