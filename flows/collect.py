"""collect: plan partitions, fetch what is due (bounded concurrency), checksum, detect changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prefect import get_run_logger

from flows.fanout import fan_out, gathered, wait_all
from flows.phases import phase
from gridiron import clock
from gridiron.config import PipelineConfig
from gridiron.game_weeks import kickoff_settles, plan_weeks
from gridiron.planning import (
    CollectedPartition,
    CollectResult,
    FetchPlan,
    calls_remaining_after,
    carry_forward,
    fetch_verdict,
    mark_changes,
    payloads_needed,
    plan_fetches,
    plan_partitions,
    seasons_missing,
)
from gridiron.sources import make_source
from gridiron.sources.errors import run_stopped
from gridiron.transforms import fingerprint
from tasks.collect import (
    fetch_partition,
    fetch_weeks,
    read_calendar,
    read_calls_left,
    read_collect_state,
    restore_raw_payload,
    retry_options,
)


@phase("collect")
def collect(config: PipelineConfig, full_refresh: bool = False) -> CollectResult:
    """Plan the partitions, fetch the due ones within the quota, and mark which changed since the last load."""
    logger = get_run_logger()
    home, warehouse = str(config.home), str(config.warehouse_path)
    manifest, calls_recorded = read_collect_state(warehouse)
    source = make_source(config)
    costs_quota = source.metered
    try:
        calls_before = read_calls_left(source) if costs_quota else None  # fresh: /info costs nothing
        calls_before = calls_recorded if calls_before is None else calls_before
        budget = calls_before - config.source.min_calls_reserve if costs_quota and calls_before is not None else None
        now = clock.now()
        refresh_age = timedelta(days=config.source.refresh_age_days)
        partitions = plan_partitions(config.seasons, source.seasons_available)
        plan = plan_fetches(
            partitions, manifest, now=now, refresh_age=refresh_age,
            costs_quota=costs_quota, calls_budget=budget, full_refresh=full_refresh,
            versions={p.key: source.version(p) for p in partitions},
            settles=kickoff_settles(partitions, read_calendar(warehouse, {}, list(config.seasons)))
            if costs_quota else None,
        )
        logger.info("collect: source is %s", source.description)
        missing = seasons_missing(config.seasons, source.seasons_available)
        if missing:
            logger.warning("collect: %s has no games for season(s) %s of start_year..end_year; they are skipped",
                           source.description, ", ".join(map(str, missing)))
        _log_plan(logger, plan, len(partitions), source.name, "partitions")
        fetched, failed, held = _fetch(config, source, plan.fetch, manifest, len(partitions))

        weeks, week_plan, (more, more_failed, more_held) = _collect_weeks(
            config, source, manifest, fetched, now=now, refresh_age=refresh_age, costs_quota=costs_quota,
            budget=None if budget is None else budget - len(plan.fetch), full_refresh=full_refresh)
        fetched, failed, held = fetched + more, {**failed, **more_failed}, {**held, **more_held}
        partitions += weeks
        plan = FetchPlan(fetch=plan.fetch + week_plan.fetch, skipped=plan.skipped + week_plan.skipped,
                         over_budget=plan.over_budget + week_plan.over_budget)
    finally:
        source.close()
    held = {**{p.key: reason for p, reason in plan.skipped if p in plan.over_budget}, **held}

    collected = carry_forward(fetched, [p.key for p, _ in plan.skipped] + list(failed) + list(held), manifest)
    fingerprints = {e: fingerprint(e, conferences=config.conferences) for e in {p.endpoint for p in partitions}}
    collected = mark_changes(collected, manifest, fingerprints, full_refresh=full_refresh)
    needed = payloads_needed(collected)
    collected = [  # not fetched this run but needed: reuse the stored payload
        replace(p, raw_path=restore_raw_payload(warehouse, p.key, home)) if p.key in needed and p.raw_path is None else p
        for p in collected
    ]

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


def _collect_weeks(config, source, manifest, fetched, *, now, refresh_age, costs_quota, budget, full_refresh):
    """The weekly endpoints (box scores), planned from the weeks of the games just collected (or
    stored) and fetched: (their partitions, their plan, what `_fetch` gave)."""
    games = {c.partition.season: c.raw_path for c in fetched if c.partition.endpoint == "games" and c.raw_path}
    weeks, settles = plan_weeks(read_calendar(str(config.warehouse_path), games, list(config.seasons)),
                                source.seasons_available, now=now) if config.source.box_scores else ([], {})
    plan = plan_fetches(weeks, manifest, now=now, refresh_age=refresh_age, costs_quota=costs_quota,
                        calls_budget=budget, full_refresh=full_refresh, settles=settles,
                        versions={p.key: source.version(p) for p in weeks})
    _log_plan(get_run_logger(), plan, len(weeks), source.name, "weekly partitions")
    return weeks, plan, _fetch(config, source, plan.fetch, manifest, len(weeks))


def _log_plan(logger, plan: FetchPlan, planned: int, source: str, what: str) -> None:
    logger.info("collect: %d %s from %s, %d to fetch, %d not due", planned, what, source, len(plan.fetch),
                len(plan.skipped))
    for partition, reason in plan.skipped:
        (logger.warning if partition in plan.over_budget else logger.info)("not fetching %s: %s", partition.key, reason)


def _fetch(config, source, partitions, manifest, planned: int) -> tuple[list[CollectedPartition], dict[str, str], dict[str, str]]:
    """Fetch the partitions concurrently: (fetched, failed key -> error, held for the quota key ->
    reason). A partition that fails or shrinks too much is failed; once the calls left reach the
    reserve (or the quota answers 429) the rest wait for the next run. A refused key or an API that
    does not answer at all stops the run: every other call would fail alike."""
    logger = get_run_logger()
    fetch = fetch_partition.with_options(**retry_options(config.max_retries, config.retry_delay))
    runs = fan_out(
        partitions,
        lambda partition, _refresh: fetch.submit(source=source, partition=partition, home=str(config.home)),
        lambda label, weeks, _refresh: fetch_weeks.submit(source, weeks, str(config.home), config.max_retries,
                                                          config.retry_delay, label),
    )
    fetched, failed, held = [], {}, {}
    for partition, outcome in gathered(runs):
        verdict, why = fetch_verdict(outcome, manifest.get(partition.key), config.source.max_shrink_fraction)
        if verdict == "stop":
            wait_all(runs)
            raise run_stopped(outcome, planned - len(fetched), planned) from outcome
        if verdict == "held":
            held[partition.key] = why
        elif verdict == "failed":
            failed[partition.key] = why
            logger.error("partition %s failed: %s", partition.key, why)
        else:
            fetched.append(outcome)
    return fetched, failed, held
