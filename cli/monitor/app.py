"""The gridiron dashboard (Streamlit): `gridiron monitor` serves it on http://127.0.0.1:8505.

Run by `streamlit run cli/monitor/app.py -- [--config FILE]`; it refreshes itself without page
reloads: the live panel (a fragment with `run_every`) every GRIDIRON_MONITOR_REFRESH seconds
(default 5), and the whole page only when the warehouse file changed (the live panel notices and
reruns the app), so the charts are not rebuilt or redrawn while nothing changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # streamlit runs this file as a script

from cli.monitor import charts  # noqa: E402
from cli.monitor.data import PrefectView, read_backups, read_machine, read_prefect, read_warehouse  # noqa: E402
from gridiron.config import ConfigError, load_config  # noqa: E402

REFRESH = float(os.environ.get("GRIDIRON_MONITOR_REFRESH", "5"))
BUSY_RETRY_SECONDS = 5.0  # how soon a read that found a run writing the warehouse is tried again


def _config():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    args, _ = parser.parse_known_args()
    return load_config(args.config)


def _stamp(config) -> tuple:
    """Changes whenever the warehouse file (or its write-ahead log) does."""
    files = (config.warehouse_path, config.warehouse_path.with_name(config.warehouse_path.name + ".wal"))
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None for f in files)


def _read(config) -> bool:
    """Read the warehouse if its file changed since the last read; whether the page should be
    redrawn (new figures, or a new reason why there are none). A file a run holds is tried again
    every BUSY_RETRY_SECONDS, by the live panel alone: the page keeps its last figures meanwhile."""
    state, stamp = st.session_state, _stamp(config)
    if stamp == state.get("stamp") or time.monotonic() < state.get("retry_at", 0.0):
        return False
    view = read_warehouse(config)
    if view.busy:
        state["retry_at"] = time.monotonic() + BUSY_RETRY_SECONDS
        first = state.get("busy_since") is None
        state["busy_since"] = state.get("busy_since") or datetime.now(UTC)
        return first and state.get("last") is None  # with figures up, the live panel says it
    state["stamp"], state["problem"], state["busy_since"] = stamp, view.problem, None
    if view.read_at is not None:
        state["last"] = view
    return True


def _frames(config) -> tuple[dict[str, pl.DataFrame], str | None]:
    """The last frames read (the file is read again only when it changed) and, when there are none,
    why not."""
    _read(config)
    last, problem = st.session_state.get("last"), st.session_state.get("problem")
    if last is None:
        busy = "the warehouse is busy (a run is writing it)" if st.session_state.get("busy_since") else None
        return {}, busy or problem
    return last.frames, None


def _busy_note() -> str | None:
    """Said in the live panel while a run holds the file: the figures below are the last ones read."""
    last = st.session_state.get("last")
    if st.session_state.get("busy_since") and last is not None:
        return (f"the warehouse is busy (a run is writing it): the figures below were read at "
                f"{last.read_at:%H:%M:%S} UTC")
    return None


def _chart(where, name: str, build, *frames) -> None:
    """Draw a chart, its Vega-Lite spec built (and validated) once per read of the warehouse:
    redrawing an unchanged chart costs next to nothing."""
    specs = st.session_state.setdefault("specs", {})
    last = st.session_state.get("last")
    key = (name, last.read_at if last is not None else None)
    if key not in specs:
        for old in [k for k in specs if k[1] != key[1]]:  # a newer read: drop the old specs
            del specs[old]
        specs[key] = build(*frames).to_dict()
    where.vega_lite_chart(spec=specs[key], use_container_width=True)


def now_panel(config) -> None:
    """What changes by the second, redrawn every REFRESH seconds on its own: the live state of runs
    from the Prefect API and the machine now. The rest of the page is redrawn only when the
    warehouse changed (this panel notices, reads it and reruns the page), so a dashboard left open
    costs the browser and the run next to nothing."""
    if _read(config):
        st.rerun(scope="app")
    live = read_prefect(os.environ.get("PREFECT_API_URL"))
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
    if note := _busy_note():
        st.warning(note)
    cols = st.columns(5)
    cols[0].metric("last result", f"{live.last_state or '-'}", live.last_name or None, delta_color="off")
    cols[1].metric("next scheduled run (UTC)",
                   f"{live.next_scheduled:%Y-%m-%d %H:%M}" if live.next_scheduled else "not scheduled")
    system = read_machine(config)
    cols[2].metric("CPU", f"{system.cpu:.0f}%", f"limit {config.health.max_cpu_percent:g}%", delta_color="off")
    cols[3].metric("memory", f"{system.memory:.0f}%", f"limit {config.health.max_memory_percent:g}%",
                   delta_color="off")
    cols[4].metric("disk", f"{system.disk:.0f}%", f"limit {config.health.max_disk_percent:g}%", delta_color="off")


def pipeline_page(config) -> None:
    """The pipeline page: live run state, run history charts, errors, quality and the machine."""
    frames, note = _frames(config)  # first: the live panel compares the file with what this read
    st.fragment(run_every=REFRESH)(now_panel)(config)
    if note:
        st.warning(note)
        if st.session_state.get("busy_since"):  # nothing read yet, and a run holds the file
            return
    runs = frames.get("runs", pl.DataFrame())
    if runs.is_empty():
        st.info("No runs recorded yet. Run `gridiron run` (or `gridiron schedule`) and this page fills in.")
        return
    st.subheader("Runs")
    finished = runs.filter(pl.col("status").is_in(["completed", "failed"]))
    rate = (finished["status"] == "completed").mean() if finished.height else 0.0
    more = st.columns(4)
    more[0].metric("success rate", f"{100 * rate:.0f}% of {finished.height} runs")
    more[1].metric("average duration", f"{runs['duration_seconds'].mean() or 0:.1f} s")
    more[2].metric("records processed (all runs)", f"{int(runs['records_processed'].fill_null(0).sum()):,}")
    more[3].metric("records loaded (last run)", f"{int(runs['records_loaded'].fill_null(0)[-1]):,}")

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
    links = PrefectView(os.environ.get("PREFECT_API_URL"))
    for row in errors.head(10).iter_rows(named=True):
        where = row["partition_key"] or "the run"
        state = "resolved since (loaded by a later run)" if row["is_resolved"] else "**not resolved**"
        link = links.run_link(row["run_id"])
        run = f"[{row['flow_run_name'] or row['run_id']}]({link})" if link else (row["flow_run_name"] or row["run_id"])
        st.error(f"{row['created_at']:%Y-%m-%d %H:%M} · {where} · run {run} · {state}\n\n{row['message'][:400]}")

    st.subheader("System")
    backups = read_backups(config)
    st.metric("backups", f"{backups.count} ({backups.size_bytes / 1e6:.1f} MB)",
              f"{100 * backups.disk_share:.3f}% of the disk; newest verified {backups.newest_verified or '-'}",
              delta_color="off")
    if not frames["health"].is_empty():
        limits = {"cpu": config.health.max_cpu_percent, "memory": config.health.max_memory_percent,
                  "disk": config.health.max_disk_percent}
        _chart(st, "system", lambda health: charts.system_history(health, limits), frames["health"])


def forecast_section(upcoming: pl.DataFrame, ledger: pl.DataFrame, timezone: str, unscored: int) -> None:
    """Next week's games with the pick, the margin, the probability and the line, in the reader's
    timezone; the rest of the games still to kick off; and how past weeks went (the ledger)."""
    from gridiron import clock
    from gridiron.forecast_view import how_we_did, next_week, pick_rows, still_upcoming

    now = clock.now()
    ahead = still_upcoming(upcoming, now)
    st.subheader("Forecasts: next week (champion model)")
    note = f"{unscored} game(s) past kickoff have no result yet: unscored, not forecast." if unscored else ""
    if ahead.is_empty():
        st.info(f"No game without a result kicks off after {now:%Y-%m-%d %H:%M} UTC: nothing to forecast. "
                f"{note}".strip())
    else:
        week = next_week(ahead)
        as_of = week["generated_at"].max()
        st.caption(f"kickoff times in {timezone} · forecast as of {as_of:%Y-%m-%d %H:%M} UTC by "
                   f"{week['model_version'][0]} · the pick's margin and win probability are one forecast · {note}")
        st.dataframe(pick_rows(week, timezone), hide_index=True, use_container_width=True)
        if ahead.height > week.height:
            with st.expander(f"all {ahead.height} games still to kick off"):
                st.dataframe(pick_rows(ahead, timezone), hide_index=True, use_container_width=True)
    if not ledger.is_empty():
        st.subheader("How we did: each week, the last forecast before kickoff (FBS v FBS)")
        st.dataframe(how_we_did(ledger), hide_index=True, use_container_width=True)


def analytics_page(config) -> None:
    """The analytics page: standings, upcoming predictions and the model's quality."""
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

    unscored = frames.get("unscored", pl.DataFrame())
    forecast_section(frames.get("upcoming", pl.DataFrame()), frames.get("ledger", pl.DataFrame()),
                     st.context.timezone or "UTC", int(unscored["games"][0]) if unscored.height else 0)

    forecasts = frames.get("forecasts", pl.DataFrame())
    if not forecasts.is_empty() and forecasts["scored"].sum() > 0:
        st.subheader("Forecasts as issued, scored on the games played since")
        st.dataframe(forecasts.filter(pl.col("scored") > 0).select(
            "issued_at", "model_version", "forecasts", "scored", "su_accuracy", "mae", "brier").to_pandas(),
            hide_index=True, use_container_width=True)

    st.subheader("Model quality")
    models = frames["models"]
    if not models.is_empty():
        _chart(st, "models", charts.model_quality, models)
        latest = json.loads(models["metrics"][-1] or "{}")
        if latest.get("calibration"):
            _chart(st, "calibration", charts.calibration, latest["calibration"])


def main() -> None:
    """The dashboard: its two pages, refreshed on their own."""
    st.set_page_config(page_title="gridiron monitor", page_icon="🏈", layout="wide")
    st.title("gridiron monitor")
    try:
        config = _config()
    except ConfigError as error:
        st.error(f"config error: {error}")
        return
    st.caption(f"warehouse {config.warehouse_path} · live state every {REFRESH:g} s, "
               "the rest whenever the warehouse changes")
    pipeline, analytics = st.tabs(["Pipeline", "Analytics"])
    with pipeline:
        pipeline_page(config)
    with analytics:  # a fragment: choosing a season or conference redraws only this tab
        st.fragment(analytics_page)(config)


main()
