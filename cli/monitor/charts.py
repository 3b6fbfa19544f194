"""The dashboard's charts: Altair specs built from the warehouse's frames (pure functions)."""

from __future__ import annotations

import json

import altair as alt
import polars as pl

STATUS_COLORS = alt.Scale(domain=["completed", "failed", "refused", "running"],
                          range=["#2e7d32", "#c62828", "#ef6c00", "#1565c0"])


def _data(frame: pl.DataFrame) -> alt.Data:
    """Frames go to Vega as plain rows (timestamps as ISO text)."""
    rows = frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dicts()
    return alt.Data(values=rows)


def runs_over_time(runs: pl.DataFrame) -> alt.Chart:
    """Each run's duration by its start, coloured by status."""
    return alt.Chart(_data(runs), title="Runs over time").mark_circle(size=90).encode(
        x=alt.X("started_at:T", title="started"), y=alt.Y("duration_seconds:Q", title="duration (s)"),
        color=alt.Color("status:N", scale=STATUS_COLORS), tooltip=["flow_run_name:N", "status:N", "duration_seconds:Q", "error:N"])


def phase_durations(phases: pl.DataFrame) -> alt.Chart:
    """Each run's phases as stacked bars of their durations."""
    return alt.Chart(_data(phases), title="Duration per phase").mark_bar().encode(
        x=alt.X("yearmonthdatehoursminutes(run_started_at):O", title="run (start)", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("sum(duration_seconds):Q", title="seconds", stack=True),
        color=alt.Color("phase:N", sort=["collect", "process", "train", "load", "validate", "backup"]),
        tooltip=["phase:N", "duration_seconds:Q", "records:Q", "status:N"])


def records_per_run(runs: pl.DataFrame) -> alt.Chart:
    """Records collected, processed and loaded per run."""
    long = runs.select("started_at", "records_collected", "records_processed", "records_loaded").unpivot(
        index="started_at", variable_name="records", value_name="count")
    return alt.Chart(_data(long), title="Records per run").mark_line(point=True).encode(
        x=alt.X("started_at:T", title="run"), y=alt.Y("count:Q", title="records"), color=alt.Color("records:N"),
        tooltip=["records:N", "count:Q"])


def quality_over_time(quality: pl.DataFrame) -> alt.LayerChart:
    """Each table's quality score per run, with the threshold."""
    threshold = float(quality["threshold"].max()) if quality.height else 0.8
    lines = alt.Chart(_data(quality), title="Quality score per table (validate)").mark_line(point=True).encode(
        x=alt.X("created_at:T", title="run"), y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("table_name:N", title="table"), tooltip=["table_name:N", "score:Q", "passed:N"])
    rule = alt.Chart(alt.Data(values=[{"threshold": threshold}])).mark_rule(color="#c62828", strokeDash=[6, 3]).encode(
        y="threshold:Q")
    return lines + rule


def calls_remaining(calls: pl.DataFrame) -> alt.Chart:
    """The CFBD calls left this month after each fetch."""
    return alt.Chart(_data(calls), title="CFBD calls remaining this month").mark_line(point=True).encode(
        x=alt.X("fetched_at:T", title="fetched"), y=alt.Y("calls_remaining:Q", title="calls left"))


def system_history(health: pl.DataFrame, limits: dict[str, float]) -> alt.LayerChart:
    """CPU, memory and disk use from the health checks, with their limits."""
    usage = health.filter(pl.col("name").is_in(list(limits)))
    lines = alt.Chart(_data(usage), title="CPU, memory and disk (health checks)").mark_line(point=True).encode(
        x=alt.X("checked_at:T", title="checked"), y=alt.Y("value:Q", title="% used", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("name:N", title="resource"))
    rules = alt.Chart(alt.Data(values=[{"name": n, "limit": v} for n, v in limits.items()])).mark_rule(
        strokeDash=[6, 3]).encode(y="limit:Q", color=alt.Color("name:N"))
    return lines + rules


def calibration(bins: list[dict]) -> alt.LayerChart:
    """Predicted home-win probability against the observed share, per bin."""
    points = alt.Chart(alt.Data(values=bins), title="Calibration: predicted home-win probability vs observed").mark_line(
        point=True).encode(x=alt.X("predicted:Q", scale=alt.Scale(domain=[0, 1])),
                           y=alt.Y("observed:Q", scale=alt.Scale(domain=[0, 1])), tooltip=["bin:N", "games:Q", "observed:Q"])
    diagonal = alt.Chart(alt.Data(values=[{"p": 0}, {"p": 1}])).mark_line(color="#999", strokeDash=[4, 4]).encode(
        x="p:Q", y="p:Q")
    return points + diagonal


def model_quality(models: pl.DataFrame) -> alt.Chart:
    """Backtest metrics per model version beside the Vegas and Elo baselines of the same backtest."""
    rows = []
    for model in models.iter_rows(named=True):
        report = json.loads(model["metrics"] or "{}")
        for who, metrics in [("model", report.get("model") or {})] + list((report.get("baselines") or {}).items()):
            if who in ("model", "vegas", "elo") and metrics:
                rows.append({"version": model["version"], "who": who, "straight_up": metrics.get("su_accuracy"),
                             "mae": metrics.get("mae"), "brier": metrics.get("brier")})
    return alt.Chart(alt.Data(values=rows), title="Backtest: straight-up accuracy per model version").mark_bar().encode(
        x=alt.X("version:N", title="model version"), xOffset="who:N", y=alt.Y("straight_up:Q", title="straight up"),
        color=alt.Color("who:N", title=""), tooltip=["who:N", "straight_up:Q", "mae:Q", "brier:Q"])
