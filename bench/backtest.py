"""Benchmark: walk-forward backtests of the model beside the baselines, and what they cost.

Reads the bundled snapshot (2014-2023) through the same transforms as the pipeline, builds the
features once, backtests 2019, 2021, 2022 and 2023 (settings were tuned on 2016-2018 only), pools
2021-2023 FBS v FBS games against the target, and times features + every season's backtest + the
final fit for the full history, with the process's peak memory.

    .venv/bin/python bench/backtest.py
"""

from __future__ import annotations

import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from bench.report import write_section  # noqa: E402
from gridiron.config import PipelineConfig  # noqa: E402
from gridiron.model.backtest import (  # noqa: E402
    VEGAS_SIGMA,
    _metrics,
    _normal_cdf,
    fit_models,
    training_rows,
    vegas_lines,
    walk_forward,
)
from gridiron.model.features import build_game_features  # noqa: E402
from gridiron.sources import Partition, SnapshotSource, bundled_snapshot_dir  # noqa: E402
from gridiron.transforms import build_games, build_lines  # noqa: E402
from gridiron.model.training import TrainSettings  # noqa: E402

REPORTED = (2019, 2021, 2022, 2023)


def row(name: str, m: dict) -> str:
    ats = f"{m['ats']:.3f}" if m.get("ats") is not None else "-"
    return f"| {name} | {m['games']} | {m['su_accuracy']:.3f} | {m['mae']:.2f} | {m['brier']:.3f} | {m['log_loss']:.3f} | {ats} |"


def main() -> None:
    source = SnapshotSource(bundled_snapshot_dir())
    games = pl.concat([build_games(source.fetch(Partition("games", s)).payload) for s in range(2014, 2024)])
    lines = pl.concat([build_lines(source.fetch(Partition("lines", s)).payload) for s in range(2014, 2024)])
    settings = TrainSettings.from_config(PipelineConfig())

    start = time.perf_counter()
    features = build_game_features(games, settings.features)
    feature_seconds = time.perf_counter() - start
    predictions = {}
    for season in range(2015, 2024):
        predictions[season] = walk_forward(features, season, settings.model)
    fit_models(training_rows(features, settings.model), settings.model)
    total_seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    vegas = vegas_lines(lines)
    header = ["| | games | straight up | MAE | Brier | log loss | ATS |", "|---|---|---|---|---|---|---|"]
    body = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on this machine ({os.cpu_count()} cores), "
        "`.venv/bin/python bench/backtest.py`: walk-forward (each week trained only on earlier weeks), "
        "FBS v FBS games, the shipped settings (tuned on 2016-2018 only). Vegas = median closing spread "
        f"across providers (regular season only; its probability from a normal with sd {VEGAS_SIGMA:g} points); "
        "*model on Vegas games* is the model on exactly the games that have a line.",
        "",
    ]
    pooled: dict[str, list] = {"model": [], "elo": [], "vegas": [], "model_v": []}
    for season in REPORTED:
        fbs = predictions[season].filter(pl.col("is_fbs_game")).join(vegas, on="game_id", how="left")
        margin = fbs["margin"].to_numpy()
        spread = fbs["vegas_spread"].fill_null(np.nan).to_numpy().astype(float)
        has = ~np.isnan(spread)
        model = _metrics(margin, fbs["predicted_margin"].to_numpy(), fbs["home_win_prob"].to_numpy(), spread)
        elo = _metrics(margin, fbs["elo_diff"].to_numpy(), fbs["elo_prob"].to_numpy(), spread)
        line = _metrics(margin[has], -spread[has], _normal_cdf(-spread[has] / VEGAS_SIGMA))
        on_lines = _metrics(margin[has], fbs["predicted_margin"].to_numpy()[has], fbs["home_win_prob"].to_numpy()[has])
        home = _metrics(margin, np.full(len(margin), 3.0), np.full(len(margin), 0.58))
        body += [f"**{season}**", "", *header, row("model", model), row("model on Vegas games", on_lines),
                 row("Vegas line", line), row("our Elo alone", elo), row("home team always wins", home), ""]
        if season >= 2021:
            pooled["model"].append(fbs.select("margin", "predicted_margin", "home_win_prob"))
            pooled["elo"].append(fbs.select("margin", "elo_diff", "elo_prob"))
            pooled["vegas"].append(fbs.filter(pl.col("vegas_spread").is_not_null()).select("margin", "vegas_spread"))
            pooled["model_v"].append(fbs.filter(pl.col("vegas_spread").is_not_null()).select("margin", "predicted_margin", "home_win_prob"))
    m = pl.concat(pooled["model"])
    e = pl.concat(pooled["elo"])
    v = pl.concat(pooled["vegas"])
    mv = pl.concat(pooled["model_v"])
    body += ["**Pooled 2021-2023** (target: straight up >= 0.73, MAE <= 12.2, Brier <= 0.175)", "", *header,
             row("model", _metrics(m["margin"].to_numpy(), m["predicted_margin"].to_numpy(), m["home_win_prob"].to_numpy())),
             row("model on Vegas games", _metrics(mv["margin"].to_numpy(), mv["predicted_margin"].to_numpy(), mv["home_win_prob"].to_numpy())),
             row("Vegas line", _metrics(v["margin"].to_numpy(), -v["vegas_spread"].to_numpy(), _normal_cdf(-v["vegas_spread"].to_numpy() / VEGAS_SIGMA))),
             row("our Elo alone", _metrics(e["margin"].to_numpy(), e["elo_diff"].to_numpy(), e["elo_prob"].to_numpy())),
             "",
             f"Cost for the full history (2014-2023, {games.height} games): features {feature_seconds:.1f} s; "
             f"features + walk-forward backtests of all nine seasons 2015-2023 + the final fit "
             f"{total_seconds:.1f} s; peak memory of the process {peak_mb:.0f} MiB."]
    print(write_section("backtest", "Game prediction backtests (issue: train)", "\n".join(body)))


if __name__ == "__main__":
    main()
