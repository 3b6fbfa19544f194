"""How much a dashboard left open slows a run: `gridiron run --full-refresh` on the bundled snapshot
(ten seasons) against a running Prefect server, alternately without and with `gridiron monitor`
open in headless chromium, refreshing every second. Figures go to BENCHMARKS.md.

    .venv/bin/python bench/monitor_overhead.py --repeat 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import write_section  # noqa: E402
from gridiron.testing.servers import MonitorServer, PrefectServer, browser_page  # noqa: E402
from gridiron.testing.timing import gridiron_run  # noqa: E402


def timed_run(env: dict) -> float:
    return gridiron_run(env, REPO, "--full-refresh", "--quiet").seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright


    work = Path(tempfile.mkdtemp(prefix="gridiron-monitor-bench-"))
    with PrefectServer(work / "prefect") as server:
        env = {**os.environ, **server.env, "GRIDIRON_HOME": str(work / "home")}
        timed_run(env)  # warm: the warehouse exists, caches are filled
        plain, watched, server_cpu = [], [], []
        for _ in range(args.repeat):
            plain.append(timed_run(env))
            monitor = MonitorServer(work / "home", refresh=1.0, env=server.env, cwd=REPO)
            stop, polls = threading.Event(), []

            def watch(monitor=monitor, stop=stop, polls=polls):
                with sync_playwright() as p:
                    browser, page = browser_page(p)
                    page.goto(monitor.url)
                    while not stop.is_set():
                        polls.append(len(page.inner_text("body")))
                        time.sleep(1)
                    browser.close()

            thread = threading.Thread(target=watch)
            thread.start()
            time.sleep(3)
            import psutil

            dashboard = psutil.Process(monitor.process.pid)
            before = sum(dashboard.cpu_times()[:2])
            try:
                watched.append(timed_run(env))
                server_cpu.append(sum(dashboard.cpu_times()[:2]) - before)
            finally:
                stop.set()
                thread.join(timeout=60)
                monitor.stop()
    a, b = statistics.median(plain), statistics.median(watched)
    body = [
        f"`.venv/bin/python bench/monitor_overhead.py --repeat {args.repeat}` ({os.cpu_count()} cores; "
        "`gridiron run --full-refresh` of the ten bundled seasons against a running Prefect server):", "",
        "| | median | runs |", "|---|---|---|",
        f"| no dashboard | {a:.1f} s | {', '.join(f'{t:.1f}' for t in plain)} |",
        f"| dashboard open, refreshing every second | {b:.1f} s | {', '.join(f'{t:.1f}' for t in watched)} |",
        "", f"Difference: {100 * (b - a) / a:+.1f}%. Here the browser (headless chromium; the live panel redrawn "
        "every second, the charts only when the warehouse changed) shares the machine's 2 cores with the run; "
        "the dashboard's server process itself "
        f"used {statistics.median(server_cpu):.1f} CPU-seconds during a run of {b:.0f} s "
        f"({100 * statistics.median(server_cpu) / b:.0f}% of one core). With the browser on another machine, "
        "that is what the pipeline's host pays. Runs on this machine vary by several seconds from one to the "
        "next: read the difference with that in mind.", "",
    ]
    write_section("monitor-overhead", "Dashboard open during a run", "\n".join(body))
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
