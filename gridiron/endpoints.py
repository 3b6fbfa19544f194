"""The endpoint registry: every CFBD endpoint the pipeline reads, with its facts stated once.

An endpoint's route and fixed parameters, its partition grain, the keys every row must carry, the
endpoints its processing also reads, whether a call costs API quota, the first season the API has
data for, and whether the model trains on it. The tables it produces are the table registry's
(`gridiron.tables`, where each table names its endpoint); its transform is a branch of
`gridiron.transforms._stage` (a dispatch table there is still to come). Adding an endpoint means one
row here, its tables there and its transform.

Read from here by: partitions and their query parameters (`sources.base.Partition`), the shape
check (`sources.base.check_shape`), the plan (`planning`), the snapshot's layout and the fake API's
routes (`sources.snapshot`, `testing.fake_cfbd`), the train phase's inputs (`tasks.train`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridiron.tables import produced_by

Grain = Literal["season", "week", "reference"]


@dataclass(frozen=True)
class Endpoint:
    """One CFBD endpoint as the pipeline uses it: route, grain, params, required keys, dependencies, metering, first season."""

    name: str  # our name, also the snapshot folder / file stem
    route: str  # the CFBD route
    grain: Grain  # one partition per season; per (season, season type, week); or one for the whole list
    params: tuple[tuple[str, str], ...] = ()  # fixed query parameters beside the partition's own
    required_keys: tuple[str, ...] = ()  # keys every row must carry (shape check)
    depends_on: tuple[str, ...] = ()  # endpoints whose partitions its processing also reads (same season)
    metered: bool = True  # a call costs one of the month's API calls
    first_season: int | None = None  # the first season the API has data for (None: every season)
    trains: bool = False  # the model reads its tables
    # a season's data is final once the season's first game kicked off (the preseason talent
    # composite, the season's FBS membership): after one fetch since then, it is refreshed like
    # a complete season's instead of on every run of the season in progress
    fixed_at_kickoff: bool = False

    @property
    def seasonal(self) -> bool:
        """Partitioned by season (weekly endpoints are too, by week within it)."""
        return self.grain != "reference"

    @property
    def weekly(self) -> bool:
        """Partitioned by (season, season type, week), planned from the season's games."""
        return self.grain == "week"

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables its partitions produce, from the table registry."""
        return produced_by(self.name)

    def serves(self, season: int) -> bool:
        """Whether the API has data for `season` (from `first_season` on)."""
        return self.first_season is None or season >= self.first_season


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint(
            "games", "/games", "season", (("seasonType", "both"),),
            ("id", "season", "week", "seasonType", "startDate", "completed", "neutralSite",
             "conferenceGame", "homeId", "homeTeam", "homePoints", "awayId", "awayTeam", "awayPoints"),
            trains=True,
        ),
        # without seasonType the API answers the regular season only: the bowls' lines would never come
        Endpoint("lines", "/lines", "season", (("seasonType", "both"),), ("id", "season", "week", "seasonType", "lines"),
                 trains=True),
        Endpoint("teams_fbs", "/teams/fbs", "season", (), ("id", "school", "conference"), fixed_at_kickoff=True),
        Endpoint("stats_season", "/stats/season", "season", (), ("season", "team", "statName", "statValue"),
                 depends_on=("teams_fbs", "teams")),
        # the 247Sports team talent composite begins with the 2015 season
        Endpoint("talent", "/talent", "season", (), ("year", "team", "talent"), depends_on=("teams",),
                 first_season=2015, trains=True, fixed_at_kickoff=True),
        Endpoint("games_teams", "/games/teams", "week", (), ("id", "teams"), trains=True),
        Endpoint("teams", "/teams", "reference", (), ("id", "school")),
        Endpoint("conferences", "/conferences", "reference", (), ("id", "name")),
    )
}
SEASONAL = tuple(name for name, e in ENDPOINTS.items() if e.grain == "season")
WEEKLY = tuple(name for name, e in ENDPOINTS.items() if e.grain == "week")
REFERENCE = tuple(name for name, e in ENDPOINTS.items() if e.grain == "reference")
TRAINED_ON = tuple(name for name, e in ENDPOINTS.items() if e.trains)
