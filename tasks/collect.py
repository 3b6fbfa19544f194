"""Collect tasks: read what the warehouse knows, fetch one partition, recover a stored payload."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from gridiron.game_weeks import GameWeek, game_calendar, game_weeks_of
from gridiron.planning import CollectedPartition, ManifestEntry
from gridiron.sources import AuthError, Partition, Source, SourceUnavailable, checksum, is_recoverable, normalise
from gridiron.sources.retry import backoff_delay
from gridiron.storage import StagingArea, connect, last_calls_remaining, read_manifest, read_raw_payload
from gridiron.storage.raw import stored_calendar


def retry_if_recoverable(task, task_run, state) -> bool:
    """Retry rate limits, 5xx and timeouts; never bad keys, spent quota or malformed payloads."""
    try:
        state.result()
    except Exception as error:  # the task's own exception, re-raised by result()
        return is_recoverable(error)
    return False


def retry_options(max_retries: int, retry_delay: float) -> dict:
    """The fetch task's retry options: `max_retries` retries, Prefect's exponential backoff from
    `retry_delay` (delay, 2 x delay, 4 x delay, ...) with jitter of up to +50% (none at delay 0)."""
    return {
        "retries": max_retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=retry_delay)(max_retries),
        "retry_jitter_factor": 0.5 if retry_delay else None,
    }


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
    task_run_name="fetch-{partition.slug}",
)
def fetch_partition(source: Source, partition: Partition, home: str) -> CollectedPartition:
    """Fetch one partition, normalise it, checksum it and keep it in the staging area."""
    return _fetch_one(source, partition, home)


@task(name="fetch-weeks", cache_policy=NO_CACHE, task_run_name="fetch-{label}")
def fetch_weeks(
    source: Source, partitions: list[Partition], home: str, retries: int, retry_delay: float, label: str
) -> list[CollectedPartition | Exception]:
    """Fetch a season's weekly partitions one after another, each as `fetch-partition` would (with
    its retries of recoverable faults, backed off in the task): one task run for a season's ~16
    weeks instead of one each, which the Prefect server's writes made cost seconds a run. Each week's
    outcome is its partition, or the error it ended with; a refused key or an API that does not
    answer ends the batch (the flow stops the run on it)."""
    outcomes: list[CollectedPartition | Exception] = []
    for index, partition in enumerate(partitions):
        outcome = _fetch_with_retries(source, partition, home, retries, retry_delay)
        outcomes.append(outcome)
        if isinstance(outcome, (AuthError, SourceUnavailable)):
            outcomes.extend(outcome for _ in partitions[index + 1:])
            break
    return outcomes


def _fetch_with_retries(source, partition, home, retries, retry_delay) -> CollectedPartition | Exception:
    for attempt in range(retries + 1):
        try:
            return _fetch_one(source, partition, home)
        except Exception as error:  # a source's error: this week's outcome
            if attempt == retries or not is_recoverable(error):
                get_run_logger().warning("%s: %s", partition.key, error)
                return error
            delay = backoff_delay(attempt, retry_delay) if retry_delay else 0
            get_run_logger().info("%s: %s; retrying in %.1f s", partition.key, error, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _fetch_one(source: Source, partition: Partition, home: str) -> CollectedPartition:
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
        version=result.version,
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


@task(name="read-calendar", cache_policy=NO_CACHE)
def read_calendar(warehouse: str, games_payloads: dict[int, str], seasons: list[int]) -> list[GameWeek]:
    """The weeks of `seasons`: from the games payloads this run fetched (season -> staged path),
    else from the games the warehouse holds."""
    rows = [row for path in games_payloads.values() for row in game_calendar(StagingArea.read_raw(path))]
    stored = [season for season in seasons if season not in games_payloads]
    if stored:
        with connect(warehouse) as con:
            rows.extend(stored_calendar(con, stored))
    return game_weeks_of(rows)
