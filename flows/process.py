"""process: turn each changed partition into staged Parquet tables (pure polars transforms)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from gridiron.config import PipelineConfig
from gridiron.planning import CollectResult, dependencies_of
from gridiron.sources import Partition
from gridiron.storage import PartitionLoad
from tasks.process import stage_partition_files


@flow(name="process")
def process(config: PipelineConfig, collected: CollectResult, full_refresh: bool = False) -> dict:
    logger = get_run_logger()
    changed = collected.changed
    if not changed:
        logger.info("process: no partition changed, nothing to process")
        return {"loads": [], "failed": {}, "rows": 0}

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
    for item, future in [(item, submit(item)) for item in changed]:
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
    rows = sum(o.rows for load in loads for o in load.outputs)
    logger.info("process: %d partitions staged, %d rows, %d failed", len(loads), rows, len(failed))
    return {"loads": loads, "failed": failed, "rows": rows}
