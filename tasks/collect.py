"""Collect tasks: read what the warehouse knows, fetch one partition, recover a stored payload."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gridiron.planning import CollectedPartition, ManifestEntry
from gridiron.sources import Partition, Source, checksum, is_recoverable, normalise
from gridiron.storage import StagingArea, connect, last_calls_remaining, read_manifest, read_raw_payload


def retry_if_recoverable(task, task_run, state) -> bool:
    """Retry rate limits, 5xx and timeouts; never bad keys, spent quota or malformed payloads."""
    try:
        state.result()
    except Exception as error:  # the task's own exception, re-raised by result()
        return is_recoverable(error)
    return False


@task(name="read-collect-state", cache_policy=NO_CACHE)
def read_collect_state(warehouse: str) -> tuple[dict[str, ManifestEntry], int | None]:
    """The manifest of loaded partitions and the API calls left at the last recorded fetch."""
    with connect(warehouse) as con:
        return read_manifest(con), last_calls_remaining(con)


@task(name="read-calls-left", cache_policy=NO_CACHE)
def read_calls_left(source: Source) -> int | None:
    """The month's API calls left, from the source's unmetered `/info` (None: it did not say)."""
    return source.calls_left()


@task(
    name="fetch-partition",
    cache_policy=NO_CACHE,  # fetching is the point: change detection happens on the checksum
    retry_condition_fn=retry_if_recoverable,
    task_run_name="fetch-{partition.endpoint}-{partition.season}",
)
def fetch_partition(source: Source, partition: Partition, home: str) -> CollectedPartition:
    """Fetch one partition, normalise it, checksum it and keep it in the staging area."""
    result = source.fetch(partition)
    data = normalise(result.payload)
    digest = checksum(data)
    path = StagingArea(home).write_raw(data, digest)
    get_run_logger().debug("%s: %d rows, sha256 %s", partition.key, len(result.payload), digest[:12])
    return CollectedPartition(
        key=partition.key,
        checksum=digest,
        rows=len(result.payload),
        fetched_at=result.fetched_at,
        source=result.source,
        calls_remaining=result.calls_remaining,
        raw_path=str(path),
    )


@task(name="restore-raw-payload", cache_policy=NO_CACHE)
def restore_raw_payload(warehouse: str, key: str, home: str) -> str:
    """Put a partition's stored payload back in the staging area (reprocessing needs no API call)."""
    with connect(warehouse) as con:
        stored = read_raw_payload(con, key)
    if stored is None:
        raise LookupError(f"{key}: no stored payload in the warehouse to reprocess")
    digest, compressed = stored
    return str(StagingArea(home).write_raw_compressed(compressed, digest))
