"""Benchmark: walk-forward backtests of the model beside the baselines, and what they cost.

Reads the bundled snapshot (2014-2023) through the same transforms as the pipeline, builds the
features once, backtests 2019, 2021, 2022 and 2023 (settings were tuned on 2015-2018 only), pools
2021-2023 FBS v FBS games against the target and beside the model before prediction v2 (no talent,
margins capped at 35, the duplicated rating features), and times features + every season's
backtest + the final fit for the full history, with the process's peak memory.

    .venv/bin/python bench/backtest.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from bench.report import write_section  # noqa: E402
from gridiron.config import PipelineConfig  # noqa: E402
from gridiron.model.backtest import (  # noqa: E402
    VEGAS_SIGMA,
    evaluate,
    fit_models,
    home_baseline,
    training_rows,
    walk_forward,
)
from gridiron.model.features import build_game_features  # noqa: E402
from gridiron.model.history import season_history  # noqa: E402
from gridiron.model.training import TrainSettings  # noqa: E402
from gridiron.runs import peak_rss_mb  # noqa: E402

REPORTED = (2019, 2021, 2022, 2023)
# the model before prediction v2 (issue 14): no talent, margins capped at 35, duplicated rating features
V1_FEATURES = ("elo_diff", "elo_prob", "rating_margin", "rating_diff", "form_diff", "rest_diff", "home_rest",
               "away_rest", "is_neutral", "is_conference_game", "is_postseason", "home_is_fbs", "away_is_fbs",
               "home_games", "away_games")


def row(name: str, m: dict) -> str:
    ats = f"{m['ats']:.3f}" if m.get("ats") is not None else "-"
    return f"| {name} | {m['games']} | {m['su_accuracy']:.3f} | {m['mae']:.2f} | {m['brier']:.3f} | {m['log_loss']:.3f} | {ats} |"


def snapshot_history() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(games, lines, talent, box scores) of the bundled snapshot's ten seasons, read as `gridiron
    backtest` reads the seasons its warehouse lacks (through the pipeline's transforms)."""
    with tempfile.TemporaryDirectory(prefix="gridiron-bench-history-") as home:
        return season_history(PipelineConfig(storage={"home": home}), 2023)


def main() -> None:
    games, lines, talent, box = snapshot_history()
    settings = TrainSettings.from_config(PipelineConfig())

    start = time.perf_counter()
    features = build_game_features(games, settings.features, talent, box)
    feature_seconds = time.perf_counter() - start
    predictions = {}
    for season in range(2015, 2024):
        predictions[season] = walk_forward(features, season, settings.model)
    fit_models(training_rows(features, settings.model), settings.model)
    total_seconds = time.perf_counter() - start
    v1_model = replace(settings.model, features=V1_FEATURES)
    v1_features = build_game_features(games, replace(settings.features, margin_cap=35.0))
    v1 = evaluate(pl.concat([walk_forward(v1_features, s, v1_model) for s in (2021, 2022, 2023)]), lines, 2023,
                  *home_baseline(v1_features, 2021, v1_model))
    peak_mb = peak_rss_mb()

    header = ["| | games | straight up | MAE | Brier | log loss | ATS |", "|---|---|---|---|---|---|---|"]
    body = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores), "
        "`.venv/bin/python bench/backtest.py`: walk-forward (each week trained only on earlier weeks), "
        "FBS v FBS games, the shipped settings (tuned on 2015-2018 only), no betting-line features. Vegas = median closing spread "
        f"across providers (regular season only; its probability from a normal with sd {VEGAS_SIGMA:g} points); "
        "*model on Vegas games* is the model on exactly the games that have a line; the home team's "
        "baseline uses the home win rate and margin of the seasons before.",
        "",
    ]

    def table(report) -> list[str]:
        b = report.baselines
        return [*header, row("model", report.model), row("model on Vegas games", b["model_on_vegas_games"]),
                row("Vegas line", b["vegas"]), row("our Elo alone", b["elo"]),
                row("home team always wins", b["home"]), ""]

    for season in REPORTED:
        report = evaluate(predictions[season], lines, season, *home_baseline(features, season, settings.model))
        body += [f"**{season}**", "", *table(report)]
    pooled = evaluate(pl.concat([predictions[s] for s in (2021, 2022, 2023)]), lines, 2023,
                      *home_baseline(features, 2021, settings.model))
    body += ["**Pooled 2021-2023** (target, the closing line: straight up >= 0.731, MAE <= 12.18, Brier <= 0.175)",
             "", *table(pooled)[:-1], row("model before v2 (no talent, cap 35)", v1.model), "",
             f"Cost for the full history (2014-2023, {games.height} games): features {feature_seconds:.1f} s; "
             f"features + walk-forward backtests of all nine seasons 2015-2023 + the final fit "
             f"{total_seconds:.1f} s; peak memory of the process {peak_mb:.0f} MiB."]
    print(write_section("backtest", "Game prediction backtests (issue: train)", "\n".join(body)))


if __name__ == "__main__":
    main()
