"""The gridiron dashboard (Streamlit): `gridiron monitor` serves it on http://127.0.0.1:8505.

Run by `streamlit run cli/monitor/app.py -- [--config FILE]`; it refreshes itself (fragments with
`run_every`, no page reloads) every GRIDIRON_MONITOR_REFRESH seconds (default 5).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import polars as pl
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # streamlit runs this file as a script

from cli.monitor import charts  # noqa: E402
from cli.monitor.data import read_prefect, read_system, read_warehouse  # noqa: E402
from gridiron.config import ConfigError, load_config  # noqa: E402

REFRESH = float(os.environ.get("GRIDIRON_MONITOR_REFRESH", "5"))


def _config():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    args, _ = parser.parse_known_args()
    return load_config(args.config)


def _stamp(config) -> tuple:
    """Changes whenever the warehouse file (or its write-ahead log) does."""
    files = (config.warehouse_path, config.warehouse_path.with_name(config.warehouse_path.name + ".wal"))
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None for f in files)


def _frames(config) -> tuple[dict[str, pl.DataFrame], str | None]:
    """This read's frames, or the last ones read (with a note) when the warehouse cannot be read now.
    An unchanged file is not read again: a dashboard left open costs the run next to nothing."""
    stamp = _stamp(config)
    last = st.session_state.get("last")
    if last is not None and st.session_state.get("stamp") == stamp:
        return last.frames, None
    view = read_warehouse(config)
    if view.read_at is not None:
        st.session_state["last"], st.session_state["stamp"] = view, stamp
        return view.frames, None
    last = st.session_state.get("last")
    if last is not None:
        return last.frames, f"{view.problem}: the figures below were read at {last.read_at:%H:%M:%S} UTC"
    return {}, view.problem


def _chart(where, name: str, build, *frames) -> None:
    """Draw a chart, its Vega-Lite spec built (and validated) once per state of the warehouse:
    redrawing an unchanged chart every second costs next to nothing."""
    specs = st.session_state.setdefault("specs", {})
    key = (name, st.session_state.get("stamp"))
    if key not in specs:
        for old in [k for k in specs if k[1] != key[1]]:  # the warehouse moved on: drop its old specs
            del specs[old]
        specs[key] = build(*frames).to_dict()
    where.vega_lite_chart(spec=specs[key], use_container_width=True)


def pipeline_page(config) -> None:
    live = read_prefect(os.environ.get("PREFECT_API_URL"))
    frames, note = _frames(config)
    st.subheader("Now")
    if live.problem:
        st.warning(live.problem)
    elif live.running:
        for run in live.running:
            progress = f", {run.tasks_done}/{run.tasks_total} tasks" if run.tasks_total else ""
            link = live.run_link(run.run_id)
            st.info(f"**Running**: {run.name}, phase **{run.phase or 'starting'}**{progress}"
                    + (f" ([open in Prefect]({link}))" if link else ""))
    else:
        st.success("No pipeline run is running.")
    cols = st.columns(3)
    cols[0].metric("last result", f"{live.last_state or '-'}", live.last_name or None, delta_color="off")
    cols[1].metric("next scheduled run (UTC)",
                   f"{live.next_scheduled:%Y-%m-%d %H:%M}" if live.next_scheduled else "not scheduled")
    if note:
        st.warning(note)
    runs = frames.get("runs", pl.DataFrame())
    if runs.is_empty():
        st.info("No runs recorded yet. Run `gridiron run` (or `gridiron schedule`) and this page fills in.")
        return
    finished = runs.filter(pl.col("status").is_in(["completed", "failed"]))
    rate = (finished["status"] == "completed").mean() if finished.height else 0.0
    cols[2].metric("success rate", f"{100 * rate:.0f}% of {finished.height} runs")
    more = st.columns(3)
    more[0].metric("average duration", f"{runs['duration_seconds'].mean() or 0:.1f} s")
    more[1].metric("records processed (all runs)", f"{int(runs['records_processed'].fill_null(0).sum()):,}")
    more[2].metric("records loaded (last run)", f"{int(runs['records_loaded'].fill_null(0)[-1]):,}")

    left, right = st.columns(2)
    _chart(left, "runs", charts.runs_over_time, runs)
    _chart(right, "phases", charts.phase_durations, frames["phases"])
    _chart(left, "records", charts.records_per_run, runs)
    if not frames["quality"].is_empty():
        _chart(right, "quality", charts.quality_over_time, frames["quality"])
    if not frames["calls"].is_empty():
        _chart(left, "calls", charts.calls_remaining, frames["calls"])

    st.subheader("Errors")
    counts = runs.select("flow_run_name", "status", pl.col("warnings").fill_null(0), pl.col("errors").fill_null(0))
    st.bar_chart(counts.to_pandas().set_index("flow_run_name")[["warnings", "errors"]], height=180)
    errors = frames["errors"]
    if errors.is_empty():
        st.success("No errors recorded.")
    for row in errors.head(10).iter_rows(named=True):
        where = row["partition_key"] or "the run"
        state = "resolved since (loaded by a later run)" if row["is_resolved"] else "**not resolved**"
        link = live.run_link(row["run_id"])
        run = f"[{row['flow_run_name'] or row['run_id']}]({link})" if link else (row["flow_run_name"] or row["run_id"])
        st.error(f"{row['created_at']:%Y-%m-%d %H:%M} · {where} · run {run} · {state}\n\n{row['message'][:400]}")

    st.subheader("System")
    system = read_system(config)
    cols = st.columns(4)
    cols[0].metric("CPU", f"{system.cpu:.0f}%", f"limit {config.health.max_cpu_percent:g}%", delta_color="off")
    cols[1].metric("memory", f"{system.memory:.0f}%", f"limit {config.health.max_memory_percent:g}%", delta_color="off")
    cols[2].metric("disk", f"{system.disk:.0f}%", f"limit {config.health.max_disk_percent:g}%", delta_color="off")
    cols[3].metric("backups", f"{system.backups} ({system.backups_bytes / 1e6:.1f} MB)",
                   f"{100 * system.backups_share:.3f}% of the disk; newest verified {system.newest_verified or '-'}",
                   delta_color="off")
    if not frames["health"].is_empty():
        limits = {"cpu": config.health.max_cpu_percent, "memory": config.health.max_memory_percent,
                  "disk": config.health.max_disk_percent}
        _chart(st, "system", lambda health: charts.system_history(health, limits), frames["health"])


def analytics_page(config) -> None:
    frames, note = _frames(config)
    if note:
        st.warning(note)
    standings = frames.get("standings", pl.DataFrame())
    if standings.is_empty():
        st.info("No standings yet: the warehouse fills in with the first run.")
        return
    st.subheader("Standings")
    seasons = sorted(standings["season"].unique().to_list(), reverse=True)
    conferences = sorted(c for c in standings["conference"].unique().to_list() if c)
    default = [c for c in config.conferences if c in conferences] or conferences[:1]
    season = st.selectbox("season", seasons, key="season")
    chosen = st.multiselect("conferences", conferences, default=default, key="conferences")
    table = standings.filter((pl.col("season") == season) & pl.col("conference").is_in(chosen))
    st.dataframe(table.to_pandas(), hide_index=True, use_container_width=True)

    st.subheader("Upcoming games (champion model)")
    upcoming = frames["upcoming"]
    if upcoming.is_empty():
        st.info("No unplayed game has a prediction.")
    else:
        st.dataframe(upcoming.select("start_date", "home_team", "away_team", "predicted_margin", "home_win_prob",
                                     "model_version").to_pandas(), hide_index=True, use_container_width=True)

    st.subheader("Model quality")
    models = frames["models"]
    if not models.is_empty():
        _chart(st, "models", charts.model_quality, models)
        latest = json.loads(models["metrics"][-1] or "{}")
        if latest.get("calibration"):
            _chart(st, "calibration", charts.calibration, latest["calibration"])


def main() -> None:
    st.set_page_config(page_title="gridiron monitor", page_icon="🏈", layout="wide")
    st.title("gridiron monitor")
    try:
        config = _config()
    except ConfigError as error:
        st.error(f"config error: {error}")
        return
    st.caption(f"warehouse {config.warehouse_path} · refreshes every {REFRESH:g} s")
    pipeline, analytics = st.tabs(["Pipeline", "Analytics"])
    with pipeline:
        st.fragment(run_every=REFRESH)(pipeline_page)(config)
    with analytics:  # what it shows changes with a run's load, not by the second
        st.fragment(run_every=max(REFRESH, 30))(analytics_page)(config)


main()
