"""The football calendar: which season a date belongs to, when a season is complete, and the
game weeks (season x season type x week) of a season's games, with when each settles. Pure
functions, no I/O. A *game week* is the API's week; the features' *slate* (a Monday-to-Sunday week
of kickoffs, `gridiron.model`) is another thing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gridiron.endpoints import ENDPOINTS, WEEKLY
from gridiron.sources.base import Partition


def current_season(today: date) -> int:
    """The season being played or most recently played: a season starts in August."""
    return today.year if today.month >= 8 else today.year - 1


def is_season_complete(season: int, today: date) -> bool:
    """A season is complete once its bowls and playoff are over (from February 1 after it)."""
    return today >= date(season + 1, 2, 1)


WEEK_SETTLES_AFTER = timedelta(days=2)  # box scores are corrected for a day or two after a game
# a game still not completed this long after its kickoff was moved, cancelled, or is a lower-division
# game the API never scores: its week settles anyway instead of being fetched again every run
WEEK_GIVES_UP_AFTER = timedelta(days=14)


@dataclass(frozen=True)
class GameWeek:
    """One week of one season type, from the season's games."""

    season: int
    season_type: str
    week: int
    first_kickoff: datetime
    last_kickoff: datetime
    completed: bool  # every game of it is completed

    @property
    def settled_at(self) -> datetime:
        """When its box scores stop changing: two days after its last kickoff once every game is
        completed, else two weeks after it (`WEEK_GIVES_UP_AFTER`)."""
        return self.last_kickoff + (WEEK_SETTLES_AFTER if self.completed else WEEK_GIVES_UP_AFTER)


def game_weeks_of(games: Iterable[tuple[int, str, int, datetime, bool]]) -> list[GameWeek]:
    """The weeks of (season, season type, week, kickoff, completed) game rows, in calendar order."""
    weeks: dict[tuple[int, str, int], list[tuple[datetime, bool]]] = {}
    for season, season_type, week, kickoff, completed in games:
        if None in (season, season_type, week, kickoff):
            continue
        weeks.setdefault((season, season_type, week), []).append((kickoff, bool(completed)))
    found = [
        GameWeek(season, season_type, week, min(k for k, _ in games_), max(k for k, _ in games_),
                 all(done for _, done in games_))
        for (season, season_type, week), games_ in weeks.items()
    ]
    return sorted(found, key=lambda week: (week.season, week.first_kickoff, week.season_type, week.week))


def kickoff_of(row: Mapping) -> datetime | None:
    """A raw `/games` or `/lines` row's `startDate` as a UTC-aware time (None: missing or unparseable)."""
    try:
        kickoff = datetime.fromisoformat(str(row.get("startDate")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return kickoff if kickoff.tzinfo is not None else kickoff.replace(tzinfo=UTC)


def game_calendar(rows: Iterable[Mapping]) -> list[tuple[int, str, int, datetime, bool]]:
    """(season, season type, week, kickoff, completed) of raw `/games` rows (unparseable dates skipped)."""
    return [(row.get("season"), row.get("seasonType"), row.get("week"), kickoff, bool(row.get("completed")))
            for row in rows if (kickoff := kickoff_of(row)) is not None]


def plan_weeks(
    weeks: Iterable[GameWeek], seasons_available: Callable[[str], set[int] | None], *, now: datetime
) -> tuple[list[Partition], dict[str, datetime]]:
    """The weekly endpoints' partitions of every week that has kicked off, and when each settles."""
    partitions: list[Partition] = []
    settles: dict[str, datetime] = {}
    started = [week for week in weeks if week.first_kickoff <= now]
    for endpoint in WEEKLY:
        available = seasons_available(endpoint)
        for week in started:
            if ENDPOINTS[endpoint].serves(week.season) and (available is None or week.season in available):
                partition = Partition(endpoint, week.season, week.season_type, week.week)
                partitions.append(partition)
                settles[partition.key] = week.settled_at
    return partitions, settles


def kickoff_settles(partitions: Iterable[Partition], weeks: Iterable[GameWeek]) -> dict[str, datetime]:
    """For the season partitions of endpoints fixed at kickoff (`Endpoint.fixed_at_kickoff`), when
    they settle: their season's first kickoff, where the weeks know it (a season whose games are
    not known yet is left out, so it is planned as in progress)."""
    first: dict[int, datetime] = {}
    for week in weeks:
        first[week.season] = min(week.first_kickoff, first.get(week.season, week.first_kickoff))
    return {p.key: first[p.season] for p in partitions
            if ENDPOINTS[p.endpoint].fixed_at_kickoff and p.week is None and p.season in first}

