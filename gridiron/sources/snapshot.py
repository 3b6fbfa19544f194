"""The snapshot source: real CFBD responses saved as gzipped JSON, read through the `Source` interface.

Layout (the bundled copy and any `GRIDIRON_SNAPSHOT_DIR`): `<endpoint>/<season>.json.gz` for seasonal
endpoints (`games`, `lines`, `teams_fbs`, `stats_season`, `talent`) and `<endpoint>.json.gz` for `teams` and
`conferences`. Reading costs no API calls, so every run reads it in full and sees any change.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from gridiron.sources.base import ENDPOINTS, FetchResult, Partition, check_shape
from gridiron.sources.errors import PayloadError, RequestError

_SEASON_FILE = re.compile(r"^(\d{4})\.json\.gz$")


def bundled_snapshot_dir() -> Path:
    """The real-data snapshot shipped inside the package."""
    return Path(str(resources.files("gridiron") / "snapshot"))


class SnapshotSource:
    name = "snapshot"

    def __init__(self, root: str | Path, description: str | None = None):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise RequestError(f"snapshot directory {self.root} does not exist")
        if not any(self.root.glob("*.json.gz")) and not any(self.root.glob("*/*.json.gz")):
            raise RequestError(
                f"snapshot directory {self.root} holds no seasons and no team or conference lists "
                "(*.json.gz in the layout of gridiron/snapshot/): check GRIDIRON_SNAPSHOT_DIR")
        self.description = description or f"the snapshot at {self.root}"

    def path_for(self, partition: Partition) -> Path:
        if partition.season is None:
            return self.root / f"{partition.endpoint}.json.gz"
        return self.root / partition.endpoint / f"{partition.season}.json.gz"

    def seasons_available(self, endpoint: str) -> set[int]:
        if not ENDPOINTS[endpoint].seasonal:
            raise ValueError(f"{endpoint} is not a seasonal endpoint")
        folder = self.root / endpoint
        if not folder.is_dir():
            return set()
        return {
            int(match[1]) for child in folder.iterdir() if (match := _SEASON_FILE.match(child.name))
        }

    def has(self, partition: Partition) -> bool:
        return self.path_for(partition).is_file()

    def fetch(self, partition: Partition) -> FetchResult:
        path = self.path_for(partition)
        if not path.is_file():
            raise RequestError(
                f"{partition.endpoint} season {partition.season}: the snapshot has no {path.name}",
                partition=partition.key,
                url=str(path),
            )
        try:
            with gzip.open(path, "rb") as handle:
                payload = json.loads(handle.read())
        except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PayloadError(
                f"{partition.endpoint} season {partition.season}: snapshot file is not "
                f"gzipped JSON ({error})",
                partition=partition.key,
                url=str(path),
            ) from error
        stat = path.stat()
        return FetchResult(
            partition=partition,
            payload=check_shape(partition, payload),
            fetched_at=datetime.now(timezone.utc),
            source=self.name,
            meta={"path": str(path), "mtime": stat.st_mtime},
        )

    def calls_left(self) -> int | None:
        return None  # reading files costs no quota

    def close(self) -> None:
        pass
