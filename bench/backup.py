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
from gridiron.storage.encryption import BackupKey  # noqa: E402
from gridiron.testing.timing import environment_without_settings, gridiron_run  # noqa: E402

STEPS = ("backup (EXPORT + checksums)", "verify (restore + compare)", "restore --at (check, import, swap)")


def measure(warehouse: Path, backups: Path, repeat: int, key: BackupKey | None) -> tuple[dict[str, list[float]], list[int]]:
    """Each step's times over `repeat` rounds (backup, verify, restore), and the backups' sizes."""
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    sizes = []
    keys = {key.key_id: key} if key else {}
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(repeat):
        with connect(warehouse) as con:
            start = time.perf_counter()
            info = create_backup(con, backups, now=base + timedelta(minutes=index), key=key)
            times[STEPS[0]].append(time.perf_counter() - start)
            live = content_checksums(con)
        start = time.perf_counter()
        verify_backup(info, live, keys=keys)
        times[STEPS[1]].append(time.perf_counter() - start)
        sizes.append(info.size_bytes)
        start = time.perf_counter()
        restore(warehouse, backups, base + timedelta(minutes=index, seconds=30),
                now=base + timedelta(minutes=index, seconds=40), key=key)
        times[STEPS[2]].append(time.perf_counter() - start)
    return times, sizes


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
        plain, plain_sizes = measure(warehouse, work / "plain-backups", args.repeat, None)
        encrypted, encrypted_sizes = measure(warehouse, work / "encrypted-backups", args.repeat,
                                             BackupKey(os.urandom(32)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores), "
        f"`.venv/bin/python bench/backup.py --repeat {args.repeat}`: the warehouse of the full bundled "
        f"snapshot ({warehouse_bytes / 1e6:.1f} MB DuckDB file after a checkpoint), median of {args.repeat}, "
        "plain and encrypted (`backup.encryption`, AES-256-GCM per file).",
        "",
        "| step | plain: median | min - max | encrypted: median | min - max |",
        "|---|---|---|---|---|",
    ]
    for step in plain:
        a, b = plain[step], encrypted[step]
        lines.append(f"| {step} | {statistics.median(a):.2f} s | {min(a):.2f} - {max(a):.2f} s "
                     f"| {statistics.median(b):.2f} s | {min(b):.2f} - {max(b):.2f} s |")
    size, encrypted_size = statistics.median(plain_sizes), statistics.median(encrypted_sizes)
    lines += [
        "",
        f"Backup size: {size / 1e6:.1f} MB plain (Parquet, zstd), {encrypted_size / 1e6:.1f} MB encrypted, for a "
        f"{warehouse_bytes / 1e6:.1f} MB warehouse ({size / warehouse_bytes:.0%}). Encryption adds 28 bytes a file "
        "(nonce and tag): it is applied after compression. A restore also backs up the warehouse it replaces, so "
        "its time includes one backup and verify.",
    ]
    print(write_section("backup", "Backup and recovery", "\n".join(lines)))

if __name__ == "__main__":
    main()
