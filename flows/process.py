"""process: turn each changed partition into staged Parquet tables, then hold them to the quality
gate: a partition failing its schema is quarantined, and a run below the quality threshold stops."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger

from gridiron.config import PipelineConfig
from gridiron.planning import CollectResult, allowed_age_days, dependencies_of
from gridiron.quality.gate import PartitionVerdict, run_quality
from gridiron.quality.report import report_rows, write_report
from gridiron.quality.scoring import worst_checks
from gridiron.sources import Partition
from gridiron.storage import PartitionLoad, QuarantineRecord
from tasks.process import stage_partition_files
from tasks.validate import emit_quality_breach, judge_staged_partition, known_ids, publish_quality


class QualityGateFailed(RuntimeError):
    """The run's data scored below `min_data_quality_score`: nothing is loaded."""


@flow(name="process")
def process(config: PipelineConfig, collected: CollectResult, full_refresh: bool = False, run_id: str = "local") -> dict:
    logger = get_run_logger()
    changed = collected.changed
    if not changed:
        logger.info("process: no partition changed, nothing to process")
        return {"loads": [], "quarantined": [], "failed": {}, "rows": 0, "score": None}

    loads, failed = _stage(config, collected, full_refresh, logger)
    if not loads:
        return {"loads": [], "quarantined": [], "failed": failed, "rows": 0, "score": None}

    # the quality gate, in waves: the team list, then what names teams, then what names games
    verdicts = _judge(config, loads)
    tables, score = run_quality(verdicts.values())
    threshold = config.min_data_quality_score
    write_report(config.home, run_id, "process", report_rows(tables, score), threshold)

    quarantined = []
    passing = []
    for load in loads:
        verdict = verdicts[load.key]
        if verdict.quarantined:
            logger.warning("quarantined %s", verdict.reason)
            quarantined.append(QuarantineRecord(
                key=load.key, checksum=load.checksum, reason=verdict.reason,
                failed_checks=json.dumps([f.describe() for t in verdict.tables for f in t.failures]),
                raw_path=load.raw_path,
            ))
        else:
            passing.append(load)

    worst = worst_checks(tables)
    below = [t for t in tables if t.score < threshold]
    for table in below:
        emit_quality_breach(table.table, "warning", table.score, threshold,
                            [f.describe() for f in table.failures][:10], "process", run_id)
    if score < threshold:
        emit_quality_breach("run", "critical", score, threshold, worst, "process", run_id)
        publish_quality("process", tables, score, threshold, ["Nothing was loaded: the run stopped at the gate."])
        raise QualityGateFailed(
            f"data quality {score:.3f} is below min_data_quality_score {threshold:.2f}; nothing was "
            f"loaded. Worst checks: " + " | ".join(worst)
        )
    rows = sum(o.rows for load in passing for o in load.outputs)
    logger.info(
        "process: %d partitions staged (%d rows), %d quarantined, %d failed; quality %.3f (threshold %.2f)",
        len(passing), rows, len(quarantined), len(failed), score, threshold,
    )
    return {"loads": passing, "quarantined": quarantined, "failed": failed, "rows": rows, "score": score}


WAVES = (("teams", "conferences"), ("games", "teams_fbs", "stats_season"), ("lines",))


def _judge(config: PipelineConfig, loads: list[PartitionLoad]) -> dict[str, PartitionVerdict]:
    """Judge each staged partition against its schema and against the ids the warehouse will hold."""
    now = datetime.now(timezone.utc)
    verdicts: dict[str, PartitionVerdict] = {}
    for wave in WAVES:
        members = [load for load in loads if load.endpoint in wave]
        if not members:
            continue
        passing = [load for load in loads if load.key in verdicts and not verdicts[load.key].quarantined]
        staged_teams = next((o.path for load in passing for o in load.outputs if o.table == "teams"), None)
        staged_games = [o.path for load in passing for o in load.outputs if o.table == "games"]
        replaced = [load.season for load in passing if load.endpoint == "games"]
        known = known_ids(str(config.warehouse_path), staged_teams, staged_games, replaced)
        futures = {
            load.key: judge_staged_partition.submit(
                load.key, load.outputs, known, config.max_null_percentage,
                (now - load.fetched_at).total_seconds() / 86400,
                allowed_age_days(Partition.from_key(load.key), config.schedule_interval,
                                 config.source.refresh_age_days, now.date()),
            )
            for load in members
        }
        verdicts.update({key: future.result() for key, future in futures.items()})
    return verdicts


def _stage(config: PipelineConfig, collected: CollectResult, full_refresh: bool, logger) -> tuple[list[PartitionLoad], dict[str, str]]:
    """Stage every changed partition (cached on its signature); a partition whose transform fails
    is reported in `failed` and the others go on."""
    home = str(config.home)
    raw_paths = {p.key: p.raw_path for p in collected.partitions if p.raw_path}
    stage = stage_partition_files.with_options(
        cache_policy=stage_partition_files.cache_policy.configure(key_storage=str(config.home / "cache")),
        refresh_cache=full_refresh,
    )

    def submit(item, refresh: bool = False):
        deps = {d.key: raw_paths[d.key] for d in dependencies_of(Partition.from_key(item.key)) if d.key in raw_paths}
        task = stage.with_options(refresh_cache=True) if refresh else stage
        return task.submit(
            item.key, item.signature, item.raw_path, deps, home, list(config.conferences),
            config.batch_size,
        )

    loads, failed = [], {}
    for item, future in [(item, submit(item)) for item in collected.changed]:
        outputs = future.result(raise_on_failure=False)
        if not isinstance(outputs, BaseException) and not all(Path(o.path).exists() for o in outputs):
            logger.warning("%s: cached staging files are gone; processing again", item.key)
            outputs = submit(item, refresh=True).result(raise_on_failure=False)
        if isinstance(outputs, BaseException):
            failed[item.key] = str(outputs)
            logger.error("partition %s failed to process: %s", item.key, outputs)
            continue
        partition = Partition.from_key(item.key)
        loads.append(PartitionLoad(
            key=item.key, endpoint=partition.endpoint, season=partition.season,
            params=partition.params, checksum=item.checksum, signature=item.signature,
            rows=item.rows, fetched_at=item.fetched_at, source=item.source,
            calls_remaining=item.calls_remaining, raw_path=item.raw_path, outputs=outputs,
        ))
    return loads, failed
