"""Prometheus: the exporter's figures, its behaviour under a run's lock, the alert rules (promtool),
the run's push to a Pushgateway, and a real Prometheus scraping a real run (Debian's prometheus and
prometheus-pushgateway, started on loopback as the PostgreSQL server is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridiron.testing.prometheus import ALERT_RULES, PrometheusServer, Pushgateway, prometheus_missing
from gridiron.testing.servers import answers, free_port, stop_process_group, wait_for
from tests.helpers import API_KEY, REPO, query, seed_monitored_warehouse, write_config

needs_prometheus = pytest.mark.skipif(prometheus_missing() is not None, reason=prometheus_missing() or "")
DASHBOARD = REPO / "ops" / "grafana" / "gridiron.json"
BOUNDED_LABELS = {"status", "phase", "table", "check", "version"}


def _scrape_text(config) -> str:
    from prometheus_client import generate_latest

    from cli.exporter import registry_for

    return generate_latest(registry_for(config)).decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Exporter:
    """`gridiron metrics` as its own process on a free loopback port."""

    def __init__(self, config_file: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.config_file, self.env = config_file, env or {}

    def __enter__(self) -> Exporter:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gridiron", "--config", str(self.config_file), "metrics", "--port", str(self.port)],
            cwd=REPO, env={**os.environ, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        wait_for(self._answers, 60, f"gridiron metrics on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gridiron metrics exited: {self.process.stdout.read()[-2000:]}")
        return answers(self.url, timeout=5)

    def scrape(self) -> str:
        response = httpx.get(self.url, timeout=10)
        assert response.status_code == 200
        return response.text

    def __exit__(self, *exc) -> None:
        stop_process_group(self.process)


@pytest.fixture
def seeded(tmp_path):
    home = tmp_path / "home"
    seed_monitored_warehouse(home)
    return write_config(tmp_path / "c.yaml", storage={"home": str(home)}, min_data_quality_score=0.8)


def test_the_exporter_serves_what_the_warehouse_recorded_with_bounded_labels(seeded, monkeypatch):
    """Against the seeded warehouse (three runs, the last completed; a quarantine; the calls left;
    health history; a promoted model), each figure is exactly what was recorded."""
    from gridiron.config import load_config

    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    text = _scrape_text(load_config(str(seeded)))
    got = _samples(text)
    assert got[("gridiron_runs_total", (("status", "completed"),))] == 2
    assert got[("gridiron_runs_total", (("status", "failed"),))] == 1
    assert got[("gridiron_last_run_success", ())] == 1.0
    assert got[("gridiron_last_run_duration_seconds", ())] == 22.0  # run-3: 20 + 2
    assert got[("gridiron_last_run_phase_duration_seconds", (("phase", "load"),))] == 4.0
    assert got[("gridiron_last_run_phase_records", (("phase", "train"),))] == 200
    assert got[("gridiron_data_quality_score", (("table", "overall"),))] == 0.85
    assert got[("gridiron_data_quality_score", (("table", "lines"),))] == 0.7
    assert got[("gridiron_data_quality_threshold", ())] == 0.8
    assert got[("gridiron_config_min_data_quality_score", ())] == 0.8
    assert got[("gridiron_cfbd_calls_remaining", ())] == 970  # the newest fetch's
    assert got[("gridiron_model_info", (("version", "m-1"),))] == 1.0
    assert got[("gridiron_model_backtest_mae_points", ())] == 12.9
    assert got[("gridiron_model_backtest_brier", ())] == 0.189
    assert got[("gridiron_last_run_partitions_quarantined", ())] == 0  # the quarantine was run-1's
    assert {labels for name, labels in got if name == "gridiron_health_check_healthy"} == {
        (("check", "cpu"),), (("check", "disk"),), (("check", "memory"),)}
    rows = query(seeded, "SELECT count(*) FROM games")[0][0]
    assert got[("gridiron_table_rows", (("table", "games"),))] == rows
    [(finished,)] = query(seeded, "SELECT max(finished_at) FROM pipeline_runs WHERE status = 'completed'")
    assert got[("gridiron_last_success_timestamp_seconds", ())] == pytest.approx(finished.timestamp(), abs=1e-6)
    assert got[("gridiron_warehouse_size_bytes", ())] == (seeded.parent / "home" / "gridiron.duckdb").stat().st_size
    assert got[("gridiron_exporter_warehouse_busy", ())] == 0.0
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("gridiron_"), family.name
        for sample in family.samples:
            assert set(sample.labels) <= BOUNDED_LABELS, sample
    assert API_KEY not in text


@needs_prometheus
def test_a_scrape_while_a_run_holds_the_warehouse_serves_the_last_figures_and_says_how_old(seeded):
    """The exporter never waits on a run: while another process holds the DuckDB file for writing,
    a scrape answers at once with the figures it read last, marked busy, with their age. The
    exposition passes `promtool check metrics`."""
    import duckdb

    with Exporter(seeded) as exporter:
        before = _samples(exporter.scrape())
        holder = duckdb.connect(str(seeded.parent / "home" / "gridiron.duckdb"))  # a run's write lock
        try:
            holder.execute("CREATE TABLE a_run_writing AS SELECT 1 AS x")  # the file changes under the lock
            time.sleep(0.01)  # the figures' age is measured from their read
            started = time.monotonic()
            during_text = exporter.scrape()
            took = time.monotonic() - started
        finally:
            holder.close()
        after = _samples(exporter.scrape())
    during = _samples(during_text)
    assert during[("gridiron_exporter_warehouse_busy", ())] == 1.0
    assert during[("gridiron_exporter_figures_age_seconds", ())] > 0
    assert took < 30  # answered, not hung behind the lock (it does not wait on it)
    for key in [("gridiron_runs_total", (("status", "completed"),)), ("gridiron_table_rows", (("table", "games"),)),
                ("gridiron_last_success_timestamp_seconds", ())]:
        assert during[key] == before[key]
    assert after[("gridiron_exporter_warehouse_busy", ())] == 0.0
    checked = subprocess.run(["promtool", "check", "metrics"], input=during_text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_scrape_reads_the_warehouse_again_only_when_the_file_changed(seeded):
    """An unchanged file is not opened again (its figures are current); a change is read."""
    from cli.exporter import PipelineCollector
    from gridiron.config import load_config
    from gridiron.storage import connect

    collector = PipelineCollector(load_config(str(seeded)))
    first = list(collector.collect())
    read_at = collector._read_at
    again = _samples_of(collector)
    assert collector._read_at == read_at and again[("gridiron_exporter_figures_age_seconds", ())] == 0.0
    with connect(seeded.parent / "home" / "gridiron.duckdb") as con:
        con.execute("UPDATE pipeline_runs SET duration_seconds = 99 WHERE run_id = 'run-3'")
    changed = _samples_of(collector)
    assert collector._read_at > read_at and first
    assert changed[("gridiron_last_run_duration_seconds", ())] == 99.0


def test_a_prefect_api_that_does_not_answer_is_a_gauge_not_a_failed_scrape(seeded):
    from cli.exporter import PipelineCollector
    from gridiron.config import load_config

    got = _samples_of(PipelineCollector(load_config(str(seeded)), f"http://127.0.0.1:{free_port()}/api"))
    assert got[("gridiron_prefect_api_up", ())] == 0.0
    assert ("gridiron_runs_running", ()) not in got and got[("gridiron_table_rows", (("table", "games"),))] > 0


def _samples_of(collector) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in collector.collect() for s in family.samples}


def test_metrics_refuses_a_port_in_use_in_one_line(seeded):
    import socket

    from tests.helpers import gridiron

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = gridiron("--config", str(seeded), "metrics", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"gridiron: metrics failed: cannot serve on 127.0.0.1:{port}: ")


@needs_prometheus
def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    """Each rule fires on the history it is for and stays silent on a healthy one (alerts_test.yml)."""
    checked = subprocess.run(["promtool", "check", "rules", str(ALERT_RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=ALERT_RULES.parent,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    names = {rule["alert"] for group in __import__("yaml").safe_load(ALERT_RULES.read_text())["groups"]
             for rule in group["rules"]}
    tests = (ALERT_RULES.parent / "alerts_test.yml").read_text()
    for name in names:  # every rule has a history on which it fires
        assert f"alertname: {name}\n        exp_alerts:\n          - exp_labels" in tests, name


@pytest.mark.flow
def test_an_unreachable_pushgateway_is_a_warning_and_the_run_completes(small_snapshot, prefect_server, tmp_path):
    from flows import ncaa_pipeline
    from gridiron.logs import log_path

    dead = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path / "push.yaml", source={"snapshot_dir": str(small_snapshot)},
                          storage={"home": str(tmp_path / "home")}, metrics={"pushgateway": dead, "push_timeout_seconds": 2})
    result = ncaa_pipeline(config_path=str(config))
    assert result.partitions_loaded
    text = log_path(tmp_path / "home").read_text()
    assert "WARNING" in text and f"could not push the run's metrics to the Pushgateway at {dead}" in text


@needs_prometheus
@pytest.mark.flow
def test_prometheus_scrapes_a_real_run_exactly_and_a_failed_run_fires_its_alert(
        prefect_server, small_snapshot, fake_cfbd, tmp_path, monkeypatch):
    """A real run over HTTP (the calls left come from the API), its push to a real Pushgateway, the
    exporter, and a real Prometheus scraping both: the rows, the status and the last success's time
    are exactly the warehouse's; every Grafana panel's query returns a series; then a failed run
    turns GridironRunFailed to firing."""
    import socket

    from prefect.settings import PREFECT_API_URL

    from flows import ncaa_pipeline
    from gridiron.config import load_config
    from gridiron.health import record_checks, run_checks

    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    with Pushgateway() as gateway:
        config = write_config(tmp_path / "c.yaml", storage={"home": str(tmp_path / "home")},
                              source={"http_max_attempts": 1}, max_retries=0, metrics={"pushgateway": gateway.url})
        ncaa_pipeline(config_path=str(config))
        record_checks(load_config(str(config)), run_checks(load_config(str(config)), prefect_api_url=None))
        with Exporter(config, {"PREFECT_API_URL": PREFECT_API_URL.value()}) as exporter, \
                PrometheusServer([f"127.0.0.1:{exporter.port}", f"127.0.0.1:{gateway.port}"], honor_labels=True) as prom:
            moment = time.time()
            wait_for(lambda: prom.scraped_after(moment), 60, "Prometheus to scrape the exporter and the gateway")
            wait_for(lambda: prom.query("count_over_time(gridiron_last_run_success[5m]) >= 3"), 60,
                     "three scrapes (a rate needs two)")
            ours, pushed = f'instance="127.0.0.1:{exporter.port}"', f'instance="{socket.gethostname()}"'
            [(games,)] = query(config, "SELECT count(*) FROM games")
            [(finished,)] = query(config, "SELECT finished_at FROM pipeline_runs WHERE status = 'completed'")
            assert prom.value(f'gridiron_table_rows{{table="games",{ours}}}') == games
            assert prom.value(f'gridiron_runs_total{{status="completed",{ours}}}') == 1
            assert prom.value(f'gridiron_runs_total{{status="failed",{ours}}}') == 0
            assert prom.value(f"gridiron_last_success_timestamp_seconds{{{ours}}}") == pytest.approx(finished.timestamp(), abs=1e-3)
            assert prom.value(f"gridiron_last_success_timestamp_seconds{{{pushed}}}") == pytest.approx(finished.timestamp(), abs=1e-3)
            assert prom.value(f"gridiron_last_run_success{{{pushed}}}") == 1
            assert prom.value(f"gridiron_cfbd_calls_remaining{{{ours}}}") == fake_cfbd.calls_remaining
            assert prom.value(f"gridiron_prefect_api_up{{{ours}}}") == 1
            panels = json.loads(DASHBOARD.read_text())["panels"]
            assert len(panels) >= 12
            for panel in panels:
                for target in panel["targets"]:
                    assert prom.query(target["expr"]), f"{panel['title']}: {target['expr']} gives no series"
            assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "GridironRunFailed"]

            monkeypatch.setenv("CFBD_BASE_URL", f"http://127.0.0.1:{free_port()}")  # the API is gone
            with pytest.raises(Exception):  # noqa: B017 - how it fails is other tests' business
                ncaa_pipeline(config_path=str(config), full_refresh=True)
            wait_for(lambda: [a for a in prom.alerts() if a["labels"]["alertname"] == "GridironRunFailed"], 60,
                     "GridironRunFailed to fire")
            # the exporter's and the gateway's figures change at their next scrapes, in either order
            wait_for(lambda: prom.value(f"gridiron_last_run_success{{{pushed}}}") == 0, 60, "the failed run's push")
            wait_for(lambda: prom.value(f'gridiron_runs_total{{status="failed",{ours}}}') == 1, 60,
                     "the exporter to count the failed run")
            assert prom.value(f'gridiron_runs_total{{status="completed",{ours}}}') == 1
