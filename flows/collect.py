"""collect: plan partitions, fetch what is due (bounded concurrency), checksum, detect changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger, unmapped
from prefect.futures import wait
from prefect.tasks import exponential_backoff

from gridiron.config import PipelineConfig
from gridiron.planning import (
    CollectedPartition,
    CollectResult,
    calls_remaining_after,
    carry_forward,
    mark_changes,
    payloads_needed,
    plan_fetches,
    plan_partitions,
    seasons_missing,
    shrink_problem,
)
from gridiron.sources import (
    ApiSource,
    AuthError,
    QuotaExceededError,
    QuotaReserveReached,
    SourceUnavailable,
    make_source,
)
from gridiron.sources.errors import run_stopped
from gridiron.transforms import fingerprint
from tasks.collect import fetch_partition, read_calls_left, read_collect_state, restore_raw_payload


@flow(name="collect")
def collect(config: PipelineConfig, full_refresh: bool = False) -> CollectResult:
    logger = get_run_logger()
    home, warehouse = str(config.home), str(config.warehouse_path)
    manifest, calls_recorded = read_collect_state(warehouse)
    source = make_source(config)
    costs_quota = isinstance(source, ApiSource)
    try:
        calls_before = read_calls_left(source) if costs_quota else None  # fresh: /info costs nothing
        calls_before = calls_recorded if calls_before is None else calls_before
        budget = calls_before - config.source.min_calls_reserve if costs_quota and calls_before is not None else None
        partitions = plan_partitions(config.seasons, source.seasons_available)
        plan = plan_fetches(
            partitions, manifest, now=datetime.now(timezone.utc),
            refresh_age=timedelta(days=config.source.refresh_age_days),
            costs_quota=costs_quota, calls_budget=budget, full_refresh=full_refresh,
        )
        logger.info("collect: source is %s", source.description)
        missing = seasons_missing(config.seasons, source.seasons_available)
        if missing:
            logger.warning("collect: %s has no games for season(s) %s of start_year..end_year; they are skipped",
                           source.description, ", ".join(map(str, missing)))
        logger.info("collect: %d partitions from %s, %d to fetch, %d not due",
                    len(partitions), source.name, len(plan.fetch), len(plan.skipped))
        for partition, reason in plan.skipped:
            (logger.warning if partition in plan.over_budget else logger.info)("not fetching %s: %s", partition.key, reason)
        fetched, failed, held = _fetch(config, source, plan.fetch, manifest, len(partitions))
    finally:
        source.close()
    held = {**{p.key: reason for p, reason in plan.skipped if p in plan.over_budget}, **held}

    collected = carry_forward(fetched, [p.key for p, _ in plan.skipped] + list(failed) + list(held), manifest)
    fingerprints = {e: fingerprint(e, conferences=config.conferences) for e in {p.endpoint for p in partitions}}
    mark_changes(collected, manifest, fingerprints, full_refresh=full_refresh)
    needed = payloads_needed(collected)
    for partition in collected:  # not fetched this run but needed: reuse the stored payload
        if partition.key in needed and partition.raw_path is None:
            partition.raw_path = restore_raw_payload(warehouse, partition.key, home)

    result = CollectResult(
        source=source.name, partitions=collected, failed=failed,
        skipped={**{p.key: reason for p, reason in plan.skipped}, **held}, held_for_quota=held,
        calls_remaining=calls_remaining_after(collected, calls_before) if costs_quota else calls_before,
    )
    changed = [c.key for c in result.changed]
    logger.info("collect: %d partitions changed%s", len(changed), f" ({', '.join(changed)})" if changed else "")
    if costs_quota:
        logger.info("CFBD calls remaining this month: %s", result.calls_remaining)
    if held:
        logger.warning("collect: %d partitions due but not fetched for the API call budget: %s",
                       len(held), ", ".join(sorted(held)))
    return result


def _fetch(config, source, partitions, manifest, planned: int) -> tuple[list[CollectedPartition], dict[str, str], dict[str, str]]:
    """Fetch the partitions concurrently: (fetched, failed key -> error, held for the quota key ->
    reason). A partition that fails or shrinks too much is failed; once the calls left reach the
    reserve (or the quota answers 429) the rest wait for the next run. A refused key or an API that
    does not answer at all stops the run: every other call would fail alike."""
    logger = get_run_logger()
    fetch = fetch_partition.with_options(
        retries=config.max_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=config.retry_delay),
        retry_jitter_factor=0.5 if config.retry_delay else None,
    )
    futures = fetch.map(partition=partitions, source=unmapped(source), home=unmapped(str(config.home)))
    fetched, failed, held = [], {}, {}
    for partition, future in zip(partitions, futures):
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, (AuthError, SourceUnavailable)):
            wait(futures)  # let the tasks in flight end before the client closes under them
            raise run_stopped(outcome, planned - len(fetched), planned) from outcome
        if isinstance(outcome, (QuotaReserveReached, QuotaExceededError)):
            held[partition.key] = outcome.message
            continue
        problem = (
            str(outcome) if isinstance(outcome, BaseException)
            else shrink_problem(outcome, manifest.get(partition.key), config.source.max_shrink_fraction)
        )
        if problem:
            failed[partition.key] = problem
            logger.error("partition %s failed: %s", partition.key, problem)
        else:
            fetched.append(outcome)
    return fetched, failed, held
