"""Benchmark: scale (issue 12, target 5): synthetic seasons derived from the real ones, at N times
the games, run cold through `GRIDIRON_SNAPSHOT_DIR` against a running Prefect server.

`derive` writes a snapshot directory holding the ten real seasons (2014-2023) and N - 1 copies of
them moved back 10, 20, ... years: every season number and kickoff date shifted by the copy's
years, every game id moved into its own range (+ copy x 10^9) in the games, lines and box scores.
Teams keep their ids (the same programs play on), so the reference lists serve every copy.

For each factor: wall time, peak RSS (the process's own VmHWM), the phases' times, the task runs (Prefect API), and
time per game against the 1x run: time growing no faster than linearly is a per-game figure that
does not rise.

    .venv/bin/python bench/synthetic.py [--factors 1 3 10]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.performance import timed_pipeline  # noqa: E402
from bench.report import config_file, write_section  # noqa: E402
from gridiron.sources import bundled_snapshot_dir  # noqa: E402
from gridiron.testing.servers import PrefectServer  # noqa: E402
from gridiron.testing.timing import environment_without_settings  # noqa: E402

GAME_ID_STRIDE = 1_000_000_000
FIRST, LAST = 2014, 2023


def _shift_date(value: str | None, years: int) -> str | None:
    if not value:
        return value
    year = int(value[:4]) - years
    rest = value[4:]
    if rest.startswith("-02-29") and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        rest = "-02-28" + rest[6:]
    return f"{year:04d}{rest}"


def _shifted(endpoint: str, rows: list[dict], copy: int) -> list[dict]:
    years, stride = 10 * copy, GAME_ID_STRIDE * copy
    out = []
    for row in rows:
        row = dict(row)
        if endpoint in ("games", "lines", "games_teams"):
            row["id"] += stride
        if "season" in row and endpoint in ("games", "lines", "stats_season"):
            row["season"] -= years
        if endpoint == "talent":
            row["year"] -= years
        if "startDate" in row:
            row["startDate"] = _shift_date(row["startDate"], years)
        out.append(row)
    return out


def derive(snapshot: Path, out: Path, factor: int) -> int:
    """Write the snapshot at `factor` times the games; returns the number of games."""
    games = 0
    for file in snapshot.glob("*.json.gz"):
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, out / file.name)
    for folder in (p for p in snapshot.iterdir() if p.is_dir()):
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        for file in folder.glob("*.json.gz"):
            rows = json.loads(gzip.decompress(file.read_bytes()))
            season = int(file.name.split(".")[0])
            for copy in range(factor):
                target = out / folder.name / f"{season - 10 * copy}.json.gz"
                target.write_bytes(gzip.compress(json.dumps(_shifted(folder.name, rows, copy)).encode(), 6))
                games += len(rows) if folder.name == "games" else 0
    return games


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 3, 10])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-synthetic-"))
    base = environment_without_settings()
    started = time.perf_counter()
    results = []
    try:
        server = PrefectServer(work / "prefect")  # with the default 512 KB limit on parameters
        with server:
            for factor in args.factors:
                snapshot = work / f"snapshot-{factor}x"
                games = derive(bundled_snapshot_dir(), snapshot, factor)
                path = config_file(work / f"config-{factor}x.yaml", start_year=FIRST - 10 * (factor - 1))
                env = {**base, **server.env, "GRIDIRON_SNAPSHOT_DIR": str(snapshot), "GRIDIRON_CONFIG": str(path),
                       "GRIDIRON_HOME": str(work / f"home-{factor}x")}
                results.append((factor, games, timed_pipeline(f"{factor}x", env, server.url)))
                shutil.rmtree(snapshot, ignore_errors=True)
                shutil.rmtree(work / f"home-{factor}x", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    base_factor, base_games, base_run = results[0]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores, {memory:.0f} GiB), "
        f"`.venv/bin/python bench/synthetic.py --factors {' '.join(map(str, args.factors))}` "
        f"({time.perf_counter() - started:.0f} s in all): one cold `gridiron run` per factor on the derived snapshot "
        "(`GRIDIRON_SNAPSHOT_DIR`), a running `prefect server start` (SQLite, default settings) "
        "on 127.0.0.1. Targets: peak RSS "
        "<= 2 GB at 100x, time no faster than linear (ms per game flat), task runs bounded by partitions.",
        "",
        "| factor | seasons | games | wall | ms per game | vs 1x | peak RSS | collect | process | train | load | "
        "validate | backup | task runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_game_1x = base_run.wall / base_games * 1000
    for factor, games, run in results:
        per_game = run.wall / games * 1000
        phases = " | ".join(f"{run.phases.get(p, 0):.1f}" for p in ("collect", "process", "train", "load", "validate", "backup"))
        lines.append(f"| {factor}x | {10 * factor} | {games:,} | {run.wall:.1f} s | {per_game:.2f} | "
                     f"{per_game / per_game_1x:.2f} | {run.peak_mb:.0f} MiB | {phases} | {run.task_runs} |")
    print(write_section("synthetic", "Scale: synthetic seasons (issue 12)", "\n".join(lines)))


if __name__ == "__main__":
    main()
