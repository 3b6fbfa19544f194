"""Which partitions a run covers, which it fetches, and which changed. Pure functions, no I/O.

- Every season in `start_year..end_year` that the source can serve, for each seasonal endpoint, plus
  the reference lists (`teams`, `conferences`).
- The snapshot costs nothing: a partition is read unless its file is the one it was loaded from
  (same size and modification time). The API costs quota (1,000 calls a
  month on the free tier, shared with other tools): a completed season fetched less than
  `refresh_age` ago is not fetched again, and when the calls left (minus a reserve) do not cover the
  plan, what matters most is fetched first: seasons in progress, then never-fetched partitions, then
  stale ones, newest season first.
- A weekly endpoint's partitions (`games_teams`: season, season type, week) are planned from the
  season's game weeks (`gridiron.game_weeks`): every week that has kicked off. A week settles two days after its last game ends
  when every game of it is completed, else two weeks after it; a week fetched after it settled is a complete partition like
  a complete season, and an unsettled one is fetched every run, so a weekly run in season fetches
  the new week (and any still settling) only.
- A partition has changed when its signature differs from the one last loaded. The signature covers
  its checksum, the checksums of the partitions its processing reads, and the processing
  fingerprint (transform code and the settings it reads), so new code or settings rebuild too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal

from gridiron.endpoints import ENDPOINTS, REFERENCE, SEASONAL
from gridiron.game_weeks import is_season_complete
from gridiron.sources.base import Partition
from gridiron.sources.errors import AuthError, QuotaExceededError, QuotaReserveReached, SourceUnavailable

_ENDPOINT_ORDER = {name: index for index, name in enumerate(ENDPOINTS)}


@dataclass(frozen=True)
class ManifestEntry:
    """What the warehouse last recorded of a partition."""

    key: str
    checksum: str
    fetched_at: datetime
    signature: str | None = None
    rows: int = 0
    version: str | None = None  # the source's version tag when it was loaded (`Source.version`)

    @property
    def partition(self) -> Partition:
        """The typed partition its key names."""
        return Partition.from_key(self.key)


@dataclass(frozen=True)
class FetchPlan:
    """Which partitions collect fetches, which it leaves (and why), and which are due but over the budget."""

    fetch: list[Partition]
    skipped: list[tuple[Partition, str]]  # (partition, reason): not due, or over the budget
    over_budget: list[Partition] = field(default_factory=list)  # due, but the calls left do not cover them


def plan_partitions(
    seasons: Iterable[int], seasons_available: Callable[[str], set[int] | None]
) -> list[Partition]:
    """Every partition of the configured seasons that the source can serve (and the API has data
    for: from the endpoint's first season), in a stable order."""
    seasons = sorted(set(seasons))
    partitions: list[Partition] = []
    for endpoint in SEASONAL:
        available = seasons_available(endpoint)
        for season in seasons:
            if ENDPOINTS[endpoint].serves(season) and (available is None or season in available):
                partitions.append(Partition(endpoint, season))
    partitions.extend(Partition(endpoint) for endpoint in REFERENCE)
    return partitions


def split_weekly(items: Iterable) -> tuple[list, dict[str, list]]:
    """Items (partitions, or anything with a `.partition`) of partitions that are not weekly, and
    those that are, grouped by endpoint and season (`games_teams/2023` -> its weeks, in order): the
    tasks take a season's weeks in one run."""
    single, seasons = [], {}
    for item in items:
        partition = item if isinstance(item, Partition) else item.partition
        if partition.week is None:
            single.append(item)
        else:
            seasons.setdefault(f"{partition.endpoint}/{partition.season}", []).append(item)
    return single, seasons


def seasons_missing(
    seasons: Iterable[int], seasons_available: Callable[[str], set[int] | None], endpoint: str = "games"
) -> list[int]:
    """Configured seasons the source cannot serve for `endpoint` (the API can serve any)."""
    available = seasons_available(endpoint)
    return [] if available is None else sorted(set(seasons) - available)


def plan_fetches(
    partitions: Iterable[Partition],
    manifest: Mapping[str, ManifestEntry],
    *,
    now: datetime,
    refresh_age: timedelta,
    costs_quota: bool,
    calls_budget: int | None = None,
    full_refresh: bool = False,
    settles: Mapping[str, datetime] | None = None,
    versions: Mapping[str, str | None] | None = None,
) -> FetchPlan:
    """Choose what to fetch. `calls_budget` is the calls we may spend (None: unknown, no cap).
    `settles`: partition key -> when it settles (a week: `GameWeek.settled_at`; a season of an
    endpoint fixed at kickoff: its first kickoff). `versions`:
    partition key -> the source's version tag now (`Source.version`); a free source's partition
    whose tag equals the one it was loaded with is not read again."""
    settles, versions = settles or {}, versions or {}
    partitions = list(partitions)
    if not costs_quota:
        fetch, unchanged = [], []
        for partition in partitions:
            entry, version = manifest.get(partition.key), versions.get(partition.key)
            if full_refresh or entry is None or version is None or entry.version != version:
                fetch.append(partition)
            else:
                unchanged.append((partition, "unchanged at the source since it was loaded"))
        return FetchPlan(fetch=fetch, skipped=unchanged)

    wanted: list[tuple[tuple, Partition]] = []
    skipped: list[tuple[Partition, str]] = []
    for partition in partitions:
        entry = manifest.get(partition.key)
        if partition.key in settles:
            settled = settles[partition.key]
            in_progress = now < settled or (entry is not None and entry.fetched_at < settled)
        else:
            in_progress = partition.season is not None and not is_season_complete(partition.season, now.date())
        if full_refresh or entry is None:
            rank = 0 if in_progress else 1
        elif in_progress:
            rank = 0
        elif now - entry.fetched_at >= refresh_age:
            rank = 2
        else:
            age_days = (now - entry.fetched_at).total_seconds() / 86400
            what = ("settled week" if partition.week is not None else "reference list" if partition.season is None
                    else "complete season" if is_season_complete(partition.season, now.date())
                    else "season fixed since its first kickoff")
            skipped.append(
                (partition, f"{what}, fetched {age_days:.1f} days ago "
                            f"(refresh age {refresh_age.total_seconds() / 86400:g} days)")
            )
            continue
        season_order = -(partition.season if partition.season is not None else now.year + 1)
        wanted.append(((rank, season_order, _ENDPOINT_ORDER[partition.endpoint], -(partition.week or 0)), partition))

    wanted.sort(key=lambda item: item[0])
    ordered = [partition for _, partition in wanted]
    over: list[Partition] = []
    if calls_budget is not None:  # only metered endpoints spend the budget
        budget, spent, kept = max(0, calls_budget), 0, []
        for partition in ordered:
            if partition.spec.metered and spent >= budget:
                over.append(partition)
                skipped.append((partition, f"over the API call budget ({budget} calls may be spent)"))
                continue
            spent += partition.spec.metered
            kept.append(partition)
        ordered = kept
    return FetchPlan(fetch=ordered, skipped=skipped, over_budget=over)


def dependencies_of(partition: Partition) -> list[Partition]:
    """The partitions its processing also reads (the endpoint registry's `depends_on`; a seasonal
    one of the same season)."""
    return [
        Partition(endpoint, partition.season if ENDPOINTS[endpoint].seasonal else None)
        for endpoint in partition.spec.depends_on
    ]


def payloads_needed(partitions: Iterable[CollectedPartition]) -> set[str]:
    """Keys whose payloads processing will read: changed partitions and their dependencies."""
    needed = set()
    for collected in partitions:
        if collected.is_changed:
            needed.add(collected.key)
            needed.update(d.key for d in dependencies_of(collected.partition))
    return needed


def partition_signature(
    partition: Partition, checksums: Mapping[str, str], fingerprint: str
) -> str:
    """sha256 over the partition's checksum, its dependencies' checksums and the fingerprint."""
    parts = [partition.key, checksums[partition.key], fingerprint]
    for dependency in dependencies_of(partition):
        parts.append(f"{dependency.key}={checksums.get(dependency.key, '')}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class CollectedPartition:
    """What collect knows of one partition after this run's fetch (or skip)."""

    key: str
    checksum: str
    rows: int
    fetched_at: datetime
    source: str
    calls_remaining: int | None = None
    raw_path: str | None = None  # the normalised payload in the staging area, when at hand
    was_fetched: bool = True
    signature: str = ""
    is_changed: bool = False
    version: str | None = None  # the source's version tag of what was fetched

    @property
    def partition(self) -> Partition:
        """The typed partition its key names."""
        return Partition.from_key(self.key)


@dataclass(frozen=True)
class CollectResult:
    """The collect phase: every partition of the run (fetched, or carried from the warehouse),
    those that failed (key -> error), those not fetched (key -> reason) and the API calls left."""

    source: str
    partitions: list[CollectedPartition]
    failed: dict[str, str]  # partition key -> error
    skipped: dict[str, str]  # partition key -> reason it was not fetched (not due, or the quota)
    calls_remaining: int | None = None
    held_for_quota: dict[str, str] = field(default_factory=dict)  # due, not fetched: the call budget

    @property
    def changed(self) -> list[CollectedPartition]:
        """The partitions whose signature differs from the one last loaded."""
        return [partition for partition in self.partitions if partition.is_changed]

    @property
    def rows_fetched(self) -> int:
        """Rows of the partitions fetched this run."""
        return sum(partition.rows for partition in self.partitions if partition.was_fetched)

    @property
    def records(self) -> int:
        """The phase's record count: the rows it fetched."""
        return self.rows_fetched


def shrink_problem(
    collected: CollectedPartition, entry: ManifestEntry | None, max_shrink_fraction: float
) -> str | None:
    """Why a fetched partition must not replace the loaded one, if it lost too many rows."""
    if entry is None or entry.rows == 0 or max_shrink_fraction >= 1:
        return None
    if collected.rows >= entry.rows * (1 - max_shrink_fraction):
        return None
    return (
        f"{collected.key}: the source returned {collected.rows} rows where {entry.rows} are loaded "
        f"(more than {max_shrink_fraction:.0%} fewer); refusing to replace them, as a partial "
        "answer would lose data (raise source.max_shrink_fraction to accept the drop)"
    )


FetchVerdict = Literal["fetched", "failed", "held", "stop"]


def fetch_verdict(
    outcome: CollectedPartition | BaseException, entry: ManifestEntry | None, max_shrink_fraction: float
) -> tuple[FetchVerdict, str | None]:
    """What a fetch's outcome means for the run, and why:

    - `stop`: a refused key or an API that does not answer at all; every other call would fail alike;
    - `held`: the calls left reached the reserve, or the month's quota is spent; it waits for the next run;
    - `failed`: any other error, or an answer with too many fewer rows than the loaded one
      (`shrink_problem`); the loaded rows stay;
    - `fetched`: the partition goes on to processing.
    """
    if isinstance(outcome, (AuthError, SourceUnavailable)):
        return "stop", str(outcome)
    if isinstance(outcome, (QuotaReserveReached, QuotaExceededError)):
        return "held", outcome.message
    if isinstance(outcome, BaseException):
        return "failed", str(outcome)
    problem = shrink_problem(outcome, entry, max_shrink_fraction)
    return ("failed", problem) if problem else ("fetched", None)


def per_item(items: Sequence, outcome: list | BaseException) -> list:
    """A batch task's outcome as one outcome per item: its list, or, when the whole batch failed,
    the exception it failed with for each item."""
    return outcome if isinstance(outcome, list) else [outcome] * len(items)


def mark_changes(
    partitions: list[CollectedPartition],
    manifest: Mapping[str, ManifestEntry],
    fingerprints: Mapping[str, str],
    *,
    full_refresh: bool = False,
) -> list[CollectedPartition]:
    """The partitions with their signatures, each `is_changed` where it differs from the loaded one."""
    checksums = {entry.key: entry.checksum for entry in manifest.values()}
    checksums.update({partition.key: partition.checksum for partition in partitions})
    marked = []
    for collected in partitions:
        signature = partition_signature(collected.partition, checksums, fingerprints[collected.partition.endpoint])
        entry = manifest.get(collected.key)
        marked.append(replace(collected, signature=signature,
                              is_changed=full_refresh or entry is None or entry.signature != signature))
    return marked


SCHEDULE_DAYS = {"daily": 1.0, "weekly": 7.0, "monthly": 31.0}


def allowed_age_days(
    partition: Partition, schedule_interval: str, refresh_age_days: float, today: date
) -> float | None:
    """How old a partition's data may be before it counts as stale (None: it does not age).

    A season in progress changes every week: it may be as old as one and a half schedule
    intervals. Reference lists may be as old as their refresh age plus one interval, and so may a
    season in progress of an endpoint fixed at kickoff (talent, FBS membership). A completed
    season does not age, nor does a week (once played, its box scores stay; the week's games, in the
    season's `games` partition, show whether the run keeps up).
    """
    interval = SCHEDULE_DAYS[schedule_interval]
    if partition.week is not None:
        return None
    if partition.season is None:
        return refresh_age_days + interval
    if is_season_complete(partition.season, today):
        return None
    return refresh_age_days + interval if partition.spec.fixed_at_kickoff else 1.5 * interval


def table_ages(
    entries: Iterable[ManifestEntry], produces: Mapping[str, Iterable[str]], *,
    schedule_interval: str, refresh_age_days: float, now: datetime,
) -> dict[str, tuple[float | None, float | None]]:
    """Per table, (age in days, allowed age) of its stalest partition relative to its allowance."""
    worst: dict[str, tuple[float | None, float | None]] = {}
    for entry in entries:
        partition = entry.partition
        allowed = allowed_age_days(partition, schedule_interval, refresh_age_days, now.date())
        if allowed is None:
            continue
        age = (now - entry.fetched_at).total_seconds() / 86400
        for table in produces[partition.endpoint]:
            current = worst.get(table)
            if current is None or age / allowed > current[0] / current[1]:
                worst[table] = (age, allowed)
    return worst


def carry_forward(
    fetched: list[CollectedPartition], not_fetched: Iterable[str], manifest: Mapping[str, ManifestEntry]
) -> list[CollectedPartition]:
    """This run's picture of every partition: those fetched, plus those not fetched (not due, or
    failed) as the warehouse holds them (a partition never loaded has nothing to carry)."""
    fetched_keys = {c.key for c in fetched}
    kept = [
        CollectedPartition(key=entry.key, checksum=entry.checksum, rows=entry.rows,
                           fetched_at=entry.fetched_at, source="warehouse", was_fetched=False)
        for key in dict.fromkeys(not_fetched)
        if key not in fetched_keys and (entry := manifest.get(key)) is not None
    ]
    return list(fetched) + kept


def calls_remaining_after(partitions: Iterable[CollectedPartition], before: int | None) -> int | None:
    """The fewest API calls left that any of this run's fetches reported (else what was known)."""
    return min(
        (c.calls_remaining for c in partitions if c.was_fetched and c.calls_remaining is not None),
        default=before,
    )


def staleness(key: str, fetched_at: datetime, *, schedule_interval: str, refresh_age_days: float,
              now: datetime) -> tuple[float, float | None]:
    """(age in days, allowed age in days or None when it does not age) of a partition's data."""
    allowed = allowed_age_days(Partition.from_key(key), schedule_interval, refresh_age_days, now.date())
    return (now - fetched_at).total_seconds() / 86400, allowed


def season_chunks(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """A backfill of seasons first..last as (start, end) runs of `size` seasons each, oldest first."""
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    if size < 1:
        raise ValueError(f"--chunk must be at least 1 season (got {size})")
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]
