"""Benchmark: backup, verify and restore of the full-snapshot warehouse; backup vs warehouse size.

Builds the warehouse with `gridiron run` in a temporary GRIDIRON_HOME, then times each step
(median of N) through the same functions the backup and restore flows call. Writes its table into
BENCHMARKS.md between this benchmark's markers.

    .venv/bin/python bench/backup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import write_section  # noqa: E402
from gridiron.storage import connect, content_checksums, create_backup, restore, verify_backup  # noqa: E402
from gridiron.testing.timing import environment_without_settings, gridiron_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-backup-"))
    env = environment_without_settings(GRIDIRON_HOME=str(work / "home"), PREFECT_HOME=str(work / "prefect"))
    try:
        gridiron_run(env, REPO)
        warehouse = work / "home" / "gridiron.duckdb"
        with connect(warehouse) as con:
            con.execute("CHECKPOINT")
        warehouse_bytes = warehouse.stat().st_size
        backups = work / "bench-backups"
        times: dict[str, list[float]] = {"backup (EXPORT + checksums)": [], "verify (restore + compare)": [], "restore --at (check, import, swap)": []}
        sizes = []
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for index in range(args.repeat):
            with connect(warehouse) as con:
                start = time.perf_counter()
                info = create_backup(con, backups, now=base + timedelta(minutes=index))
                times["backup (EXPORT + checksums)"].append(time.perf_counter() - start)
                live = content_checksums(con)
            start = time.perf_counter()
            verify_backup(info, live)
            times["verify (restore + compare)"].append(time.perf_counter() - start)
            sizes.append(info.size_bytes)
            start = time.perf_counter()
            restore(warehouse, backups, base + timedelta(minutes=index, seconds=30),
                    now=base + timedelta(minutes=index, seconds=40))
            times["restore --at (check, import, swap)"].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores), "
        f"`.venv/bin/python bench/backup.py --repeat {args.repeat}`: the warehouse of the full bundled "
        f"snapshot ({warehouse_bytes / 1e6:.1f} MB DuckDB file after a checkpoint), median of {args.repeat}.",
        "",
        "| step | median | min - max |",
        "|---|---|---|",
    ]
    for step, samples in times.items():
        lines.append(f"| {step} | {statistics.median(samples):.2f} s | {min(samples):.2f} - {max(samples):.2f} s |")
    lines += [
        "",
        f"Backup size: {statistics.median(sizes) / 1e6:.1f} MB (Parquet, zstd) for a "
        f"{warehouse_bytes / 1e6:.1f} MB warehouse ({statistics.median(sizes) / warehouse_bytes:.0%}). "
        "A restore also backs up the warehouse it replaces, so its time includes one backup and verify.",
    ]
    print(write_section("backup", "Backup and recovery", "\n".join(lines)))

if __name__ == "__main__":
    main()
