"""Benchmark: the process phase's Python work on the ten bundled seasons, in one process.

Every partition of 2014-2023 (229, weeks included) is staged from its normalised payload bytes, as
the process task does: through the columnar reader where it covers the payload (`transforms.ingest`)
and the row path otherwise. Beside it, the row path alone (parse with the standard library, then
stage the rows: what process did before the columnar reader), and DuckDB alone reading the same
gzipped JSON into tables (the floor, in a fresh process). Single runs; no Prefect, no Parquet.

    .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.performance import duckdb_floor  # noqa: E402
from bench.report import write_section  # noqa: E402
from gridiron.game_weeks import game_calendar, game_weeks_of, plan_weeks  # noqa: E402
from gridiron.planning import dependencies_of, plan_partitions  # noqa: E402
from gridiron.sources import Partition, SnapshotSource, bundled_snapshot_dir, normalise  # noqa: E402
from gridiron.transforms import stage_partition  # noqa: E402
from gridiron.transforms.ingest import read_columnar  # noqa: E402


def main() -> None:
    source = SnapshotSource(bundled_snapshot_dir())
    partitions = plan_partitions(range(2014, 2024), source.seasons_available)
    rows = {p.key: source.fetch(p).payload for p in partitions}
    calendar = [r for p in partitions if p.endpoint == "games" for r in game_calendar(rows[p.key])]
    weeks, _ = plan_weeks(game_weeks_of(calendar), source.seasons_available, now=datetime.now(UTC))
    rows.update({p.key: source.fetch(p).payload for p in weeks})
    payloads = {key: normalise(value) for key, value in rows.items()}

    def staged(parse) -> float:
        start = time.perf_counter()
        for key, data in payloads.items():
            partition = Partition.from_key(key)
            deps = {d.key: rows[d.key] for d in dependencies_of(partition) if d.key in rows}
            stage_partition(partition, parse(data), deps)
        return time.perf_counter() - start

    rows_path = staged(json.loads)
    columnar = staged(lambda data: data)
    covered = sum(read_columnar(Partition.from_key(k), d) is not None for k, d in payloads.items())
    with tempfile.TemporaryDirectory() as work:
        floor = duckdb_floor(bundled_snapshot_dir(), Path(work))
    body = "\n".join([
        f"`.venv/bin/python bench/ingest.py`, {len(payloads)} partitions ({covered} through the columnar "
        f"reader), {sum(map(len, payloads.values())) / 2**20:.0f} MiB of normalised JSON, one process:",
        "",
        "| path | seconds | x the DuckDB floor |",
        "|---|---|---|",
        f"| row path alone: `json.loads`, then stage the rows | {rows_path:.2f} | {rows_path / floor:.1f} |",
        f"| payload bytes: columnar reader, row path where it refuses (now) | {columnar:.2f} | {columnar / floor:.1f} |",
        f"| DuckDB floor: `read_json` of the gzipped files into tables | {floor:.2f} | 1.0 |",
    ])
    print(write_section("ingest", "Ingest: the process phase's Python work (issue 30, target 1)", body))


if __name__ == "__main__":
    main()
