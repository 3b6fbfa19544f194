"""`gridiron metrics`: a Prometheus scrape endpoint for the pipeline (`/metrics`, text format).

A scrape reads the warehouse again only when the file changed since its last read (its size and
time, with the write-ahead log's), read-only for the moment of its queries, as the dashboard does,
and gives up at once when a run holds the file: it then serves the figures it read last, and
`gridiron_exporter_figures_age_seconds` says how old they are. The exporter so never blocks a run.
With PREFECT_API_URL set it also reads the running pipeline runs from the Prefect API, at most
every PREFECT_READ_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from gridiron.config import PipelineConfig
from gridiron.metrics import Sample, backup_samples, config_samples, families, file_samples, warehouse_samples
from gridiron.storage import WarehouseBusy, connect, list_backups

log = logging.getLogger(__name__)
PIPELINE_FLOW = "ncaa-pipeline"
PREFECT_READ_SECONDS = 5.0  # the Prefect API is asked at most this often, however often Prometheus scrapes


def _file_state(path: Path) -> tuple | None:
    """(size, mtime) of the warehouse file and its write-ahead log: what changes when a run writes."""
    wal = path.with_name(path.name + ".wal")
    try:
        return tuple((s.st_size, s.st_mtime_ns) for s in [path.stat(), *([wal.stat()] if wal.exists() else [])])
    except OSError:
        return None


def running_pipeline_runs(api_url: str) -> tuple[str | None, list[datetime | None]]:
    """(why the Prefect API could not be read, or None; the start times of the running
    `ncaa-pipeline` runs), from its REST API directly: Prefect's client would cost the exporter
    about 100 MiB of imports for one query."""
    body = {"flows": {"name": {"any_": [PIPELINE_FLOW]}},
            "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 200}
    try:
        response = httpx.post(f"{api_url.rstrip('/')}/flow_runs/filter", json=body, timeout=5.0)
        response.raise_for_status()
        runs = response.json()
    except (httpx.HTTPError, ValueError) as error:
        return f"the Prefect API at {api_url} does not answer: {str(error).splitlines()[0][:160]}", []
    return None, [datetime.fromisoformat(run["start_time"]) if run.get("start_time") else None for run in runs]


class PipelineCollector:
    """A `prometheus_client` collector: the pipeline's figures, read on each scrape."""

    def __init__(self, config: PipelineConfig, prefect_api_url: str | None = None):
        self.config = config
        self.prefect_api_url = prefect_api_url
        self._lock = threading.Lock()  # scrapes may overlap; one reads the warehouse at a time
        self._last: list[Sample] = []
        self._read_at: float | None = None  # time.time() of the figures in _last
        self._read_state: tuple | None = None  # the file's state they were read from
        self._prefect: tuple[float, list[Sample]] = (float("-inf"), [])
        self.busy_scrapes = 0

    def _read_warehouse(self) -> tuple[list[Sample], bool]:
        """(the warehouse's samples, whether they are current): read again only when the file
        changed since the last read; the last ones, not current, when a run holds it now."""
        path = self.config.warehouse_path
        state = _file_state(path)
        if state is None:
            return [], True
        if state == self._read_state:
            return self._last, True
        try:
            with connect(path, read_only=True, wait_seconds=0) as con:  # a run holding it is never waited on
                self._last = warehouse_samples(con)
            self._read_at, self._read_state = time.time(), state
            return self._last, True
        except WarehouseBusy:
            self.busy_scrapes += 1
            return self._last, False

    def _prefect_samples(self) -> list[Sample]:
        if not self.prefect_api_url:
            return []
        read_at, samples = self._prefect
        if time.monotonic() - read_at < PREFECT_READ_SECONDS:
            return samples
        problem, started = running_pipeline_runs(self.prefect_api_url)
        up = Sample("gridiron_prefect_api_up", "gauge", "1 when the Prefect API answered its last read.",
                    0.0 if problem else 1.0)
        if problem:
            log.warning("gridiron metrics: %s", problem)
            samples = [up]
        else:
            now = datetime.now(UTC)
            stuck = [at for at in started if at and (now - at).total_seconds() > self.config.max_pipeline_duration]
            samples = [up,
                       Sample("gridiron_runs_running", "gauge", "Pipeline runs Prefect reports as running.",
                              len(started)),
                       Sample("gridiron_runs_stuck", "gauge", "Running pipeline runs older than max_pipeline_duration.",
                              len(stuck))]
        self._prefect = (time.monotonic(), samples)
        return samples

    def collect(self):
        """The metric families of one scrape."""
        started = time.perf_counter()
        with self._lock:
            stored, fresh = self._read_warehouse()
        samples = [*stored, *file_samples(self.config.warehouse_path),
                   *backup_samples(list_backups(self.config.home / "backups")),
                   *config_samples(self.config), *self._prefect_samples()]
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
