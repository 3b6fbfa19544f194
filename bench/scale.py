"""Benchmark: beyond one machine (issue 13), in one run on this machine.

1. The Prefect server's database: `gridiron run` on the full bundled snapshot against a running
   `prefect server start` on SQLite (its default) and on PostgreSQL (Debian's, in a temporary
   directory): cold and no-change rerun, with each run's API requests and the 503s among them
   (the server's access log).
2. The task runner: a cold run with `runner: {kind: thread}` and with `{kind: dask}` (a
   LocalCluster of two worker processes made for the process phase), on the PostgreSQL server.
3. Workers: `gridiron backfill --from 2014 --to 2023 --chunk 2 --wait` through one and through
   two process workers on `gridiron-pool` (PostgreSQL server), each on a fresh home.

    .venv/bin/python bench/scale.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import config_file, write_section  # noqa: E402
from gridiron.testing.servers import PREFECT, PostgresServer, PrefectServer, Worker, wait_for  # noqa: E402
from gridiron.testing.timing import environment_without_settings, timed_gridiron  # noqa: E402


def run(args: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, str]:
    """(wall seconds, stderr) of one gridiron command, which must succeed."""
    done = timed_gridiron(args, env, cwd).check(f"gridiron {' '.join(args)}")
    return done.seconds, done.stderr


def config(path: Path, home: Path, **values) -> Path:
    return config_file(path, storage={"home": str(home)}, **values)


def backends(work: Path, base: dict[str, str], repeat: int, postgres: PostgresServer) -> dict[str, dict]:
    """Timed runs per database; the server's access log (uvicorn at INFO) counts each run's API
    requests and the 503s among them (each one a client back-off)."""
    found = {}
    for name, url in (("SQLite (default)", None), ("PostgreSQL 15", postgres.url)):
        server = PrefectServer(work / f"prefect-{len(found)}", database_url=url)
        server.server_env["PREFECT_SERVER_LOGGING_LEVEL"] = "INFO"
        with server:
            env, log = {**base, **server.env}, server.home / "server.log"
            samples = {"cold": [], "rerun": [], "requests": {"cold": [], "rerun": []}, "503": {"cold": [], "rerun": []}}
            for index in range(repeat):
                cfg = config(work / f"db-{len(found)}-{index}.yaml", work / f"db-{len(found)}-{index}")
                for kind in ("cold", "rerun"):
                    offset = log.stat().st_size
                    samples[kind].append(run(["--config", str(cfg), "run"], env)[0])
                    time.sleep(1)  # the access log lines of the run's last requests
                    with open(log, errors="replace") as handle:
                        handle.seek(offset)
                        lines = [line for line in handle if 'HTTP/1.1" ' in line]
                    samples["requests"][kind].append(len(lines))
                    samples["503"][kind].append(sum('HTTP/1.1" 503' in line for line in lines))
            found[name] = samples
    return found


def runners(work: Path, env: dict[str, str]) -> dict[str, float]:
    found = {}
    for kind in ("thread", "dask"):
        cfg = config(work / f"runner-{kind}.yaml", work / f"runner-{kind}", runner={"kind": kind})
        found[kind] = run(["--config", str(cfg), "run"], env)[0]
    return found


def backfills(work: Path, server: PrefectServer, base: dict[str, str]) -> dict[int, float]:
    found = {}
    for count in (1, 2):
        cfg = config(work / f"pool-{count}.yaml", work / f"pool-{count}")
        env = {**base, **server.env, "GRIDIRON_CONFIG": str(cfg)}
        run(["deploy"], env)
        with contextlib.ExitStack() as workers:
            logs = []
            for index in range(count):
                where = work / f"pool-{count}-worker-{index}"
                where.mkdir()
                logs.append(where / "worker.log")
                workers.enter_context(Worker(server, "gridiron-pool", logs[-1], cwd=where, command=[
                    PREFECT, "worker", "start", "--pool", "gridiron-pool", "--type", "process",
                    "--name", f"bench-{count}-{index}", "--limit", "1"]))
            for log in logs:
                wait_for(lambda log=log: "started!" in log.read_text(), 120, f"the worker of {log}")
            found[count] = run(["backfill", "--from", "2014", "--to", "2023", "--chunk", "2", "--wait"], env)[0]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-scale-"))
    base = environment_without_settings()
    started = time.perf_counter()
    try:
        with PostgresServer() as postgres:
            by_backend = backends(work, base, args.repeat, postgres)
            with PrefectServer(work / "prefect-pool", database_url=postgres.url) as server:
                by_runner = runners(work, {**base, **server.env})
                by_workers = backfills(work, server, base)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def cell(samples):
        return f"{statistics.median(samples):.1f} s ({min(samples):.1f} - {max(samples):.1f})"

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB), "
        f"`.venv/bin/python bench/scale.py --repeat {args.repeat}` ({time.perf_counter() - started:.0f} s in all): "
        "the whole `gridiron run` process on the full bundled snapshot (10 seasons) against a running "
        f"`prefect server start` on 127.0.0.1; medians of {args.repeat} (min - max). API requests and the "
        "HTTP 503 answers among them (each a client back-off) from the server's access log, per run (max).",
        "",
        "| Prefect server database | cold run | no-change rerun | API requests (cold / rerun) | 503s (cold / rerun) |",
        "|---|---|---|---|---|",
    ]
    for name, found in by_backend.items():
        lines.append(f"| {name} | {cell(found['cold'])} | {cell(found['rerun'])} | "
                     f"{max(found['requests']['cold'])} / {max(found['requests']['rerun'])} | "
                     f"{max(found['503']['cold'])} / {max(found['503']['rerun'])} |")
    lines += ["", "| task runner of the process phase (PostgreSQL server) | cold run |", "|---|---|"]
    lines += [f"| `runner: {{kind: {kind}}}`{' (LocalCluster, 2 worker processes)' if kind == 'dask' else ''} | "
              f"{seconds:.1f} s |" for kind, seconds in by_runner.items()]
    lines += ["", "| `gridiron backfill --from 2014 --to 2023 --chunk 2 --wait` (5 runs, PostgreSQL server) | wall |",
              "|---|---|"]
    lines += [f"| {count} process worker{'s' if count > 1 else ''} on gridiron-pool | {seconds:.1f} s |"
              for count, seconds in by_workers.items()]
    print(write_section("scale", "Beyond one machine (issue 13)", "\n".join(lines)))


if __name__ == "__main__":
    main()
