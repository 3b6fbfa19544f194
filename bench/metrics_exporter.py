"""What `gridiron metrics` costs: the time of one scrape of a ten-season warehouse, the exporter's
resident memory, and how much a Prometheus scraping it every second slows a full run.
`gridiron run --full-refresh` on the bundled snapshot against a running Prefect server, alternately
without and with a scraper hitting /metrics every second. Figures go to BENCHMARKS.md.

    .venv/bin/python bench/metrics_exporter.py --repeat 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import write_section  # noqa: E402
from gridiron.runs import high_water_mb  # noqa: E402
from gridiron.testing.servers import PrefectServer, answers, free_port, stop_process_group, wait_for  # noqa: E402
from gridiron.testing.timing import GRIDIRON, gridiron_run  # noqa: E402

TARGET_SCRAPE_SECONDS, TARGET_RSS_MB, TARGET_SLOWDOWN = 0.100, 150, 0.02


def timed_run(env: dict) -> float:
    return gridiron_run(env, REPO, "--full-refresh", "--quiet").seconds


class Scraper(threading.Thread):
    """GET /metrics every second until stopped; keeps each scrape's time and status."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.times, self.codes = url, threading.Event(), [], []

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                response = client.get(self.url)
                self.times.append(time.perf_counter() - started)
                self.codes.append(response.status_code)
                self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - started)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridiron-metrics-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with PrefectServer(work / "prefect") as server:
        env = {**os.environ, **server.env, "GRIDIRON_HOME": str(work / "home")}
        timed_run(env)  # the ten-season warehouse
        exporter = subprocess.Popen([GRIDIRON, "metrics", "--port", str(port)], env=env, cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: answers(url, timeout=5), 60, "gridiron metrics")
            idle = []
            for _ in range(50):
                started = time.perf_counter()
                assert httpx.get(url, timeout=10).status_code == 200
                idle.append(time.perf_counter() - started)
            import psutil

            plain, scraped, busy, scrapes, cpu = [], [], [], [], []
            for _ in range(args.repeat):
                plain.append(timed_run(env))
                scraper = Scraper(url)
                before = sum(psutil.Process(exporter.pid).cpu_times()[:2])
                scraper.start()
                try:
                    scraped.append(timed_run(env))
                finally:
                    scraper.stop.set()
                    scraper.join(timeout=30)
                cpu.append(sum(psutil.Process(exporter.pid).cpu_times()[:2]) - before)
                scrapes += scraper.times
                busy.append(sum(code != 200 for code in scraper.codes))
            rss = high_water_mb(exporter.pid)
        finally:
            stop_process_group(exporter)
    idle_median, idle_p95 = statistics.median(idle), sorted(idle)[int(0.95 * len(idle)) - 1]
    a, b = statistics.median(plain), statistics.median(scraped)
    slowdown = (b - a) / a

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    body = [
        f"`.venv/bin/python bench/metrics_exporter.py --repeat {args.repeat}` ({os.cpu_count()} cores; the ten "
        "bundled seasons, `gridiron run --full-refresh` against a running Prefect server):", "",
        "| target | figure | |", "|---|---|---|",
        f"| one scrape of the ten-season warehouse <= {TARGET_SCRAPE_SECONDS * 1000:.0f} ms | median "
        f"{idle_median * 1000:.0f} ms, p95 {idle_p95 * 1000:.0f} ms (50 scrapes, no run) | "
        f"{verdict(idle_median <= TARGET_SCRAPE_SECONDS)} |",
        f"| the exporter's peak RSS <= {TARGET_RSS_MB} MB | {rss:.0f} MiB | {verdict(rss * 2**20 <= TARGET_RSS_MB * 1e6)} |",
        f"| a scrape every second slows a full run by <= {TARGET_SLOWDOWN:.0%} | {a:.1f} s without "
        f"({', '.join(f'{t:.1f}' for t in plain)}), {b:.1f} s with ({', '.join(f'{t:.1f}' for t in scraped)}): "
        f"{slowdown:+.1%} | {verdict(slowdown <= TARGET_SLOWDOWN)} |",
        "",
        f"During the runs: {len(scrapes)} scrapes, median {statistics.median(scrapes) * 1000:.0f} ms, slowest "
        f"{max(scrapes) * 1000:.0f} ms, every one answered 200 ({sum(busy)} non-200); the exporter used "
        f"{statistics.median(cpu):.2f} CPU-seconds per scraped run ({100 * statistics.median(cpu) / b:.1f}% of one core "
        "of the run's time), the part of the difference that is the exporter's own. While the run holds the "
        "warehouse a scrape does not wait on it: it serves the last figures read. Runs on this machine vary "
        "by a few percent from one to the next: read the difference with that in mind.", "",
    ]
    write_section("metrics-exporter", "Prometheus exporter (issue 32)", "\n".join(body))
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
