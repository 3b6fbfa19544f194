"""Parts of the bundled snapshot (real CFBD data) for the fake API, the tests and the benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

from gridiron.sources import bundled_snapshot_dir

# two seasons of games, one of everything else: real data, small enough for flow tests
SMALL = {"games": [2022, 2023], "lines": [2023], "teams_fbs": [2023], "stats_season": [2023]}


def copy_snapshot(target: Path, seasons: dict[str, list[int]], reference: bool = True) -> Path:
    """Copy part of the bundled snapshot: `{"games": [2023], ...}` plus teams and conferences."""
    bundled = bundled_snapshot_dir()
    for endpoint, years in seasons.items():
        (target / endpoint).mkdir(parents=True, exist_ok=True)
        for year in years:
            shutil.copy(bundled / endpoint / f"{year}.json.gz", target / endpoint / f"{year}.json.gz")
    if reference:
        for name in ("teams.json.gz", "conferences.json.gz"):
            shutil.copy(bundled / name, target / name)
    return target
