"""`gridiron metrics`: a Prometheus scrape endpoint for the pipeline (`/metrics`, text format).

Each scrape reads the warehouse read-only for the moment of its queries, as the dashboard does, and
gives up at once when a run holds the file: it then serves the figures it read last, and
`gridiron_exporter_figures_age_seconds` says how old they are. The exporter so never blocks a run.
With PREFECT_API_URL set it also reads the running pipeline runs from the Prefect API.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from gridiron.config import PipelineConfig
from gridiron.metrics import Sample, backup_samples, config_samples, families, file_samples, warehouse_samples
from gridiron.storage import WarehouseBusy, connect, list_backups

log = logging.getLogger(__name__)
READ_WAIT_SECONDS = 0.2  # a run holding the file is not waited for: the last figures are served


class PipelineCollector:
    """A `prometheus_client` collector: the pipeline's figures, read on each scrape."""

    def __init__(self, config: PipelineConfig, prefect_api_url: str | None = None):
        self.config = config
        self.prefect_api_url = prefect_api_url
        self._lock = threading.Lock()  # scrapes may overlap; one reads the warehouse at a time
        self._last: list[Sample] = []
        self._read_at: float | None = None  # time.time() of the figures in _last
        self.busy_scrapes = 0

    def _read_warehouse(self) -> tuple[list[Sample], bool]:
        """(the warehouse's samples, whether they are fresh): the last ones when the file is busy."""
        path = self.config.warehouse_path
        if not path.exists():
            return [], True
        try:
            with connect(path, read_only=True, wait_seconds=READ_WAIT_SECONDS) as con:
                self._last, self._read_at = warehouse_samples(con), time.time()
            return self._last, True
        except WarehouseBusy:
            self.busy_scrapes += 1
            return self._last, False

    def _prefect(self) -> list[Sample]:
        if not self.prefect_api_url:
            return []
        from cli.monitor.data import read_prefect

        view = read_prefect(self.prefect_api_url)
        up = Sample("gridiron_prefect_api_up", "gauge", "1 when the Prefect API answered this scrape.",
                    0.0 if view.problem else 1.0)
        if view.problem:
            return [up]
        now = datetime.now(UTC)
        limit = self.config.max_pipeline_duration
        stuck = [run for run in view.running if run.started_at and (now - run.started_at).total_seconds() > limit]
        return [up,
                Sample("gridiron_runs_running", "gauge", "Pipeline runs Prefect reports as running.", len(view.running)),
                Sample("gridiron_runs_stuck", "gauge", "Running pipeline runs older than max_pipeline_duration.",
                       len(stuck))]

    def collect(self):
        """The metric families of one scrape."""
        started = time.perf_counter()
        with self._lock:
            stored, fresh = self._read_warehouse()
        samples = [*stored, *file_samples(self.config.warehouse_path),
                   *backup_samples(list_backups(self.config.home / "backups")),
                   *config_samples(self.config), *self._prefect()]
        yield from families(samples)
        busy = GaugeMetricFamily("gridiron_exporter_warehouse_busy",
                                 "1 when a run held the warehouse at this scrape (the figures are the last read).")
        busy.add_metric([], 0.0 if fresh else 1.0)
        yield busy
        if self._read_at is not None:
            age = GaugeMetricFamily("gridiron_exporter_figures_age_seconds",
                                    "How old the warehouse figures served are (0 when read at this scrape).")
            age.add_metric([], 0.0 if fresh else time.time() - self._read_at)
            yield age
        took = GaugeMetricFamily("gridiron_exporter_scrape_duration_seconds", "How long this scrape's reads took.")
        took.add_metric([], time.perf_counter() - started)
        yield took


def registry_for(config: PipelineConfig, prefect_api_url: str | None = None) -> CollectorRegistry:
    """A registry holding only the pipeline's collector (no process or Python metrics of the exporter)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(config, prefect_api_url))
    return registry


def serve(config: PipelineConfig, host: str, port: int, prefect_api_url: str | None = None) -> None:
    """Serve /metrics on host:port until the process is stopped."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry_for(config, prefect_api_url))
    print(f"gridiron metrics: serving http://{host}:{server.server_port}/metrics", flush=True)
    try:
        thread.join()
    finally:
        server.shutdown()
