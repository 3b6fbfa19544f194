"""process: turn each changed partition into staged Parquet tables, then hold them to the quality
gate: a partition failing its schema is quarantined, and a run below the quality threshold stops."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from flows.fanout import fan_out, gathered
from flows.phases import phase
from gridiron import clock
from gridiron.config import PipelineConfig
from gridiron.planning import CollectResult, dependencies_of, staleness
from gridiron.quality.gate import PartitionVerdict, gate_outcome, gate_waves, passing
from gridiron.quality.report import report_rows, write_report
from gridiron.results import ProcessResult
from gridiron.storage import PartitionLoad
from tasks.process import stage_partition_files, stage_week_files
from tasks.validate import (
    emit_quality_breach,
    judge_staged_partition,
    judge_staged_weeks,
    known_ids,
    publish_quality,
)


class QualityGateFailed(RuntimeError):
    """The run's data scored below `min_data_quality_score`: nothing is loaded."""


@phase("process")
def process(config: PipelineConfig, collected: CollectResult, full_refresh: bool = False, run_id: str = "local") -> ProcessResult:
    """Stage every changed partition, hold the staged partitions to the quality gate, and return what may load."""
    logger = get_run_logger()
    if not collected.changed:
        logger.info("process: no partition changed, nothing to process")
        return ProcessResult()
    loads, failed = _stage(config, collected, full_refresh)
    if not loads:
        return ProcessResult(failed=failed)

    gate = gate_outcome(loads, _judge(config, loads), config.min_data_quality_score)
    write_report(config.home, run_id, "process", report_rows(gate.tables, gate.score), gate.threshold)
    for record in gate.quarantined:
        logger.warning("quarantined %s", record.reason)
    for breach in gate.breaches:
        emit_quality_breach(breach.table, breach.severity, breach.score, breach.threshold,
                            breach.failed_checks, "process", run_id)
    if gate.stops:
        publish_quality("process", gate.tables, gate.score, gate.threshold,
                        ["Nothing was loaded: the run stopped at the gate."])
        raise QualityGateFailed(gate.stop_message())
    result = ProcessResult(loads=gate.passing, quarantined=gate.quarantined, failed=failed, score=gate.score)
    logger.info(
        "process: %d partitions staged (%d rows), %d quarantined, %d failed; quality %.3f (threshold %.2f)",
        len(result.loads), result.rows, len(result.quarantined), len(failed), gate.score, gate.threshold,
    )
    return result


def _judge(config: PipelineConfig, loads: list[PartitionLoad]) -> dict[str, PartitionVerdict]:
    """Each staged partition against its schema and the ids the warehouse will hold, wave by wave."""
    now = clock.now()
    verdicts: dict[str, PartitionVerdict] = {}
    for wave in gate_waves(loads):
        known = known_ids(str(config.warehouse_path), passing(loads, verdicts))

        def age(load):
            return staleness(load.key, load.fetched_at, schedule_interval=config.schedule_interval,
                             refresh_age_days=config.source.refresh_age_days, now=now)

        def one(load, _refresh, known=known):
            return judge_staged_partition.submit(load.key, load.outputs, known, config.max_null_percentage, *age(load))

        def weeks(label, loads, _refresh, known=known):
            return judge_staged_weeks.submit([(w.key, w.outputs, *age(w)) for w in loads], known,
                                             config.max_null_percentage, label)

        for load, verdict in gathered(fan_out(wave, one, weeks)):
            if isinstance(verdict, BaseException):
                raise verdict
            verdicts[load.key] = verdict
    return verdicts


def _stage(config: PipelineConfig, collected: CollectResult, full_refresh: bool) -> tuple[list[PartitionLoad], dict[str, str]]:
    """Stage every changed partition (cached on its signature); a partition whose transform fails
    is reported in `failed` and the others go on. A cache hit whose files are gone is recomputed."""
    logger = get_run_logger()
    raw_paths = {p.key: p.raw_path for p in collected.partitions if p.raw_path}
    stage = stage_partition_files.with_options(
        cache_policy=stage_partition_files.cache_policy.configure(key_storage=str(config.home / "cache")),
        refresh_cache=full_refresh,
    )
    stage_weeks = stage_week_files.with_options(
        cache_policy=stage_week_files.cache_policy.configure(key_storage=str(config.home / "cache")),
        refresh_cache=full_refresh,
    )

    def one(item, refresh: bool):
        deps = {d.key: raw_paths[d.key] for d in dependencies_of(item.partition) if d.key in raw_paths}
        return (stage.with_options(refresh_cache=True) if refresh else stage).submit(
            item.key, item.signature, item.raw_path, deps, str(config.home), list(config.conferences),
            config.batch_size)

    def weeks(label, items, refresh: bool):
        return (stage_weeks.with_options(refresh_cache=True) if refresh else stage_weeks).submit(
            [(i.key, i.signature, i.raw_path) for i in items], str(config.home), config.batch_size, label)

    loads, failed = [], {}
    for run in fan_out(collected.changed, one, weeks):
        outcomes = run.outcomes()
        if not all(Path(o.path).exists() for outputs in outcomes if isinstance(outputs, list) for o in outputs):
            logger.warning("%s: cached staging files are gone; processing again", run.name)
            outcomes = run.outcomes(run.again())
        for item, outputs in zip(run.items, outcomes):
            if isinstance(outputs, BaseException):
                failed[item.key] = str(outputs)
                logger.error("partition %s failed to process: %s", item.key, outputs)
            else:
                loads.append(PartitionLoad.from_collected(item, outputs))
    return loads, failed
