"""ncaa-pipeline: the parent flow. Each phase is a subflow; small values pass between them."""

from __future__ import annotations

import os

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from blocks.register import with_stored_api_key
from flows.backup import backup
from flows.collect import collect
from flows.load import load
from flows.process import process
from flows.train import train
from flows.validate import validate
from gridiron.config import PipelineConfig, load_config
from gridiron.logs import run_log, secrets_from
from gridiron.quality.report import read_reports
from gridiron.runs import RunTracker
from gridiron.storage import FetchRecord, RollbackPoint
from tasks.load import record_pipeline_run
from tasks.validate import record_quality_reports


class PartitionsFailed(RuntimeError):
    """Some partitions failed; the others were loaded. The run still ends Failed so people hear."""


@flow(name="ncaa-pipeline")
def ncaa_pipeline(full_refresh: bool = False, config_path: str | None = None) -> dict:
    """Collect, process (with the quality gate), train, load and validate college football data
    in the DuckDB warehouse, then back it up.

    `full_refresh` refetches every partition and rebuilds every table; `config_path` overrides
    `GRIDIRON_CONFIG` / `config/pipeline_config.yaml`, read now so edits apply at the next run.
    """
    env = with_stored_api_key(os.environ)
    config = load_config(config_path, env)
    secrets = secrets_from(config, env)
    with run_log(config.home, secrets):
        return _run(config, full_refresh)


def _run(config: PipelineConfig, full_refresh: bool) -> dict:
    logger = get_run_logger()
    run = RunTracker(run_id=str(flow_run.get_id() or "local"), flow_run_name=flow_run.get_name())
    warehouse = str(config.warehouse_path)
    status, error, collected = "failed", None, None
    try:
        with run.phase("collect") as phase:
            collected = collect(config, full_refresh)
            phase.records = collected.rows_fetched
        with run.phase("process") as phase:
            processed = process(config, collected, full_refresh, run.run_id)
            phase.records = processed["rows"]

        with run.phase("train") as phase:
            trained = train(config, collected, processed, run.run_id)
            phase.records = sum(o.rows for o in trained["outputs"])

        rollback = RollbackPoint(warehouse, config.home)
        rollback.take()
        try:
            with run.phase("load") as phase:
                report = load(config, processed["loads"], _fetch_records(collected), run.run_id,
                              processed["quarantined"], trained["outputs"])
                phase.records = report.rows
            with run.phase("validate") as phase:
                validated = validate(config, run.run_id, changed=bool(report.partitions))
                phase.records = len(validated["tables"])
            changed = bool(report.partitions or trained["outputs"])
        except BaseException as exc:
            undone = rollback.restore()
            logger.error(
                "%s: %s", type(exc).__name__,
                f"rolled back {', '.join(undone)} to their state before this run" if undone
                else "the warehouse is unchanged (the load's transaction was rolled back)",
            )
            raise
        finally:
            rollback.discard()

        with run.phase("backup") as phase:
            saved = backup(config, run.run_id, changed=changed)
            phase.records = 1 if saved.get("backup") else 0

        failures = {**collected.failed, **processed["failed"],
                    **{q.key: f"quarantined: {q.reason}" for q in processed["quarantined"]}}
        if failures:
            raise PartitionsFailed(
                f"{len(failures)} partition(s) failed and were not loaded: "
                + "; ".join(f"{key}: {message}" for key, message in sorted(failures.items()))
            )
        status = "completed"
        logger.info(
            "ncaa-pipeline: %s; %d partitions loaded (%d rows) from %s",
            "full refresh" if full_refresh else "incremental", len(report.partitions), report.rows,
            collected.source,
        )
        return {
            "run_id": run.run_id, "source": collected.source,
            "partitions_loaded": report.partitions, "rows_loaded": report.rows,
            "rows_by_table": report.rows_by_table, "warehouse": warehouse,
            "backup": saved.get("backup"), "quarantined": report.quarantined,
            "quality": validated["score"], "model": trained.get("champion"),
        }
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary = run.summary(
            status=status, error=error, source=collected.source if collected else None,
            is_full_refresh=full_refresh,
            partitions_total=len(collected.partitions) if collected else None,
            partitions_changed=len(collected.changed) if collected else None,
        )
        try:  # after any rollback, so a failed run keeps its history
            record_pipeline_run(warehouse, summary, [p.as_row() for p in run.phases])
            record_quality_reports(warehouse, run.run_id, read_reports(config.home, run.run_id))
        except Exception as record_error:  # never hide the run's own error behind this one
            logger.error("could not record the run in pipeline_runs: %s", record_error)


def _fetch_records(collected) -> list[FetchRecord]:
    """API fetches, for the quota history (snapshot reads cost nothing and are not logged)."""
    return [
        FetchRecord(p.key, p.fetched_at, p.source, p.checksum, p.rows, p.calls_remaining, p.is_changed)
        for p in collected.partitions
        if p.was_fetched and p.source == "api"
    ]
