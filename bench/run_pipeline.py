"""Benchmark: `gridiron run` on the full bundled snapshot, cold and with nothing changed.

Whole-process wall time (median of N) and peak resident memory of the process (its own VmHWM), once
with the temporary Prefect server a run starts for itself and once against a running local
`prefect server start`. Writes the table into BENCHMARKS.md between this benchmark's markers.

    .venv/bin/python bench/run_pipeline.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from bench.report import write_section  # noqa: E402
from gridiron.testing.timing import environment_without_settings, gridiron_run  # noqa: E402


def timed_run(env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `gridiron run` process."""
    run = gridiron_run(env, REPO)
    return run.seconds, run.peak_mb


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("prefect server did not start in 60 s")


def measure(env: dict[str, str], repeat: int, work: Path) -> dict[str, list[tuple[float, float]]]:
    cold, rerun = [], []
    for index in range(repeat):
        home = work / f"home-{index}"
        run_env = {**env, "GRIDIRON_HOME": str(home)}
        cold.append(timed_run(run_env))
        rerun.append(timed_run(run_env))
    return {"cold": cold, "rerun": rerun}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-"))
    base = environment_without_settings(PREFECT_HOME=str(work / "prefect"))
    results = {}
    try:
        results["temporary server"] = measure(base, args.repeat, work / "temporary")
        server, url = start_server(base)
        try:
            results["running local server"] = measure({**base, "PREFECT_API_URL": url}, args.repeat, work / "running")
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores), "
        f"`.venv/bin/python bench/run_pipeline.py --repeat {args.repeat}`: the whole `gridiron run` "
        "process on the full bundled snapshot (10 seasons, 47 partitions), median of "
        f"{args.repeat}, peak RSS the largest of the runs.",
        "",
        "| Prefect API | run | wall time (median) | min - max | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for server_kind, runs in results.items():
        for kind, samples in runs.items():
            seconds = [s for s, _ in samples]
            label = "cold (empty GRIDIRON_HOME)" if kind == "cold" else "no-change rerun"
            lines.append(
                f"| {server_kind} | {label} | {statistics.median(seconds):.1f} s | "
                f"{min(seconds):.1f} - {max(seconds):.1f} s | {max(m for _, m in samples):.0f} MiB |"
            )
    print(write_section("run_pipeline", "Pipeline run (issue: foundation)", "\n".join(lines)))

if __name__ == "__main__":
    main()
