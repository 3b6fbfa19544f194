"""The snapshot source: real CFBD responses saved as gzipped JSON, read through the `Source` interface.

Layout (the bundled copy and any `GRIDIRON_SNAPSHOT_DIR`): `<endpoint>/<season>.json.gz` for seasonal
endpoints (`games`, `lines`, `teams_fbs`, `stats_season`, `talent`, `games_teams`) and `<endpoint>.json.gz`
for `teams` and `conferences`. Reading costs no API calls, so every run reads it in full and sees any change.

A weekly endpoint's season file (`games_teams/YYYY.json.gz`: every box score of the season) is read one
week at a time, like the API answers it: its rows carry only the game id, so the week and season type
come from the season's `games` file.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gridiron import clock
from gridiron.sources.base import ENDPOINTS, FetchResult, Partition, check_shape
from gridiron.sources.errors import PayloadError, RequestError

_SEASON_FILE = re.compile(r"^(\d{4})\.json\.gz$")


def rows_of_week(rows: Iterable[Mapping[str, Any]], games: Iterable[Mapping[str, Any]],
                 season_type: str, week: int) -> list[Mapping[str, Any]]:
    """The rows (keyed by game `id`) of the games played in one week of one season type."""
    return rows_by_week(rows, games).get((season_type, week), [])


def rows_by_week(rows: Iterable[Mapping[str, Any]],
                 games: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], list[Mapping[str, Any]]]:
    """Every week's rows at once: (season type, week) -> the rows (keyed by game `id`) of that
    week's games, in file order."""
    week_of = {game["id"]: (game.get("seasonType"), game.get("week")) for game in games}
    weeks: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = week_of.get(row.get("id"))
        if key is not None:
            weeks.setdefault(key, []).append(row)
    return weeks


@dataclass
class _SeasonWeeks:
    """A season file split into weeks; each week's rows are handed out once and then let go."""
    mtimes: tuple[float, float]
    weeks: dict[tuple[str, int], list[Mapping[str, Any]]]
    served: set[tuple[str, int]] = field(default_factory=set)


def read_gzipped_json(path: Path) -> Any:
    """The JSON document in a gzipped file."""
    with gzip.open(path, "rb") as handle:
        return json.loads(handle.read())


def bundled_snapshot_dir() -> Path:
    """The real-data snapshot shipped inside the package."""
    return Path(str(resources.files("gridiron") / "snapshot"))


class SnapshotSource:
    """`Source` over a folder of gzipped CFBD responses (the bundled snapshot, or GRIDIRON_SNAPSHOT_DIR)."""

    name = "snapshot"
    metered = False  # reading a file costs no API call

    def __init__(self, root: str | Path, description: str | None = None):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise RequestError(f"snapshot directory {self.root} does not exist")
        if not any(self.root.glob("*.json.gz")) and not any(self.root.glob("*/*.json.gz")):
            raise RequestError(
                f"snapshot directory {self.root} holds no seasons and no team or conference lists "
                "(*.json.gz in the layout of gridiron/snapshot/): check GRIDIRON_SNAPSHOT_DIR")
        self.description = description or f"the snapshot at {self.root}"
        # weekly reads parse a season file once and keep only the weeks not yet handed out: keeping
        # every parsed season file held 226 MB through collect for ten real seasons
        self._season_weeks: dict[Path, _SeasonWeeks] = {}
        self._lock = threading.Lock()

    def path_for(self, partition: Partition) -> Path:
        """The file holding a partition (a season's file, or the reference list's)."""
        if partition.season is None:
            return self.root / f"{partition.endpoint}.json.gz"
        return self.root / partition.endpoint / f"{partition.season}.json.gz"

    def seasons_available(self, endpoint: str) -> set[int]:
        """The seasons the snapshot holds files for, for a seasonal endpoint."""
        if not ENDPOINTS[endpoint].seasonal:
            raise ValueError(f"{endpoint} is not a seasonal endpoint")
        folder = self.root / endpoint
        if not folder.is_dir():
            return set()
        return {
            int(match[1]) for child in folder.iterdir() if (match := _SEASON_FILE.match(child.name))
        }

    def has(self, partition: Partition) -> bool:
        """Whether the snapshot has the partition's file."""
        return self.path_for(partition).is_file()

    def version(self, partition: Partition) -> str | None:
        """Size and modification time (ns) of the file(s) the partition is read from: its season file,
        and for a week the season's games file too (they say which games are the week's)."""
        paths = [self.path_for(partition)]
        if partition.week is not None:
            paths.append(self.root / "games" / f"{partition.season}.json.gz")
        try:
            stats = [path.stat() for path in paths]
        except OSError:
            return None  # missing: fetch says so
        return ";".join(f"{s.st_size}:{s.st_mtime_ns}" for s in stats)

    def fetch(self, partition: Partition) -> FetchResult:
        """The partition's rows from its file, checked for shape."""
        version = self.version(partition)  # before reading: a file changing meanwhile is read again next run
        path = self.path_for(partition)
        if not path.is_file():
            raise RequestError(
                f"{partition.label}: the snapshot has no {path.name}",
                partition=partition.key,
                url=str(path),
            )
        if partition.week is None:
            payload = self._read(partition, path)
        else:
            games_path = self.root / "games" / f"{partition.season}.json.gz"
            if not games_path.is_file():
                raise RequestError(
                    f"{partition.label}: the snapshot has no games/{games_path.name} to tell the weeks of "
                    f"{path.name}'s games", partition=partition.key, url=str(games_path))
            payload = self._week(partition, path, games_path)
        stat = path.stat()
        return FetchResult(
            partition=partition,
            payload=check_shape(partition, payload),
            fetched_at=clock.now(),
            source=self.name,
            meta={"path": str(path), "mtime": stat.st_mtime},
            version=version,
        )

    def _read(self, partition: Partition, path: Path) -> Any:
        try:
            return read_gzipped_json(path)
        except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PayloadError(
                f"{partition.label}: snapshot file {path.name} is not gzipped JSON ({error})",
                partition=partition.key,
                url=str(path),
            ) from error

    def _week(self, partition: Partition, path: Path, games_path: Path) -> Any:
        """One week's rows of a season file. The file is parsed and split by week once per change;
        a week asked for a second time (a retry) parses it again rather than keep every week."""
        key = (partition.season_type, partition.week)
        mtimes = (path.stat().st_mtime, games_path.stat().st_mtime)
        with self._lock:
            season = self._season_weeks.get(path)
            if season is None or season.mtimes != mtimes or key in season.served:
                rows, games = self._read(partition, path), self._read(partition, games_path)
                if not isinstance(rows, list) or not isinstance(games, list):
                    return rows  # check_shape names what is wrong with it
                season = self._season_weeks[path] = _SeasonWeeks(mtimes, rows_by_week(rows, games))
            season.served.add(key)
            week = season.weeks.pop(key, [])
            if not season.weeks:
                del self._season_weeks[path]
            return week

    def calls_left(self) -> int | None:
        """None: reading files costs no quota."""
        return None  # reading files costs no quota

    def close(self) -> None:
        """Nothing to release."""
        pass
