"""Benchmark: what each lever of prediction v2 (issue 14) does, one step at a time, on the tuning
seasons (2015-2018 walk-forward, the only figures the choices were made on) and, for the record,
on 2019 and pooled 2021-2023. FBS v FBS games, no betting-line features. Figures go to
BENCHMARKS.md.

    .venv/bin/python bench/model_levers.py
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from bench.backtest import V1_FEATURES, snapshot_history  # noqa: E402
from bench.report import write_section  # noqa: E402
from gridiron.config import PipelineConfig  # noqa: E402
from gridiron.model.backtest import prediction_metrics, walk_forward  # noqa: E402
from gridiron.model.features import FEATURES, build_game_features  # noqa: E402
from gridiron.model.training import TrainSettings  # noqa: E402

TUNE, HOLDOUT, POOLED = (2015, 2016, 2017, 2018), (2019,), (2021, 2022, 2023)


def main() -> None:
    games, _, talent, box = snapshot_history()
    shipped = TrainSettings.from_config(PipelineConfig())
    capped = replace(shipped.features, margin_cap=35.0)
    with_talent = (*V1_FEATURES, "talent_diff")
    no_box = tuple(f for f in FEATURES if f not in ("eff_diff", "has_box"))
    steps = [  # (lever, features settings, talent?, box scores?, model features, model options)
        ("before v2: no talent, margins capped at 35", capped, False, False, V1_FEATURES, {}),
        ("+ talent difference", capped, True, False, with_talent, {}),
        ("+ talent weighted to a season's first games", capped, True, False, (*with_talent, "talent_early"), {}),
        ("+ no margin cap", shipped.features, True, False, no_box, {}),
        ("+ box-score efficiency (opponent-adjusted yards per play)", shipped.features, True, True,
         (*no_box, "eff_diff"), {}),
        ("+ whether both sides have box scores (shipped)", shipped.features, True, True, FEATURES, {}),
        ("(not kept) without elo_prob and rating_diff, which nearly duplicate elo_diff and rating_margin",
         shipped.features, True, True, tuple(f for f in FEATURES if f not in ("elo_prob", "rating_diff")), {}),
        ("(not kept) the margin link: probability from the predicted margin alone (issue 36)", shipped.features,
         True, True, FEATURES, {"link": "margin"}),
        ("(not kept) Elo regressed to the conference mean", replace(
            shipped.features, elo=replace(shipped.features.elo, regress_to="conference")), True, True, FEATURES, {}),
        ("(not kept) + preseason prior (last seasons' ratings and talent, fitted on earlier seasons) and "
         "in-season ratings shrunk toward it (a prior worth three games)", replace(shipped.features, preseason_prior=True),
         True, True, (*FEATURES, "prior_margin", "season_margin", "prior_early"), {}),
    ]
    header = ["| lever | 2015-2018 straight up | MAE | Brier | 2019 MAE | 2021-2023 straight up | MAE | Brier |",
              "|---|---|---|---|---|---|---|---|"]
    rows, started = [], time.perf_counter()
    for name, feature_settings, use_talent, use_box, features, options in steps:
        frame = build_game_features(games, feature_settings, talent if use_talent else None, box if use_box else None)
        model = replace(shipped.model, features=tuple(features), **options)

        def metrics(seasons, frame=frame, model=model):
            p = pl.concat([walk_forward(frame, s, model) for s in seasons]).filter(pl.col("is_fbs_game"))
            return prediction_metrics(p["margin"].to_numpy(), p["predicted_margin"].to_numpy(), p["home_win_prob"].to_numpy())

        t, h, r = metrics(TUNE), metrics(HOLDOUT), metrics(POOLED)
        rows.append(f"| {name} | {t['su_accuracy']:.3f} | {t['mae']:.3f} | {t['brier']:.4f} | {h['mae']:.2f} | "
                    f"{r['su_accuracy']:.3f} | {r['mae']:.3f} | {r['brier']:.4f} |")
        print(rows[-1], flush=True)
    body = [
        f"`.venv/bin/python bench/model_levers.py` ({os.cpu_count()} cores, {time.perf_counter() - started:.0f} s): "
        "each lever of prediction v2 added to the one above, walk-forward, FBS v FBS, no betting-line features. "
        "A lever was kept only if it helped on 2015-2018; 2019 and 2021-2023 were not looked at to choose.",
        "", *header, *rows, "",
        "The box-score efficiency ratings read `game_team_stats` (the `/games/teams` endpoint, week by week); "
        "the closing line pooled 2021-2023 is 0.731 / 12.18 / 0.175.",
    ]
    write_section("model-levers", "Prediction v2: each lever on the tuning seasons", "\n".join(body))


if __name__ == "__main__":
    main()
