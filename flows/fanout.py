"""One way to fan partitions out to tasks: a task run per partition that is not weekly, and one
per season for the weekly ones (a season's box-score weeks are dozens of small files, so one task
takes them all), then each partition back with its own outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prefect.futures import PrefectFuture, wait

from gridiron.planning import per_item, split_weekly


@dataclass(frozen=True)
class Submitted:
    """One task run in flight: what it works on (`name`: a partition's key, or a season's,
    `games_teams/2023`), whether it takes its items as one batch, and how to submit it again
    (with its cache refreshed)."""

    name: str
    items: list
    future: PrefectFuture
    batched: bool
    again: Callable[[], PrefectFuture]

    def outcomes(self, future: PrefectFuture | None = None) -> list:
        """One outcome per item, never raising: the task's value (a batch's list), or the
        exception it failed with, for each item."""
        value = (future or self.future).result(raise_on_failure=False)
        return per_item(self.items, value) if self.batched else [value]


def fan_out(
    items: Iterable,
    one: Callable[[Any, bool], PrefectFuture],
    weeks: Callable[[str, list, bool], PrefectFuture],
) -> list[Submitted]:
    """Submit `one(item, refresh)` for each item of a partition that is not weekly and
    `weeks(label, items, refresh)` for each season of weekly items (label: `games_teams-2023-15-weeks`,
    the task run's name). The batches are submitted first, so that the longest runs start first;
    the runs come back single ones first, in the items' order."""
    single, seasons = split_weekly(items)
    batches = [
        Submitted(season, batch, weeks(_label(season, batch), batch, False), True,
                  lambda season=season, batch=batch: weeks(_label(season, batch), batch, True))
        for season, batch in seasons.items()
    ]
    return [Submitted(item.key, [item], one(item, False), False, lambda item=item: one(item, True)) for item in single] + batches


def gathered(runs: list[Submitted]) -> Iterator[tuple[Any, Any]]:
    """Each item with its outcome (a value, or the exception its task failed with), run by run."""
    for run in runs:
        yield from zip(run.items, run.outcomes())


def wait_all(runs: list[Submitted]) -> None:
    """Let every task in flight end (before a client or a file closes under them)."""
    wait([run.future for run in runs])


def _label(season_key: str, items: list) -> str:
    return f"{season_key.replace('/', '-')}-{len(items)}-weeks"
