"""The data-source interface: partitions, endpoints, fetch results, and shape checks.

A partition is one API call's worth of data: (endpoint, season) for seasonal endpoints, (endpoint,
season, season type, week) for weekly ones (`/games/teams` answers only for a week, a team or a
conference), (endpoint,) for the reference lists: each endpoint's grain is in the endpoint registry
(`gridiron.endpoints`). Live API and bundled snapshot both implement `Source`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gridiron.endpoints import ENDPOINTS, REFERENCE, SEASONAL, WEEKLY, Endpoint
from gridiron.sources.errors import PayloadError

__all__ = ["ENDPOINTS", "REFERENCE", "SEASONAL", "WEEKLY", "Endpoint", "FetchResult", "Partition", "Source",
           "check_shape", "checksum", "normalise"]


@dataclass(frozen=True, order=True)
class Partition:
    """One unit of collection: an endpoint and, for seasonal and weekly endpoints, its season (and week)."""

    endpoint: str
    season: int | None = None
    season_type: str | None = None  # weekly endpoints only: "regular", "postseason", ...
    week: int | None = None  # weekly endpoints only

    def __post_init__(self) -> None:
        spec = ENDPOINTS.get(self.endpoint)
        if spec is None:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; known: {sorted(ENDPOINTS)}")
        if spec.seasonal != (self.season is not None):
            raise ValueError(
                f"endpoint {self.endpoint!r} {'needs' if spec.seasonal else 'takes no'} season"
            )
        if spec.weekly != (self.season_type is not None and self.week is not None) or (
            not spec.weekly and (self.season_type is not None or self.week is not None)
        ):
            raise ValueError(
                f"endpoint {self.endpoint!r} {'needs' if spec.weekly else 'takes no'} season type and week"
            )

    @property
    def key(self) -> str:
        """Stable text key, e.g. `games/2023`, `games_teams/2023/regular/5` or `teams`."""
        return "/".join(str(part) for part in (self.endpoint, *self.scope))

    @property
    def scope(self) -> tuple[int | str, ...]:
        """The values of its tables' partition columns: (season,), (season, season type, week) or ()."""
        if self.season is None:
            return ()
        return (self.season,) if self.week is None else (self.season, self.season_type, self.week)

    @property
    def slug(self) -> str:
        """For task run names: `games-2023`, `games_teams-2023-regular-5`, `teams`."""
        return self.key.replace("/", "-")

    @property
    def label(self) -> str:
        """For messages: `games season 2023`, `games_teams season 2023 regular week 5`."""
        week = f" {self.season_type} week {self.week}" if self.week is not None else ""
        return f"{self.endpoint} season {self.season}{week}"

    @property
    def spec(self) -> Endpoint:
        """The endpoint's registry entry."""
        return ENDPOINTS[self.endpoint]

    @property
    def params(self) -> dict[str, Any]:
        """The query parameters of the API call this partition stands for."""
        params: dict[str, Any] = {"year": self.season} if self.season is not None else {}
        if self.week is not None:
            params.update(seasonType=self.season_type, week=self.week)
        params.update(dict(self.spec.params))
        return params

    @classmethod
    def from_key(cls, key: str) -> Partition:
        """The partition of a text key (`games_teams/2023/regular/5`), parsed once per key and process."""
        return _from_key(key) if cls is Partition else cls._parse(key)

    @classmethod
    def _parse(cls, key: str) -> Partition:
        endpoint, *scope = key.split("/")
        if len(scope) == 3:
            return cls(endpoint, int(scope[0]), scope[1], int(scope[2]))
        if len(scope) > 1:
            raise ValueError(f"not a partition key: {key!r}")
        return cls(endpoint, int(scope[0]) if scope else None)


@functools.lru_cache(maxsize=65536)
def _from_key(key: str) -> Partition:
    return Partition._parse(key)  # a Partition is frozen: every caller may share the one parsed


@dataclass
class FetchResult:
    """What a source returned for a partition: its rows and, from the API, the calls left."""

    partition: Partition
    payload: list[dict[str, Any]]
    fetched_at: datetime
    source: str  # "api" or "snapshot"
    calls_remaining: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the source's version tag of what was read (`Source.version`)


class Source(Protocol):
    """What collect needs of a data source."""

    name: str
    description: str  # for logs: what and where, and why this source was chosen
    metered: bool  # its calls cost API quota: the plan keeps to the calls left and refetches by age

    def seasons_available(self, endpoint: str) -> set[int] | None:
        """Seasons the source holds for a seasonal endpoint; None when any season may be asked."""

    def fetch(self, partition: Partition) -> FetchResult:
        """The partition's rows, checked for shape (the API's or the snapshot's)."""

    def version(self, partition: Partition) -> str | None:
        """A tag of the partition's current content that costs next to nothing to read (a snapshot
        file's size and modification time): a partition whose tag equals the one recorded when it
        was loaded has not changed and is not read again. None: no such tag, read it."""

    def calls_left(self) -> int | None:
        """The month's API calls left, read fresh where that costs nothing (None: no quota, or unknown)."""

    def close(self) -> None:
        """Release what the source holds open (the HTTP client)."""


def normalise(payload: list[dict[str, Any]]) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace): equal data gives equal bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(normalised: bytes) -> str:
    """The sha256 of a normalised payload."""
    return hashlib.sha256(normalised).hexdigest()


def check_shape(partition: Partition, payload: Any) -> list[dict[str, Any]]:
    """The payload if it is a list of rows with the endpoint's keys; else a `PayloadError`."""
    if not isinstance(payload, list):
        raise PayloadError(
            f"{partition.label}: expected a JSON array, "
            f"got {type(payload).__name__}",
            partition=partition.key,
        )
    required = partition.spec.required_keys
    for index, row in enumerate(payload):
        if not isinstance(row, dict):
            raise PayloadError(
                f"{partition.label}: row {index} is "
                f"{type(row).__name__}, expected an object",
                partition=partition.key,
            )
        missing = [key for key in required if key not in row]
        if missing:
            raise PayloadError(
                f"{partition.label}: row {index} lacks "
                f"{', '.join(missing)}",
                partition=partition.key,
            )
    return payload
