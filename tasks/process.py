"""Process task: one partition's raw rows -> staged Parquet files, cached on its signature."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from gridiron.sources import Partition
from gridiron.storage import StagingArea, TableOutput
from gridiron.transforms import stage_partition

# The signature covers the partition's checksum, its dependencies' checksums and the transform
# fingerprint; with the task's own source in the key, an unchanged partition is never recomputed.
# The flow adds key_storage under GRIDIRON_HOME at run time.
STAGE_CACHE_POLICY = INPUTS + TASK_SOURCE


@task(
    name="stage-partition",
    cache_policy=STAGE_CACHE_POLICY,
    persist_result=True,
    task_run_name="stage-{key}",
)
def stage_partition_files(
    key: str,
    signature: str,
    raw_path: str,
    dependency_paths: dict[str, str],
    home: str,
    conferences: list[str],
    row_group_size: int,
) -> list[TableOutput]:
    """Transform one partition and write each resulting table to the staging area."""
    return _stage_files(key, signature, raw_path, dependency_paths, home, conferences, row_group_size)


@task(
    name="stage-weeks",
    cache_policy=STAGE_CACHE_POLICY,
    persist_result=True,
    task_run_name="stage-{label}",
)
def stage_week_files(
    items: list[tuple[str, str, str]], home: str, row_group_size: int, label: str
) -> list[list[TableOutput] | Exception]:
    """Transform a season's changed weekly partitions ((key, signature, raw path) each; they read no
    other partition): one task run, cached on all their signatures, instead of one each. A week
    whose transform fails is that week's outcome; the others go on."""
    outcomes: list[list[TableOutput] | Exception] = []
    for key, signature, raw_path in items:
        try:
            outcomes.append(_stage_files(key, signature, raw_path, {}, home, [], row_group_size))
        except Exception as error:  # noqa: BLE001 (one week's bad rows must not fail its season)
            get_run_logger().error("%s: %s", key, error)
            outcomes.append(error)
    return outcomes


def _stage_files(key, signature, raw_path, dependency_paths, home, conferences, row_group_size) -> list[TableOutput]:
    area = StagingArea(home)
    partition = Partition.from_key(key)
    dependencies = {dep: area.read_shared_raw(str(path)) for dep, path in dependency_paths.items()}
    staged = stage_partition(
        partition, area.read_raw_bytes(raw_path), dependencies, conferences=conferences
    )
    logger = get_run_logger()
    for warning in staged.warnings:
        logger.warning(warning)
    return [
        TableOutput(table, str(area.write_table(frame, table, signature, row_group_size)), frame.height)
        for table, frame in staged.frames.items()
    ]
