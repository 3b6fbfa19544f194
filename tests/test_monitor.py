"""The dashboard: its logic with Streamlit's AppTest, and the served app in a real (headless,
system) chromium; a dashboard polling every second while a full pipeline run completes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from cli.commands import COMMANDS
from gridiron.testing.servers import CHROMIUM, MonitorServer, browser_page
from tests.helpers import REPO, seed_monitored_warehouse

APP = REPO / "cli" / "monitor" / "app.py"


def app_test(monkeypatch, home: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GRIDIRON_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_pipeline_page_shows_runs_errors_quality_and_system(tmp_path, monkeypatch):
    seed_monitored_warehouse(tmp_path / "home")
    at = app_test(monkeypatch, tmp_path / "home")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["success rate"] == "67% of 3 runs"
    assert metrics["average duration"] == "21.0 s" and metrics["records processed (all runs)"] == "66,810"
    assert metrics["backups"] == "0 (0.0 MB)"
    assert len(at.get("vega_lite_chart")) >= 9  # 6 pipeline charts and the system history; model, calibration
    errors = [e.value for e in at.error]
    assert any("lines/2023 · run seeded-run-2 · **not resolved**" in e and "server error (HTTP 503)" in e for e in errors)
    assert any("the run · run seeded-run-2" in e for e in errors)
    assert [w.value for w in at.warning] == [
        "PREFECT_API_URL is not set: live run state needs a running Prefect server"]


def test_the_analytics_page_shows_standings_predictions_and_model_quality(tmp_path, monkeypatch):
    seed_monitored_warehouse(tmp_path / "home")
    at = app_test(monkeypatch, tmp_path / "home")
    frames = [d.value for d in at.dataframe]
    standings, upcoming = frames[0], frames[1]
    ledger = next(f for f in frames if "the line" in f.columns)
    assert set(standings["conference"]) == {"ACC"} and standings["season"].unique().tolist() == [2023]
    week = upcoming.iloc[0]["week"]  # next week: the soonest game's week, with the pick and its probability
    assert 1 <= len(upcoming) <= 3 and set(upcoming["week"]) == {week}
    assert upcoming.iloc[0]["pick"].endswith(" by 3.5") and set(upcoming["win probability"]) == {"62%"}
    captions = " ".join(c.value for c in at.caption)
    assert "kickoff times in UTC" in captions and "15 game(s) past kickoff have no result yet" in captions
    assert list(ledger["week"]) == ["2023 week 2", "2023 week 1"] and list(ledger["games"]) == [1, 1]
    at.multiselect(key="conferences").set_value(["Big Ten"]).run()
    standings = at.dataframe[0].value
    assert standings.iloc[0]["team"] == "Michigan" and standings.iloc[0]["wins"] == 15


def test_before_the_first_run_the_page_says_what_to_do(tmp_path, monkeypatch):
    at = app_test(monkeypatch, tmp_path / "nothing")
    assert f"no warehouse at {tmp_path / 'nothing' / 'gridiron.duckdb'} yet" in " ".join(w.value for w in at.warning)
    assert any("No runs recorded yet" in i.value for i in at.info)


def test_while_a_run_holds_the_warehouse_the_last_figures_stay_up_marked_as_such(tmp_path, monkeypatch):
    seed_monitored_warehouse(tmp_path / "home")
    at = app_test(monkeypatch, tmp_path / "home")
    holder = subprocess.Popen(  # another process writes the file and keeps it open, as a run does
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "c.execute('CREATE TABLE held (i INT)'); c.execute('CHECKPOINT'); print('held', flush=True); sys.stdin.read()",
         str(tmp_path / "home" / "gridiron.duckdb")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        at.run()
        assert not at.exception, at.exception
        notes = [w.value for w in at.warning]
        assert any(n.startswith("the warehouse is busy (a run is writing it): the figures below were read at ")
                   for n in notes), notes
        assert {m.label: m.value for m in at.metric}["success rate"] == "67% of 3 runs"
    finally:
        holder.communicate("", timeout=30)
    deadline = time.monotonic() + 60  # the dashboard tries a busy file again after 5 s: wait for that read
    while any("busy" in w.value for w in at.warning) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert not any("busy" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["success rate"] == "67% of 3 runs"


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs Debian's as root)")


@needs_chromium
def test_a_real_browser_renders_the_status_charts_and_latest_error(tmp_path):
    from playwright.sync_api import sync_playwright

    seed_monitored_warehouse(tmp_path / "home")
    monitor = MonitorServer(tmp_path / "home", cwd=REPO)
    try:
        with sync_playwright() as p:
            browser, page = browser_page(p)
            page.goto(monitor.url)
            page.get_by_text("live run state needs a running Prefect server", exact=False).wait_for(timeout=60_000)
            page.get_by_text("success rate").wait_for(timeout=60_000)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
                                   "[data-testid=\"stVegaLiteChart\"] svg').length >= 3", timeout=60_000)
            page.get_by_text("gave up after 4 requests", exact=False).first.wait_for(timeout=30_000)
            charts = page.locator('[data-testid="stVegaLiteChart"]').count()
            page.screenshot(path=str(tmp_path / "monitor.png"), full_page=True)
            browser.close()
    finally:
        monitor.stop()
    assert charts >= 5
    assert (tmp_path / "monitor.png").stat().st_size > 20_000  # kept under the test's tmp dir


def test_the_monitor_binds_loopback_unless_told_and_refuses_a_busy_port(tmp_path):
    from tests.helpers import gridiron

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = gridiron("monitor", "--port", str(port), env={"GRIDIRON_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == f"gridiron: monitor failed: cannot serve on 127.0.0.1:{port}: Address already in use"
    assert "--host HOST" in gridiron("monitor", "--help").stdout and "(default 127.0.0.1: this machine only)" in gridiron("monitor", "--help").stdout


@needs_chromium
@pytest.mark.flow
@pytest.mark.usefixtures("prefect_server")
def test_a_dashboard_polling_every_second_never_gets_in_the_way_of_a_run(config_file, tmp_path):
    from playwright.sync_api import sync_playwright
    from prefect.settings import PREFECT_API_URL

    from flows import ncaa_pipeline

    home = Path(yaml.safe_load(config_file.read_text())["storage"]["home"])
    first = ncaa_pipeline(config_path=str(config_file))  # a warehouse to show
    monitor = MonitorServer(home, refresh=1.0, env={"PREFECT_API_URL": PREFECT_API_URL.value()}, cwd=REPO)
    seen: list[str] = []
    stop = threading.Event()

    def watch():
        with sync_playwright() as p:
            browser, page = browser_page(p)
            page.goto(monitor.url)
            while not stop.is_set():
                seen.append(page.inner_text("body")[:2000])
                time.sleep(0.5)
            browser.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        deadline = time.monotonic() + 90  # the page is up and showing the first run before the second starts
        while time.monotonic() < deadline and not any("100% of 1 runs" in text for text in seen[-3:]):
            time.sleep(0.5)
        state = ncaa_pipeline(config_path=str(config_file), full_refresh=True, return_state=True)
        deadline = time.monotonic() + 60  # the page redraws its history on its own once the file changed
        while time.monotonic() < deadline and not any("100% of 2 runs" in text for text in seen[-3:]):
            time.sleep(0.5)
    finally:
        stop.set()
        watcher.join(timeout=60)
        monitor.stop()
    assert state.is_completed(), state.message
    assert state.result().rows_by_table["games"] == first.rows_by_table["games"] == 7439
    assert any("gridiron monitor" in text for text in seen) and not any("Traceback" in text for text in seen)
    assert any("Running" in text and "phase" in text for text in seen), seen[-5:]  # live, from the Prefect API
    assert "100% of 2 runs" in seen[-1], seen[-1]  # the run's record appeared without a page reload


@pytest.mark.parametrize("command", [name for name in COMMANDS if name != "help"])
def test_every_command_has_help(command):
    from tests.helpers import gridiron

    done = gridiron(command, "--help")
    assert done.returncode == 0 and COMMANDS[command].help.split(";")[0][:40] in " ".join(done.stdout.split())
