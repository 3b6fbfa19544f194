"""The pipeline's figures as Prometheus metrics: what `gridiron metrics` serves and a run pushes.

`warehouse_samples` reads one open (read-only) warehouse connection; `backup_samples` the backups'
manifests; `config_samples` the thresholds the alert rules (`ops/prometheus/alerts.yml`) compare
against, so the rules hold no number of their own. `families` turns samples into
`prometheus_client` metric families. Nothing here opens a file, serves or pushes: the exporter
(`cli/exporter.py`) and the run's push (`flows/pipeline.py`) do.

Names follow Prometheus' conventions: the `gridiron_` prefix, base units (seconds, bytes),
`_total` for counters, `_timestamp_seconds` for Unix times. No label holds anything unbounded (no
run id, no team) or secret: labels are a table name, a phase, a run status, a check name, a model
version (one series at a time: the champion's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gridiron.config import PipelineConfig
from gridiron.planning import SCHEDULE_DAYS
from gridiron.tables import TABLES

PHASES = ("collect", "process", "train", "load", "validate", "backup")
RUN_STATUSES = ("completed", "failed")


@dataclass(frozen=True)
class Sample:
    """One metric sample: the metric's name (counters without `_total`), type, help, labels, value."""

    name: str
    kind: str  # "gauge" or "counter"
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def _gauge(name: str, help: str, value: float | None, **labels: str) -> list[Sample]:
    return [] if value is None else [Sample(name, "gauge", help, float(value), labels)]


def _time(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def warehouse_samples(con: duckdb.DuckDBPyConnection) -> list[Sample]:
    """Runs, phases, quality, quarantine, quota, rows, the champion model and the health checks,
    from the warehouse (tables a migration has not made yet give no samples)."""
    samples: list[Sample] = []
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "pipeline_runs" not in tables:
        return samples
    counts = dict(con.execute("SELECT status, count(*) FROM pipeline_runs GROUP BY status").fetchall())
    for status in sorted(set(RUN_STATUSES) | set(counts)):
        samples.append(Sample("gridiron_runs", "counter", "Pipeline runs recorded, by how they ended.",
                              counts.get(status, 0), {"status": status}))
    last = con.execute("SELECT run_id, started_at, finished_at, status, duration_seconds, records_loaded, "
                       "peak_rss_mb FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchall()
    if last:
        run_id, started, finished, status, duration, loaded, peak = last[0]
        phases = con.execute("SELECT phase, duration_seconds, records FROM pipeline_run_phases WHERE run_id = ?",
                             [run_id]).fetchall()
        samples += last_run_samples(started, finished, status, duration, loaded, peak, phases)
        samples += _last_run_partitions(con, tables, run_id)
        samples += _quality(con, tables, run_id)
    success = con.execute("SELECT max(finished_at) FROM pipeline_runs WHERE status = 'completed'").fetchall()[0][0]
    samples += _gauge("gridiron_last_success_timestamp_seconds", "When the last completed run ended.", _time(success))
    samples += _calls(con)
    samples += _tables(con, tables)
    samples += _champion(con, tables)
    samples += _health(con, tables)
    return samples


def last_run_samples(started: datetime | None, finished: datetime | None, status: str, duration: float | None,
                     loaded: float | None, peak_mb: float | None, phases: Iterable[tuple]) -> list[Sample]:
    """The last run's figures: its times, whether it completed, its duration, records loaded, peak
    memory, and per phase (name, seconds, records) its time and records."""
    samples = _gauge("gridiron_last_run_start_timestamp_seconds", "When the last run started.", _time(started))
    samples += _gauge("gridiron_last_run_end_timestamp_seconds", "When the last run ended.", _time(finished))
    samples += _gauge("gridiron_last_run_success", "1 when the last run completed, 0 when it failed.",
                      1.0 if status == "completed" else 0.0)
    samples += _gauge("gridiron_last_run_duration_seconds", "The last run's wall time.", duration)
    samples += _gauge("gridiron_last_run_loaded_records", "Records the last run loaded.", loaded)
    samples += _gauge("gridiron_last_run_peak_memory_bytes", "The last run's peak resident memory.",
                      peak_mb * 2**20 if peak_mb is not None else None)
    for phase, seconds, records in phases:
        if phase in PHASES:
            samples += _gauge("gridiron_last_run_phase_duration_seconds", "The last run's time per phase.",
                              seconds, phase=phase)
            samples += _gauge("gridiron_last_run_phase_records", "Records per phase in the last run.",
                              records, phase=phase)
    return samples


def pushed_samples(summary: dict, phase_rows: Iterable[dict]) -> list[Sample]:
    """What a run pushes to the Pushgateway at its end, from its `pipeline_runs` row and its phases'
    rows (`RunTracker.summary()`, `.phase_rows()`): the last-run figures, and the last success's
    time when this run is one."""
    samples = last_run_samples(summary["started_at"], summary["finished_at"], summary["status"],
                               summary["duration_seconds"], summary["records_loaded"], summary["peak_rss_mb"],
                               [(r["phase"], r["duration_seconds"], r["records"]) for r in phase_rows])
    if summary["status"] == "completed":
        samples += _gauge("gridiron_last_success_timestamp_seconds", "When the last completed run ended.",
                          _time(summary["finished_at"]))
    return samples


def _last_run_partitions(con: duckdb.DuckDBPyConnection, tables: set[str], run_id: str) -> list[Sample]:
    samples = []
    if "raw_quarantine" in tables:
        (quarantined,), = con.execute("SELECT count(DISTINCT partition_key) FROM raw_quarantine WHERE run_id = ?",
                                      [run_id]).fetchall()
        samples += _gauge("gridiron_last_run_partitions_quarantined",
                          "Partitions the last run's quality gate quarantined.", quarantined)
    if "pipeline_run_errors" in tables:
        (carried,), = con.execute("SELECT count(DISTINCT partition_key) FROM pipeline_run_errors WHERE run_id = ? "
                                  "AND partition_key IS NOT NULL", [run_id]).fetchall()
        samples += _gauge("gridiron_last_run_partitions_carried_forward",
                          "Partitions the last run could not refresh and kept as the warehouse held them.", carried)
    return samples


def _quality(con: duckdb.DuckDBPyConnection, tables: set[str], run_id: str) -> list[Sample]:
    """The validate phase's scores of the last run that has them (a failed run may have none)."""
    if "quality_reports" not in tables:
        return []
    rows = con.execute(
        "SELECT table_name, score, threshold FROM quality_reports WHERE stage = 'validate' AND run_id = "
        "(SELECT run_id FROM quality_reports WHERE stage = 'validate' ORDER BY created_at DESC LIMIT 1)").fetchall()
    samples: list[Sample] = []
    for table, score, threshold in rows:
        name = "overall" if table == "overall" else table
        samples += _gauge("gridiron_data_quality_score", "Data quality score (0-1) per table, and overall.",
                          score, table=name)
        if name == "overall":
            samples += _gauge("gridiron_data_quality_threshold", "The quality score a run must reach.", threshold)
    return samples


def _calls(con: duckdb.DuckDBPyConnection) -> list[Sample]:
    # the fewest any fetch of the latest run that fetched reported: its fetches run concurrently, so
    # the last to be timed is not always the last the API answered
    rows = con.execute("SELECT min(calls_remaining) FROM raw_fetches WHERE calls_remaining IS NOT NULL AND run_id = "
                       "(SELECT run_id FROM raw_fetches WHERE calls_remaining IS NOT NULL "
                       "ORDER BY fetched_at DESC LIMIT 1)").fetchall()
    return _gauge("gridiron_cfbd_calls_remaining", "CFBD API calls left this month, as the API last said.",
                  rows[0][0] if rows else None)


def _tables(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Sample]:
    samples = []
    for name in TABLES:
        if name in tables:
            (rows,), = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()
            samples += _gauge("gridiron_table_rows", "Rows per warehouse table.", rows, table=name)
    return samples


def _champion(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Sample]:
    if "model_runs" not in tables:
        return []
    rows = con.execute("SELECT version, mae, brier, trained_at FROM model_runs WHERE is_promoted "
                       "ORDER BY trained_at DESC LIMIT 1").fetchall()
    if not rows:
        return []
    version, mae, brier, trained = rows[0]
    return (_gauge("gridiron_model_info", "The champion model; its version is the label.", 1, version=version)
            + _gauge("gridiron_model_backtest_mae_points", "The champion's backtest mean absolute error (points).", mae)
            + _gauge("gridiron_model_backtest_brier", "The champion's backtest Brier score.", brier)
            + _gauge("gridiron_model_trained_timestamp_seconds", "When the champion was trained.", _time(trained)))


def _health(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Sample]:
    if "health_checks" not in tables:
        return []
    rows = con.execute("SELECT name, healthy, checked_at FROM health_checks "
                       "QUALIFY row_number() OVER (PARTITION BY name ORDER BY checked_at DESC) = 1 "
                       "ORDER BY name").fetchall()
    samples: list[Sample] = []
    for name, healthy, checked in rows:
        samples += _gauge("gridiron_health_check_healthy", "1 when the health check last passed, 0 when not.",
                          1.0 if healthy else 0.0, check=name)
        samples += _gauge("gridiron_health_check_timestamp_seconds", "When the health check last ran.",
                          _time(checked), check=name)
    return samples


def backup_samples(backups: Iterable) -> list[Sample]:
    """The newest verified backup's time and size, and how many backups are kept (`BackupInfo`s)."""
    backups = list(backups)
    verified = [b for b in backups if b.verified]
    samples = _gauge("gridiron_backups", "Backups kept.", len(backups))
    if verified:
        newest = max(verified, key=lambda b: b.created_at)
        samples += _gauge("gridiron_backup_last_verified_timestamp_seconds",
                          "When the newest verified backup was made.", newest.created_at.timestamp())
        samples += _gauge("gridiron_backup_last_verified_size_bytes", "The newest verified backup's size.",
                          newest.size_bytes)
    return samples


def config_samples(config: PipelineConfig) -> list[Sample]:
    """The thresholds the alert rules compare against, from the config."""
    return (_gauge("gridiron_config_min_data_quality_score", "min_data_quality_score.", config.min_data_quality_score)
            + _gauge("gridiron_config_max_pipeline_duration_seconds", "max_pipeline_duration.",
                     config.max_pipeline_duration)
            + _gauge("gridiron_config_schedule_interval_seconds", "The schedule's interval (schedule_interval).",
                     SCHEDULE_DAYS[config.schedule_interval] * 86400)
            + _gauge("gridiron_config_cfbd_calls_reserve", "source.min_calls_reserve.", config.source.min_calls_reserve))


def file_samples(warehouse: Path) -> list[Sample]:
    """The warehouse file's size (with its write-ahead log)."""
    size = sum(p.stat().st_size for p in (warehouse, warehouse.with_name(warehouse.name + ".wal")) if p.exists())
    return _gauge("gridiron_warehouse_size_bytes", "The warehouse file's size, with its write-ahead log.",
                  size if warehouse.exists() else None)


def push(gateway: str, samples: Iterable[Sample], *, timeout: float, instance: str) -> None:
    """Replace the `job="gridiron", instance=...` group on the Pushgateway with `samples` (an HTTP
    PUT, so figures of an earlier run never linger beside this one's). Raises OSError when the
    gateway cannot be reached or refuses."""
    from prometheus_client import CollectorRegistry, push_to_gateway

    registry = CollectorRegistry(auto_describe=False)
    collected = list(families(samples))

    class _Samples:
        def collect(self):
            return collected

    registry.register(_Samples())
    push_to_gateway(gateway, job="gridiron", registry=registry, grouping_key={"instance": instance},
                    timeout=timeout)


def families(samples: Iterable[Sample]) -> Iterator[Metric]:
    """The samples as metric families, one per name, in the order the names first appear."""
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.name, []).append(sample)
    for name, group in grouped.items():
        first = group[0]
        labels = sorted(first.labels)
        kind = CounterMetricFamily if first.kind == "counter" else GaugeMetricFamily
        family = kind(name, first.help, labels=labels)
        for sample in group:
            family.add_metric([sample.labels[label] for label in labels], sample.value)
        yield family
