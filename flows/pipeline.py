"""ncaa-pipeline: the parent flow. Each phase is a subflow; small values pass between them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from blocks.register import with_stored_api_key
from flows.backup import backup
from flows.collect import collect
from flows.load import load
from flows.process import process
from flows.runners import task_runner_for
from flows.train import train
from flows.validate import validate
from flows.writer import one_writer
from gridiron.config import PipelineConfig, RunnerSettings, load_config
from gridiron.logs import run_log, secrets_from
from gridiron.quality.report import read_reports
from gridiron.results import PipelineResult, failure_summary, partition_failures
from gridiron.runs import RunTracker, stopped_by_signal
from gridiron.storage import RunInProgress, api_fetches, rollback_on_failure, run_lock, version_updates
from gridiron.watchdog import ApiWatchdog
from tasks.load import record_pipeline_run
from tasks.validate import record_quality_reports


class PartitionsFailed(RuntimeError):
    """Some partitions failed; the others were loaded. The run still ends Failed so people hear."""


@flow(name="ncaa-pipeline")
def ncaa_pipeline(
    full_refresh: bool = False, config_path: str | None = None,
    start_year: int | None = None, end_year: int | None = None,
) -> PipelineResult:
    """Collect, process (with the quality gate), train, load and validate college football data
    in the DuckDB warehouse, then back it up. Returns a `gridiron.results.PipelineResult`.

    `full_refresh` refetches every partition and rebuilds every table; `config_path` overrides
    `GRIDIRON_CONFIG` / `config/pipeline_config.yaml`, read now so edits apply at the next run;
    `start_year` / `end_year` override the file's seasons for this run (`gridiron backfill` runs
    past seasons in chunks this way; the other seasons in the warehouse are left as they are).
    """
    env = with_stored_api_key(os.environ)
    config = load_config(config_path, env).with_seasons(start_year, end_year)
    run = RunTracker(run_id=str(flow_run.get_id() or "local"), flow_run_name=flow_run.get_name(),
                     is_full_refresh=full_refresh)
    with run_log(config.home, secrets_from(config, env)) as log, _watching_prefect():
        try:
            with (one_writer(config, run.run_id, get_run_logger()),  # queue behind a run on another worker
                  run_lock(config.home, run.run_id, run.flow_run_name), _subflows_without_heartbeats()):
                result = _phases(config, run, full_refresh)  # one run per warehouse
            run.succeeded()
            return result
        except RunInProgress as error:
            run.failed(error, status="refused")
            raise
        except BaseException as error:
            run.failed(error)
            if stopped_by_signal(error, run.phases):
                error.add_note(run.error)  # the command's last line
            raise
        finally:
            run.warnings, run.errors = log.warnings, log.errors
            summary = run.summary()
            _record(config, run, summary)
            if run.status != "refused":  # a refused run says nothing of the run that holds the warehouse
                _push_metrics(config, summary, run.phase_rows())


@contextmanager
def _subflows_without_heartbeats() -> Iterator[None]:
    """The subflows run in this flow's process and thread, so this flow's heartbeat (Prefect's
    crash detection, already started) speaks for them. A subflow's own heartbeat thread costs
    about a second at its end, when Prefect joins it (it sleeps in 1 s steps): six a run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _phases(config: PipelineConfig, run: RunTracker, full_refresh: bool) -> PipelineResult:
    """The story of a run: each phase in order, timed and counted by `run`."""
    with run.phase("collect") as phase:
        bounded = collect.with_options(task_runner=task_runner_for(RunnerSettings()))  # threads, cores + 2
        collected = phase.counts(bounded(config, full_refresh))
        run.collected(collected)
    with run.phase("process") as phase:
        on_runner = process.with_options(task_runner=task_runner_for(config.runner))  # threads or Dask
        processed = phase.counts(on_runner(config, collected, full_refresh, run.run_id))
    with run.phase("train") as phase:
        trained = phase.counts(train(config, processed, run.run_id, full_refresh))
    with rollback_on_failure(config.warehouse_path, config.home):  # validate may undo the load
        with run.phase("load") as phase:
            report = phase.counts(load(config, processed, trained, api_fetches(collected), run.run_id,
                                       version_updates(collected)))
        with run.phase("validate") as phase:
            validated = phase.counts(validate(config, run.run_id, changed=bool(report.partitions)))
    with run.phase("backup") as phase:
        saved = phase.counts(backup(config, run.run_id, changed=bool(report.partitions or trained.outputs)))

    failed = partition_failures(collected, processed)
    run.partition_errors.update(failed)
    if failed:
        raise PartitionsFailed(failure_summary(failed))
    logger = get_run_logger()
    logger.info(
        "ncaa-pipeline: %s; %d partitions loaded (%d rows) from %s",
        "full refresh" if full_refresh else "incremental", len(report.partitions), report.rows, collected.source,
    )
    if collected.held_for_quota:
        logger.warning("ncaa-pipeline: %d partitions left for the next run by the API call budget: %s",
                       len(collected.held_for_quota), ", ".join(sorted(collected.held_for_quota)))
    return PipelineResult(
        run_id=run.run_id, source=collected.source, partitions_loaded=report.partitions,
        rows_by_table=report.rows_by_table, quarantined=report.quarantined,
        not_fetched=collected.held_for_quota, quality=validated.score,
        model=trained.champion, backup=saved.backup, warehouse=str(config.warehouse_path),
        forecasts=trained.predictions if trained.champion else None, unscored=trained.unscored,
    )


def _watching_prefect():
    """End the run within a bounded time if its Prefect API goes away (see gridiron.watchdog)."""
    from contextlib import nullcontext

    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    grace = float(os.environ.get("GRIDIRON_PREFECT_LOST_SECONDS", "30"))
    return ApiWatchdog(f"{url.rstrip('/')}/health", grace_seconds=grace) if url else nullcontext()


def _record(config: PipelineConfig, run: RunTracker, summary: dict) -> None:
    """Record the run and its quality reports, after any rollback, so a failed run keeps its history."""
    warehouse = str(config.warehouse_path)
    try:
        record_pipeline_run(warehouse, summary, run.phase_rows(), run.partition_errors)
        record_quality_reports(warehouse, run.run_id, read_reports(config.home, run.run_id))
    except Exception as record_error:  # never hide the run's own error behind this one
        get_run_logger().error("could not record the run in pipeline_runs: %s", record_error)


def _push_metrics(config: PipelineConfig, summary: dict, phase_rows: list[dict]) -> None:
    """Push the run's outcome to the Prometheus Pushgateway (`metrics.pushgateway`), if one is set.
    A gateway that cannot be reached is a WARNING: it never fails the run."""
    if not config.metrics.pushgateway:
        return
    import socket

    from gridiron.metrics import push, pushed_samples

    try:
        push(config.metrics.pushgateway, pushed_samples(summary, phase_rows),
             timeout=config.metrics.push_timeout_seconds, instance=socket.gethostname())
    except Exception as error:  # noqa: BLE001 - the run's outcome stands whatever the gateway says
        get_run_logger().warning("could not push the run's metrics to the Pushgateway at %s: %s",
                                 config.metrics.pushgateway, error)
