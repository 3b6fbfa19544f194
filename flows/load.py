"""load: migrate the schema, commit the run's changed partitions and marts in one transaction."""

from __future__ import annotations

from prefect import get_run_logger

from flows.phases import phase
from gridiron.config import PipelineConfig
from gridiron.results import ProcessResult, TrainResult
from gridiron.storage import FetchRecord, LoadReport
from tasks.load import commit_changes, count_warehouse_tables, migrate_warehouse


@phase("load")
def load(
    config: PipelineConfig, processed: ProcessResult, trained: TrainResult, fetches: list[FetchRecord],
    run_id: str | None, versions: dict[str, tuple[str, str]] | None = None,
) -> LoadReport:
    """`versions`: the source's version tags of content already loaded (`version_updates`)."""
    logger = get_run_logger()
    warehouse = str(config.warehouse_path)
    applied = migrate_warehouse(warehouse)
    if applied:
        logger.info("load: schema migrated to version %d", applied[-1])
    if not (processed.loads or processed.quarantined or trained.outputs or fetches or versions):
        logger.info("load: nothing changed, nothing loaded")
        return LoadReport(partitions=[], rows_by_table={})
    report = commit_changes(warehouse, processed.loads, fetches, run_id, processed.quarantined, trained.outputs,
                            versions)
    if report.quarantined:
        logger.warning("load: kept %s in quarantine (raw_quarantine), not loaded", ", ".join(report.quarantined))
    if report.partitions:
        logger.info(
            "load: committed %d partitions, %d rows (%s)", len(report.partitions), report.rows,
            ", ".join(f"{table} {rows}" for table, rows in sorted(report.rows_by_table.items())),
        )
    else:
        logger.info("load: nothing changed, nothing loaded")
    tables = count_warehouse_tables(warehouse)
    logger.info("load: warehouse holds %s", ", ".join(f"{t} {n}" for t, n in tables.items()))
    return report
