"""The data-source interface: partitions, endpoints, fetch results, and shape checks.

A partition is one API call's worth of data: (endpoint, season) for seasonal endpoints, (endpoint,)
for the reference lists. Live API and bundled snapshot both implement `Source`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gridiron.sources.errors import PayloadError


@dataclass(frozen=True)
class Endpoint:
    name: str  # our name, also the snapshot folder / file stem
    path: str  # CFBD route
    seasonal: bool
    extra_params: tuple[tuple[str, str], ...] = ()
    required_keys: tuple[str, ...] = ()  # keys every row must carry (shape check)


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint(
            "games", "/games", True, (("seasonType", "both"),),
            ("id", "season", "week", "seasonType", "startDate", "completed", "neutralSite",
             "conferenceGame", "homeId", "homeTeam", "homePoints", "awayId", "awayTeam", "awayPoints"),
        ),
        Endpoint("lines", "/lines", True, (), ("id", "season", "week", "seasonType", "lines")),
        Endpoint("teams_fbs", "/teams/fbs", True, (), ("id", "school", "conference")),
        Endpoint("stats_season", "/stats/season", True, (),
                 ("season", "team", "statName", "statValue")),
        Endpoint("talent", "/talent", True, (), ("year", "team", "talent")),
        Endpoint("teams", "/teams", False, (), ("id", "school")),
        Endpoint("conferences", "/conferences", False, (), ("id", "name")),
    )
}
SEASONAL = tuple(name for name, e in ENDPOINTS.items() if e.seasonal)
REFERENCE = tuple(name for name, e in ENDPOINTS.items() if not e.seasonal)


@dataclass(frozen=True, order=True)
class Partition:
    endpoint: str
    season: int | None = None

    def __post_init__(self) -> None:
        spec = ENDPOINTS.get(self.endpoint)
        if spec is None:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; known: {sorted(ENDPOINTS)}")
        if spec.seasonal != (self.season is not None):
            raise ValueError(
                f"endpoint {self.endpoint!r} {'needs' if spec.seasonal else 'takes no'} season"
            )

    @property
    def key(self) -> str:
        """Stable text key, e.g. `games/2023` or `teams`."""
        return f"{self.endpoint}/{self.season}" if self.season is not None else self.endpoint

    @property
    def spec(self) -> Endpoint:
        return ENDPOINTS[self.endpoint]

    @property
    def params(self) -> dict[str, Any]:
        """The query parameters of the API call this partition stands for."""
        params: dict[str, Any] = {"year": self.season} if self.season is not None else {}
        params.update(dict(self.spec.extra_params))
        return params

    @classmethod
    def from_key(cls, key: str) -> Partition:
        endpoint, _, season = key.partition("/")
        return cls(endpoint, int(season) if season else None)


@dataclass
class FetchResult:
    partition: Partition
    payload: list[dict[str, Any]]
    fetched_at: datetime
    source: str  # "api" or "snapshot"
    calls_remaining: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """What collect needs of a data source."""

    name: str
    description: str  # for logs: what and where, and why this source was chosen

    def seasons_available(self, endpoint: str) -> set[int] | None:
        """Seasons the source holds for a seasonal endpoint; None when any season may be asked."""

    def fetch(self, partition: Partition) -> FetchResult: ...

    def calls_left(self) -> int | None:
        """The month's API calls left, read fresh where that costs nothing (None: no quota, or unknown)."""

    def close(self) -> None: ...


def normalise(payload: list[dict[str, Any]]) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace): equal data gives equal bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(normalised: bytes) -> str:
    return hashlib.sha256(normalised).hexdigest()


def check_shape(partition: Partition, payload: Any) -> list[dict[str, Any]]:
    """The payload if it is a list of rows with the endpoint's keys; else a `PayloadError`."""
    if not isinstance(payload, list):
        raise PayloadError(
            f"{partition.endpoint} season {partition.season}: expected a JSON array, "
            f"got {type(payload).__name__}",
            partition=partition.key,
        )
    required = partition.spec.required_keys
    for index, row in enumerate(payload):
        if not isinstance(row, dict):
            raise PayloadError(
                f"{partition.endpoint} season {partition.season}: row {index} is "
                f"{type(row).__name__}, expected an object",
                partition=partition.key,
            )
        missing = [key for key in required if key not in row]
        if missing:
            raise PayloadError(
                f"{partition.endpoint} season {partition.season}: row {index} lacks "
                f"{', '.join(missing)}",
                partition=partition.key,
            )
    return payload
