"""Benchmark: the 2023 season replayed week by week, as a user running the weekly schedule saw it
(issue 36).

The fake CFBD server (`gridiron.testing.fake_cfbd`) serves the bundled snapshot as the API had it
at a moving as-of time: a game that kicks off later has no result, its lines no score, its box
score does not exist yet. `gridiron run` runs with the same as-of time (`GRIDIRON_AS_OF`) on a
Prefect server on 127.0.0.1, every Monday 10:00 UTC from the one before week 0 to the one after
the last bowl: the walk-forward backtest's slates are Monday-to-Sunday weeks of kickoffs (US
time), so a Monday run knows exactly the results the backtest's slate was fitted on. The first run is cold (2014-2022 and the 2023 schedule); each later run is
incremental: it fetches what changed, forecasts the games still to kick off, and last week's
forecasts are scored on their results.

Per run: the API calls it spent, wall time, partitions loaded, forecasts made, and how the
forecasts made before kickoff did on the games played since the last run, beside the closing
line on the same games. Then the season's ledger (the last forecast before each kickoff, FBS v
FBS) beside the walk-forward backtest on the same games (the same model on the same
information: a difference is a leak or a bug, explained in the notes). Figures go to BENCHMARKS.md.

    .venv/bin/python bench/season_replay.py
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import yaml  # noqa: E402

from bench.backtest import snapshot_history  # noqa: E402
from bench.report import write_section  # noqa: E402
from gridiron.config import PipelineConfig  # noqa: E402
from gridiron.game_weeks import game_calendar  # noqa: E402
from gridiron.model.backtest import prediction_metrics, walk_forward  # noqa: E402
from gridiron.model.features import build_game_features  # noqa: E402
from gridiron.model.training import TrainSettings  # noqa: E402
from gridiron.sources import bundled_snapshot_dir  # noqa: E402
from gridiron.storage import connect, ledger_games  # noqa: E402
from gridiron.testing.fake_cfbd import FakeCFBD  # noqa: E402
from gridiron.testing.servers import PrefectServer  # noqa: E402
from gridiron.testing.timing import environment_without_settings, timed_gridiron  # noqa: E402

SEASON = 2023
# completed seasons and settled weeks are refetched once they are this old: the shipped 7 days
# refetch every one of them on every weekly run (213 calls on 2023-08-29), so the replay sets a
# season's length to measure what the season in progress costs
REFRESH_AGE_DAYS = 180
KEY = "bench-key"
TARGET_CALLS, TARGET_RATIO = 3, 2.0
LOADED = re.compile(r"ncaa-pipeline completed: (\d+) partitions loaded")
FORECAST = re.compile(r"forecasts: (\d+) upcoming game")


@dataclass
class WeeklyRun:
    as_of: datetime
    calls: int
    seconds: float
    partitions: int
    forecasts: int | None
    scored: dict | None  # the forecasts made before kickoff on the games played since the last run


def mondays(snapshot: Path) -> list[datetime]:
    """Every Monday 10:00 UTC from the one before the season's first kickoff to the one after its last."""
    games = json.loads(gzip.decompress((snapshot / "games" / f"{SEASON}.json.gz").read_bytes()))
    kickoffs = sorted(kickoff for _, _, _, kickoff, _ in game_calendar(games))
    first, last = kickoffs[0], kickoffs[-1]
    day = (first - timedelta(days=first.weekday() or 7)).replace(hour=10, minute=0, second=0, microsecond=0)
    runs = []
    while day <= last + timedelta(days=7):
        runs.append(day)
        day += timedelta(days=7)
    return runs


def scored_between(home: Path, after: datetime, until: datetime) -> tuple[dict | None, pl.DataFrame]:
    """The ledger's games (last forecast before kickoff) that kicked off in (after, until], and
    their metrics beside the line's on the games that have one."""
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        games = ledger_games(con)
    if games.is_empty():
        return None, games
    window = games.filter((pl.col("start_date") > after) & (pl.col("start_date") <= until) & pl.col("is_fbs_game"))
    return (summary(window) if window.height else None), games


def summary(games: pl.DataFrame) -> dict:
    """Straight up, MAE and Brier of the forecasts, and of the model and the line on the games with a line."""
    ours = prediction_metrics(games["margin"].to_numpy(), games["predicted_margin"].to_numpy(),
                              games["home_win_prob"].to_numpy())
    lined = games.filter(pl.col("spread").is_not_null())
    result = {"games": games.height, "su": ours["su_accuracy"], "mae": ours["mae"], "brier": ours["brier"],
              "line_games": lined.height}
    if lined.height:
        margin, line = lined["margin"].to_numpy(), -lined["spread"].to_numpy()
        decided = (margin != 0) & (line != 0)
        result["we_on_line"] = float(np.mean((lined["predicted_margin"].to_numpy()[decided] > 0) == (margin[decided] > 0)))
        result["line_su"] = float(np.mean((line[decided] > 0) == (margin[decided] > 0)))
        result["line_mae"] = float(np.mean(np.abs(line - margin)))
    return result


def main() -> None:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gridiron-bench-replay-"))
    home = work / "home"
    runs: list[WeeklyRun] = []
    try:
        with FakeCFBD(bundled_snapshot_dir(), api_key=KEY, calls_remaining=10**6) as fake, \
                PrefectServer(work / "prefect") as server:
            config = yaml.safe_load((REPO / "config" / "pipeline_config.yaml").read_text())
            config["source"]["refresh_age_days"] = REFRESH_AGE_DAYS
            config["schedule_interval"] = "weekly"  # what the data's age is judged against
            (work / "replay.yaml").write_text(yaml.safe_dump(config))
            env = {**environment_without_settings(), **server.env, "CFBD_API_KEY": KEY, "CFBD_BASE_URL": fake.url,
                   "GRIDIRON_HOME": str(home), "GRIDIRON_CONFIG": str(work / "replay.yaml")}
            previous = None
            schedule = mondays(bundled_snapshot_dir())
            for as_of in [*schedule, schedule[-1]]:  # the last again: the no-change rerun
                fake.as_of = as_of
                calls = len(fake.metered)
                timed = timed_gridiron(["run"], {**env, "GRIDIRON_AS_OF": as_of.isoformat()}, REPO,
                                       merge_output=True).check(f"the run as of {as_of:%Y-%m-%d}")
                loaded, forecast = LOADED.search(timed.stdout), FORECAST.search(timed.stdout)
                scored, ledger = scored_between(home, previous or datetime(SEASON, 1, 1, tzinfo=UTC), as_of)
                runs.append(WeeklyRun(as_of, len(fake.metered) - calls, timed.seconds,
                                      int(loaded[1]) if loaded else 0, int(forecast[1]) if forecast else None, scored))
                print(f"{as_of:%Y-%m-%d}: {runs[-1]}", flush=True)
                previous = as_of
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write_section("season-replay", "The 2023 season replayed week by week (issue 36)",
                        report(runs, ledger, started)), flush=True)


def backtest_on(games: pl.DataFrame) -> pl.DataFrame:
    """The walk-forward backtest's predictions of 2023 (all results known, each slate fitted on
    earlier ones), on the ledger's games."""
    history, _, talent, box = snapshot_history()
    settings = TrainSettings.from_config(PipelineConfig())
    walked = walk_forward(build_game_features(history, settings.features, talent, box), SEASON, settings.model)
    return walked.select("game_id", "predicted_margin", "home_win_prob").join(
        games.select("game_id", "margin", "spread", "start_date"), on="game_id")


def _share(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}%"


def report(runs: list[WeeklyRun], ledger: pl.DataFrame, started: float) -> str:
    weekly, rerun = runs[1:-1], runs[-1]
    header = ["| as of (Monday) | API calls | wall (s) | partitions loaded | forecasts made | games scored | "
              "straight up | MAE | Brier | with a line | we, on those | the line |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for run in runs[:-1]:
        s = run.scored or {}
        cells = [f"{run.as_of:%Y-%m-%d}" + (" (cold)" if run is runs[0] else ""), str(run.calls), f"{run.seconds:.1f}",
                 str(run.partitions), "-" if run.forecasts is None else str(run.forecasts), str(s.get("games", 0)),
                 _share(s.get("su")), f"{s['mae']:.1f}" if s else "-", f"{s['brier']:.3f}" if s else "-",
                 str(s.get("line_games", 0)), _share(s.get("we_on_line")), _share(s.get("line_su"))]
        rows.append("| " + " | ".join(cells) + " |")
    fbs = ledger.filter(pl.col("is_fbs_game"))
    season = summary(fbs)
    walked = backtest_on(fbs)
    walk = summary(walked)
    both = fbs.join(walked.select("game_id", pl.col("predicted_margin").alias("walk_margin")), on="game_id")
    differs = both.filter((pl.col("predicted_margin") - pl.col("walk_margin")).abs() > 1e-6)
    largest = float((both["predicted_margin"] - both["walk_margin"]).abs().max() or 0.0)
    calls = [run.calls for run in weekly]
    seconds = [run.seconds for run in weekly]
    ratio = max(seconds) / rerun.seconds

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    body = [
        f"`.venv/bin/python bench/season_replay.py` ({os.cpu_count()} cores, {time.perf_counter() - started:.0f} s): "
        f"{len(runs) - 1} runs of `gridiron run` over HTTP (fake CFBD server at the run's as-of time), one Prefect "
        f"server on 127.0.0.1 for all of them, `source.refresh_age_days: {REFRESH_AGE_DAYS}` (with the shipped 7, "
        "every weekly run refetches every completed season and settled week: 213 calls on 2023-08-29). Games scored: the FBS v FBS games that kicked off since the run before, "
        "with the last forecast made before their kickoff; the line is the median closing spread.",
        "", *header, *rows, "",
        f"**Season ledger, FBS v FBS** ({season['games']} games forecast before kickoff): straight up "
        f"{_share(season['su'])}, MAE {season['mae']:.2f}, Brier {season['brier']:.4f}; on the {season['line_games']} "
        f"games with a line, we {_share(season.get('we_on_line'))} and the line {_share(season.get('line_su'))} "
        f"straight up, the line's MAE {season.get('line_mae', float('nan')):.2f}.",
        f"**Walk-forward backtest on the same games**: straight up {_share(walk['su'])}, MAE {walk['mae']:.2f}, "
        f"Brier {walk['brier']:.4f}; {differs.height} of {both.height} games have another predicted margin "
        f"(largest difference {largest:.2g} points)"
        + (f", kicking off {differs['start_date'].min():%Y-%m-%d} to {differs['start_date'].max():%Y-%m-%d}."
           if differs.height else "."),
        "",
        "| target | figure | verdict |", "|---|---|---|",
        f"| API calls per weekly run <= {TARGET_CALLS} | {min(calls)}-{max(calls)} (median "
        f"{sorted(calls)[len(calls) // 2]}) | {verdict(max(calls) <= TARGET_CALLS)} |",
        f"| weekly run <= {TARGET_RATIO:g}x the no-change rerun ({rerun.seconds:.1f} s, {rerun.calls} calls) | "
        f"slowest {max(seconds):.1f} s ({ratio:.2f}x), median {sorted(seconds)[len(seconds) // 2]:.1f} s | "
        f"{verdict(ratio <= TARGET_RATIO)} |",
        f"| ledger = backtest on the same games | {differs.height} of {both.height} differ | "
        f"{verdict(differs.height == 0)} |",
    ]
    return "\n".join(body)


if __name__ == "__main__":
    main()
