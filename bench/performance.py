"""Benchmark: the performance targets (issue 30, Performance v2), each beside its floor, in one run on this machine.

Against one fake CFBD server (`gridiron.testing.fake_cfbd`, in this process, on 127.0.0.1) and one
running `prefect server start` (SQLite), in this order:

1. The notebook peer (`bench/notebook_peer.py`: the official `cfbd` 5.33.1 client, pandas and
   DuckDB, fetch and load only) in its own virtualenv, made here once and kept under
   `~/.cache/gridiron-bench/` (cfbd 5 needs pydantic 1, Prefect needs 2).
2. `gridiron run` cold over HTTP with the shipped settings, then a no-change rerun; then the peer
   and a gridiron cold run once more each (on a busy machine one pair can differ by 20%; target 1
   compares the means of the two).
3. The DuckDB floor: DuckDB alone reading the same gzipped JSON files into tables.
4. `gridiron run` cold on a copy of the snapshot (`GRIDIRON_SNAPSHOT_DIR`), its collect + process
   + load beside the floor; a no-change rerun; then one game's score changed in the copy and a
   rerun, with the task runs that did work (not cache hits) counted by kind.
5. `gridiron run` cold on the snapshot without PREFECT_API_URL, as `make run` runs it (the
   temporary Prefect server, a child process of the run).

For each gridiron run: wall time, peak RSS (the process's own VmHWM), the phases' times (the run's progress lines),
and the orchestration overhead: wall time minus the time at least one task body was running
(task-run start to end, from the Prefect API), and its share of the wall time.

    .venv/bin/python bench/performance.py
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import write_section  # noqa: E402
from gridiron.sources import bundled_snapshot_dir  # noqa: E402
from gridiron.testing.fake_cfbd import FakeCFBD  # noqa: E402
from gridiron.testing.servers import PrefectServer  # noqa: E402
from gridiron.testing.timing import environment_without_settings, timed_gridiron  # noqa: E402

GRIDIRON = str(Path(sys.executable).parent / "gridiron")
KEY = "bench-key"
PEER_PACKAGES = ("cfbd==5.33.1", "pandas==3.1.1", "duckdb==2.0.1")  # pandas, duckdb: as gridiron's
PEER_VENV = Path.home() / ".cache" / "gridiron-bench" / ("peer-" + "-".join(p.replace("==", "") for p in PEER_PACKAGES))
PHASE_LINE = re.compile(r"gridiron: (\w+) completed in ([\d.]+) s")


@dataclass
class Run:
    label: str
    wall: float
    peak_mb: float
    phases: dict[str, float]
    covered: float = 0.0  # seconds in which at least one task body was running
    task_runs: int = 0
    worked: dict[str, int] = field(default_factory=dict)  # task kind -> task runs that ran (not cached)

    @property
    def overhead(self) -> float:
        return self.wall - self.covered


@dataclass
class Floors:
    """What the targets are measured against, in the same run."""

    duckdb: float  # seconds: DuckDB alone reading the gzipped JSON into tables (target 1)
    prefect: list[float]  # seconds: a parent flow and six idle subflows, process start to exit (2, 3)
    imports_mb: float  # MiB: a process holding what a run imports, doing nothing (4)


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def run_peer(url: str, work: Path) -> dict:
    done = subprocess.run(
        [str(peer_python()), str(REPO / "bench" / "notebook_peer.py"), "--host", url, "--key", KEY,
         "--from", "2014", "--to", "2023", "--db", str(work / "peer.duckdb")],
        capture_output=True, text=True, timeout=1800,
    )
    if done.returncode:
        raise SystemExit(f"the notebook peer failed: {done.stderr[-2500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def duckdb_floor(snapshot: Path, work: Path) -> float:
    """DuckDB alone: every endpoint's gzipped JSON files into one table each, in a fresh process."""
    script = f"""
import duckdb, time
from pathlib import Path
start = time.perf_counter()
con = duckdb.connect({str(work / 'floor.duckdb')!r})
root = Path({str(snapshot)!r})
for folder in sorted(p for p in root.iterdir() if p.is_dir()):
    con.execute(f"CREATE TABLE {{folder.name}} AS SELECT * FROM read_json('{{folder}}/*.json.gz', format='array', union_by_name=true)")
for file in sorted(root.glob('*.json.gz')):
    con.execute(f"CREATE TABLE {{file.name.split('.')[0]}} AS SELECT * FROM read_json('{{file}}', format='array')")
con.close()
print(time.perf_counter() - start)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def prefect_floor(env: dict[str, str]) -> float:
    """Wall time of `bench/prefect_floor.py`: Prefect's own cost of a parent flow and six idle
    subflows against the same server, process start and exit included (the floor of targets 2 and 3)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "bench" / "prefect_floor.py")], env=env, cwd=REPO,
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - start


IMPORTED = ("flows.pipeline", "pandera.polars", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing",
            "scipy.sparse")


def import_floor(env: dict[str, str]) -> float:
    """Resident memory (MiB) of a process that has imported what a cold run imports (the flows, the
    quality gate's pandera and the model's scikit-learn, with the pandas, pyarrow and scipy they
    load) and opened one DuckDB connection, and done nothing else: the floor of target 4."""
    script = (f"import {', '.join(IMPORTED)}, duckdb\n"
              "duckdb.connect().execute('SELECT 1').fetchall()\n"
              "from gridiron.runs import high_water_mb\n"
              "print(high_water_mb())")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def timed_pipeline(label: str, env: dict[str, str], api_url: str) -> Run:
    started_at = datetime.now(UTC) - timedelta(seconds=1)
    timed = timed_gridiron(["run"], env, REPO, merge_output=True).check(f"{label}: gridiron run")
    run = Run(label, timed.seconds, timed.peak_mb, {m[1]: float(m[2]) for m in PHASE_LINE.finditer(timed.stdout)})
    run.covered, run.task_runs, run.worked = asyncio.run(task_runs_since(started_at, api_url))
    return run


def timed_make_run(env: dict[str, str]) -> Run:
    """`gridiron run` as `make run` runs it: no PREFECT_API_URL, so on its temporary server."""
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    timed = timed_gridiron(["run"], env, REPO, merge_output=True).check("make run: gridiron run")
    run = Run("temporary server (make run), snapshot, cold", timed.seconds, timed.peak_mb,
              {m[1]: float(m[2]) for m in PHASE_LINE.finditer(timed.stdout)})
    return run


async def task_runs_since(started_at: datetime, api_url: str) -> tuple[float, int, dict[str, int]]:
    """(seconds covered by task bodies, task runs, kind -> task runs that ran) of the runs started
    after `started_at` (the benchmark runs one pipeline at a time)."""
    os.environ["PREFECT_API_URL"] = api_url
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterStartTime

    async with get_client() as client:
        flow_runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started_at)), limit=200)
        task_runs, offset = [], 0
        while True:
            page = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[f.id for f in flow_runs])), limit=200, offset=offset)
            task_runs += page
            offset += len(page)
            if len(page) < 200:
                break
    spans = sorted((t.start_time.timestamp(), t.end_time.timestamp())
                   for t in task_runs if t.start_time and t.end_time)
    covered, current = 0.0, None
    for begin, end in spans:
        if current is None or begin > current[1]:
            covered += current[1] - current[0] if current else 0.0
            current = [begin, end]
        else:
            current[1] = max(current[1], end)
    covered += current[1] - current[0] if current else 0.0
    worked = collections.Counter(
        t.name.split("-")[0] for t in task_runs if t.state and t.state.name != "Cached" and t.start_time)
    return covered, len(task_runs), dict(sorted(worked.items()))


def change_one_game(snapshot: Path, season: int) -> int:
    """Add a point to the home score of the season's last completed game; returns its id."""
    path = snapshot / "games" / f"{season}.json.gz"
    games = json.loads(gzip.decompress(path.read_bytes()))
    game = [g for g in games if g.get("completed") and g.get("homePoints") is not None][-1]
    game["homePoints"] += 1
    path.write_bytes(gzip.compress(json.dumps(games).encode()))
    return game["id"]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-perf-"))
    base = environment_without_settings()
    started = time.perf_counter()
    snapshot = work / "snapshot"
    shutil.copytree(bundled_snapshot_dir(), snapshot, ignore=shutil.ignore_patterns("*.md"))
    runs: list[Run] = []
    try:
        with FakeCFBD(bundled_snapshot_dir(), api_key=KEY, calls_remaining=10**6) as fake, \
                PrefectServer(work / "prefect") as server:
            peer = run_peer(fake.url, work)
            api = {**base, **server.env, "CFBD_API_KEY": KEY, "CFBD_BASE_URL": fake.url}
            runs.append(timed_pipeline("HTTP, cold", {**api, "GRIDIRON_HOME": str(work / "api")}, server.url))
            runs.append(timed_pipeline("HTTP, no-change rerun", {**api, "GRIDIRON_HOME": str(work / "api")}, server.url))
            peer_again = run_peer(fake.url, work)
            runs.append(timed_pipeline("HTTP, cold again", {**api, "GRIDIRON_HOME": str(work / "api-again")}, server.url))
            floors = Floors(duckdb=duckdb_floor(snapshot, work),
                            prefect=[prefect_floor({**base, **server.env}) for _ in range(2)],
                            imports_mb=import_floor(base))
            local = {**base, **server.env, "GRIDIRON_SNAPSHOT_DIR": str(snapshot), "GRIDIRON_HOME": str(work / "snap")}
            runs.append(timed_pipeline("snapshot, cold", local, server.url))
            runs.append(timed_pipeline("snapshot, no-change rerun", local, server.url))
            game = change_one_game(snapshot, 2023)
            runs.append(timed_pipeline(f"snapshot, one game changed (2023, game {game})", local, server.url))
        runs.append(timed_make_run({**base, "GRIDIRON_SNAPSHOT_DIR": str(snapshot), "GRIDIRON_HOME": str(work / "make"),
                                    "PREFECT_HOME": str(work / "make" / "prefect")}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write_section("performance", "Performance v2 (issue 30): targets",
                        report([peer, peer_again], runs, started, floors)))


def report(peers: list[dict], runs: list[Run], started: float, floors: Floors) -> str:
    by = {run.label.split(" (")[0]: run for run in runs}
    cold_api, rerun_api, again = by["HTTP, cold"], by["HTTP, no-change rerun"], by["HTTP, cold again"]
    make_run = by["temporary server"]
    peer = peers[0]
    peer_mean = sum(p["seconds"] for p in peers) / len(peers)
    ours_mean = (cold_api.wall + again.wall) / 2
    peer_times = " and ".join(f"{p['seconds']:.1f}" for p in peers)
    cold, rerun, changed = by["snapshot, cold"], by["snapshot, no-change rerun"], by["snapshot, one game changed"]
    cpl = sum(cold.phases.get(p, 0.0) for p in ("collect", "process", "load"))
    process = cold.phases.get("process", 0.0)
    prefect = min(floors.prefect)
    memory_cap = floors.imports_mb + 150
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores, {memory:.0f} GiB), "
        f"`.venv/bin/python bench/performance.py` ({time.perf_counter() - started:.0f} s in all), single runs: ten "
        "seasons (2014-2023), a fake CFBD server in the benchmark's process and a running `prefect server start` "
        "(SQLite), both on 127.0.0.1; the last run on the temporary server, as `make run` runs it.",
        "",
        "| target | figure | floor (same run) | ratio | |",
        "|---|---|---|---|---|",
        f"| 1a. collect + process + load <= 3x the DuckDB floor | snapshot {cpl:.1f} s | DuckDB reading the same "
        f"gzipped JSON: {floors.duckdb:.2f} s | {cpl / floors.duckdb:.1f}x | {verdict(cpl <= 3 * floors.duckdb)} |",
        f"| 1b. process alone <= 1x the DuckDB floor | {process:.1f} s | {floors.duckdb:.2f} s "
        f"| {process / floors.duckdb:.1f}x | {verdict(process <= floors.duckdb)} |",
        f"| 2. no-change rerun <= the Prefect-shape floor + 1.0 s | HTTP {rerun_api.wall:.1f} s; snapshot "
        f"{rerun.wall:.1f} s | a parent flow and six idle subflows (`bench/prefect_floor.py`): "
        f"{' and '.join(f'{s:.1f}' for s in floors.prefect)} s | +{rerun_api.wall - prefect:.1f} s; "
        f"+{rerun.wall - prefect:.1f} s | {verdict(rerun_api.wall <= prefect + 1)}; {verdict(rerun.wall <= prefect + 1)} |",
        f"| 3. one changed game <= the floor + 3 s | snapshot {changed.wall:.1f} s | {prefect:.1f} s "
        f"| +{changed.wall - prefect:.1f} s | {verdict(changed.wall <= prefect + 3)} |",
        f"| 4a. peak RSS <= the import floor + 150 MiB, ten seasons | HTTP {cold_api.peak_mb:.0f} MiB; snapshot "
        f"{cold.peak_mb:.0f} MiB | a process importing what a run imports (flows, pandera, scikit-learn, with "
        f"pandas, pyarrow, scipy) and opening DuckDB: {floors.imports_mb:.0f} MiB "
        f"| +{max(cold_api.peak_mb, cold.peak_mb) - floors.imports_mb:.0f} MiB "
        f"| {verdict(max(cold_api.peak_mb, cold.peak_mb) <= memory_cap)} |",
        f"| 4b. `make run` <= 500 MB | {make_run.peak_mb * 2**20 / 1e6:.0f} MB ({make_run.peak_mb:.0f} MiB), "
        f"{make_run.wall:.1f} s | - | {make_run.peak_mb * 2**20 / 1e6 / 500:.2f} | {verdict(make_run.peak_mb * 2**20 <= 500e6)} |",
        f"| 6. cold over HTTP <= 0.7x the notebook peer (fetch + load only, {peer['requests']} requests) "
        f"| gridiron {cold_api.wall:.1f} and {again.wall:.1f} s (mean {ours_mean:.1f}) | peer "
        f"{peer_times} s (mean {peer_mean:.1f}) | {ours_mean / peer_mean:.2f} | {verdict(ours_mean <= 0.7 * peer_mean)} |",
        "",
        "Target 5 (100x) is `bench/synthetic.py`'s; target 7 (the suite's time) is measured on a fresh clone "
        "with `bash .ci/run`.",
        "",
        "| run | wall | peak RSS | collect | process | train | load | validate | backup | task runs (ran) | "
        "time no task body ran |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        phases = " | ".join(f"{run.phases[p]:.1f}" if p in run.phases else "-"
                            for p in ("collect", "process", "train", "load", "validate", "backup"))
        ran = ", ".join(f"{kind} {count}" for kind, count in run.worked.items())
        spans = (f"{run.task_runs} ({ran}) | {run.overhead:.1f} s ({run.overhead / run.wall:.0%})" if run.task_runs
                 else "- | -")  # the temporary server is gone with its run: nothing to read back
        lines.append(f"| {run.label} | {run.wall:.1f} s | {run.peak_mb:.0f} MiB | {phases} | {spans} |")
    lines += [
        "",
        f"The peer's first run: {peer['seconds']:.1f} s, of which fetching {peer['fetch_seconds']:.1f} s ({peer['requests']} "
        f"requests, {peer['rows']:,} rows loaded). Phases in seconds, from the run's progress lines. \"Task runs "
        "(ran)\" counts the run's task runs and, by the task name's first word, those that ran rather than "
        "came from the cache. \"Time no task body ran\" is the wall time of the `gridiron run` process minus "
        "the time in which at least one task run was between its start and end (Prefect API): process start-up "
        "and imports, flow and task orchestration, and the gaps between them.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
