"""Models and the honest walk-forward backtest.

Models (scikit-learn pipelines over `FEATURES`): a ridge regression for the home margin and a
logistic regression for the home win probability, reconciled into one forecast. A logistic curve
with no intercept (a margin of 0 is a coin toss) turns the predicted margin into log-odds; the
forecast's log-odds are the mean of those and the feature model's, and its margin is those log-odds
read back through the same curve. So the margin's sign and the probability's side of 0.5 always
agree (`link="blend"`, chosen on 2015-2018; `link="margin"` keeps the ridge's margin and reads the
probability from it alone).

Walk-forward: for each slate (week) of a season in order, both models are fitted on every game with
a result from earlier slates (FBS-involved games, after a burn-in season whose features are cold)
and predict that slate. Metrics are taken on FBS v FBS games: straight-up accuracy, MAE of the
margin, Brier score, log loss, and against the spread where lines exist; beside them the
baselines: the home team always wins, our Elo alone, and the Vegas line (the median closing spread
across providers, which absorbs the occasional wrong provider row).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from gridiron.model.features import FEATURES, Checkpoints, _digest, _rows_digest

if TYPE_CHECKING:  # scikit-learn is imported where a model is fitted: a run that trains nothing never loads it
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline


class NotEnoughHistory(ValueError):
    """Too few earlier games to fit or judge a model honestly."""


VEGAS_SIGMA = 15.0  # points: the spread of margins around the line, to turn a spread into a probability


@dataclass(frozen=True)
class ModelSettings:
    """The game model's features and the penalties of its margin and win-probability fits."""

    features: tuple[str, ...] = FEATURES
    margin_alpha: float = 10.0
    prob_c: float = 0.1
    burn_in_seasons: int = 1  # the first season(s) of data only warm the features up
    link: str = "blend"  # how margin and probability become one forecast (see the module's docstring)


LINKS = ("blend", "margin")
MIN_SLOPE = 0.01  # log-odds per point: a floor for a degenerate fit, so the curve stays increasing


@dataclass
class Models:
    """A fitted margin model and win-probability model, the curve that links them, and the
    features they read."""

    margin: Pipeline
    prob: Pipeline | LogisticRegression
    features: tuple[str, ...]
    slope: float  # log-odds of a home win per point of predicted margin (the link's curve)
    link: str = "blend"

    def components(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The two fits' own outputs before they are reconciled: the ridge's margin and the
        feature model's home-win probability (for the benchmark that compares links)."""
        x = frame.select(self.features).to_numpy()
        return self.margin.predict(x), self.prob.predict_proba(x)[:, 1]

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame with each game's forecast: the predicted home margin and the home win
        probability, whose sign and side of 0.5 agree."""
        x = frame.select(self.features).to_numpy()
        margin = self.margin.predict(x)
        logit = self.slope * margin
        if self.link == "blend":
            logit = (logit + self.prob.decision_function(x)) / 2
            margin = logit / self.slope
        prob = 1.0 / (1.0 + np.exp(-logit))
        return frame.select("game_id").with_columns(
            predicted_margin=pl.Series(margin, dtype=pl.Float64), home_win_prob=pl.Series(prob, dtype=pl.Float64))


def training_rows(features: pl.DataFrame, settings: ModelSettings) -> pl.DataFrame:
    """The games a model learns from: played, past the burn-in seasons, with every feature."""
    first = features["season"].min() + settings.burn_in_seasons
    return features.filter(
        pl.col("has_result") & (pl.col("season") >= first)
        & ((pl.col("home_is_fbs") > 0) | (pl.col("away_is_fbs") > 0))
    )


def fit_models(train: pl.DataFrame, settings: ModelSettings) -> Models:
    """Fit the margin ridge, the win-probability logistic model and the curve that links them on `train`."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = train.select(settings.features).to_numpy()
    margin = make_pipeline(StandardScaler(), Ridge(alpha=settings.margin_alpha)).fit(x, train["margin"].to_numpy())
    decided = train.filter(pl.col("margin") != 0)
    won = (decided["margin"] > 0).to_numpy()
    x_decided = decided.select(settings.features).to_numpy()
    if settings.link not in LINKS:
        raise ValueError(f"model link {settings.link!r} is not one of {', '.join(LINKS)}")
    prob = make_pipeline(StandardScaler(), LogisticRegression(C=settings.prob_c, max_iter=1000)).fit(x_decided, won)
    curve = LogisticRegression(C=1.0, fit_intercept=False, max_iter=1000).fit(
        margin.predict(x_decided).reshape(-1, 1), won)
    return Models(margin=margin, prob=prob, features=settings.features,
                  slope=max(float(curve.coef_[0, 0]), MIN_SLOPE), link=settings.link)


def walk_forward(features: pl.DataFrame, season: int, settings: ModelSettings | None = None,
                 memo: Checkpoints | None = None) -> pl.DataFrame:
    """Out-of-sample predictions for every game of `season` with a result, slate by slate.

    `memo`: where each slate's predictions are kept, under a key of all they were made from (the
    training rows, the slate's feature rows, the settings, this module's code and the libraries'
    versions), so a later backtest refits only the slates whose inputs changed: one game changed
    late in the season costs the slates from its own on, and the predictions are the ones a full
    walk gives (a slate's own results are not among its inputs; the metrics read them afresh)."""
    settings = settings or ModelSettings()
    pool = training_rows(features, settings)
    target = features.filter((pl.col("season") == season) & pl.col("has_result"))
    if target.is_empty():
        raise NotEnoughHistory(f"season {season} has no games with results to backtest")
    fitted_on = [*settings.features, "margin"]
    parts = []
    for slate in sorted(target["slate"].unique().to_list()):
        train = pool.filter(pl.col("slate") < slate)
        if train.height < 200:
            continue  # too little history before this slate to fit anything honest
        rows = target.filter(pl.col("slate") == slate)
        key = None if memo is None else _digest(
            _memo_version(), repr(settings), _rows_digest(train.select(fitted_on)),
            _rows_digest(rows.select("game_id", *settings.features)))
        predicted = None if key is None else memo.get(key)
        if not isinstance(predicted, pl.DataFrame) or predicted.height != rows.height:
            predicted = fit_models(train, settings).predict(rows)
            if key is not None:
                memo.put(key, predicted)
        parts.append(predicted)
    if not parts:
        raise NotEnoughHistory(
            f"season {season}: not enough earlier games to train on (the first "
            f"{settings.burn_in_seasons} season(s) of data only warm the ratings up)"
        )
    return target.join(pl.concat(parts), on="game_id")


_MEMO_FORMAT = 1  # of what a slate's memo holds: a change makes every old one a miss


@functools.cache
def _memo_version() -> str:
    """What, beside the rows and settings, decides a slate's predictions: the fitting code here
    and the versions of the libraries that fit and hash."""
    return _digest(_MEMO_FORMAT, hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
                   metadata.version("scikit-learn"), metadata.version("numpy"), pl.__version__)


MARKET_FEATURES = FEATURES + ("market_margin", "has_market")


def add_market(features: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """The optional market feature set: the median closing spread as a margin where a line exists
    (our rating margin where none does, with a flag). Reported apart from the headline model."""
    return features.join(vegas_lines(lines), on="game_id", how="left").with_columns(
        market_margin=pl.coalesce(-pl.col("vegas_spread"), pl.col("rating_margin")),
        has_market=pl.col("vegas_spread").is_not_null().cast(pl.Float64),
    ).drop("vegas_spread")


def vegas_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """The median closing spread per game (home side; negative = home favoured)."""
    return lines.filter(pl.col("spread").is_not_null()).group_by("game_id").agg(vegas_spread=pl.col("spread").median())


def prediction_metrics(margin: np.ndarray, predicted: np.ndarray, prob: np.ndarray, spread: np.ndarray | None = None) -> dict:
    """How predictions did on played games: straight-up accuracy, MAE, Brier, log loss, against the
    spread (when `spread` is given) and the number of games."""
    decided = margin != 0
    won = (margin > 0).astype(float)
    p = np.clip(prob, 1e-6, 1 - 1e-6)
    metrics = {
        "games": int(len(margin)),
        "su_accuracy": float(np.mean((predicted[decided] > 0) == (margin[decided] > 0))) if decided.any() else math.nan,
        "mae": float(np.mean(np.abs(predicted - margin))),
        "brier": float(np.mean((prob[decided] - won[decided]) ** 2)),
        "log_loss": float(-np.mean(won[decided] * np.log(p[decided]) + (1 - won[decided]) * np.log(1 - p[decided]))),
        "ats": None,
    }
    if spread is not None:
        has = ~np.isnan(spread)
        cover = margin[has] + spread[has]  # > 0: home covered
        pick_home = predicted[has] + spread[has] > 0
        graded = cover != 0
        if graded.any():
            metrics["ats"] = float(np.mean(pick_home[graded] == (cover[graded] > 0)))
            metrics["ats_games"] = int(graded.sum())
    return metrics


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@dataclass
class BacktestReport:
    """One season's walk-forward backtest: the model's metrics beside the baselines, its calibration and the market's."""

    season: int
    games: int
    model: dict
    baselines: dict[str, dict] = field(default_factory=dict)
    market: dict | None = None  # the model with the market feature set: never the headline
    calibration: list[dict] = field(default_factory=list)  # per probability bin: predicted vs observed

    def as_json(self) -> dict:
        """The report as the JSON stored in model_runs.metrics."""
        data = {"season": self.season, "games": self.games, "model": self.model, "baselines": self.baselines,
                "calibration": self.calibration}
        if self.market is not None:
            data["market"] = self.market
        return data


def evaluate(predictions: pl.DataFrame, lines: pl.DataFrame | None, season: int, train_home_rate: float, train_home_margin: float) -> BacktestReport:
    """Metrics of the model and the baselines on the FBS v FBS games of a backtested season."""
    fbs = predictions.filter(pl.col("is_fbs_game"))
    if lines is not None and not lines.is_empty():
        fbs = fbs.join(vegas_lines(lines), on="game_id", how="left")
    else:
        fbs = fbs.with_columns(vegas_spread=pl.lit(None, pl.Float64))
    margin = fbs["margin"].to_numpy()
    spread = fbs["vegas_spread"].fill_null(np.nan).to_numpy().astype(float)
    model = prediction_metrics(margin, fbs["predicted_margin"].to_numpy(), fbs["home_win_prob"].to_numpy(), spread)
    n = len(margin)
    baselines = {
        "home": prediction_metrics(margin, np.full(n, max(train_home_margin, 0.01)), np.full(n, train_home_rate)),
        "elo": prediction_metrics(margin, fbs["elo_diff"].to_numpy(), fbs["elo_prob"].to_numpy(), spread),
    }
    has = ~np.isnan(spread)
    if has.any():
        vegas_margin = -spread[has]
        baselines["vegas"] = prediction_metrics(margin[has], vegas_margin, _normal_cdf(vegas_margin / VEGAS_SIGMA))
        baselines["vegas"]["note"] = "games with a closing line only"
        baselines["model_on_vegas_games"] = prediction_metrics(
            margin[has], fbs["predicted_margin"].to_numpy()[has], fbs["home_win_prob"].to_numpy()[has])
    return BacktestReport(season=season, games=n, model=model, baselines=baselines,
                          calibration=calibration(fbs["home_win_prob"].to_numpy(), margin > 0))


def calibration(probabilities: np.ndarray, home_won: np.ndarray, bins: int = 10) -> list[dict]:
    """Per tenth of predicted home-win probability: games, mean predicted, observed win rate."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    return [
        {"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "games": int((index == b).sum()),
         "predicted": round(float(probabilities[index == b].mean()), 4),
         "observed": round(float(home_won[index == b].mean()), 4)}
        for b in range(bins) if (index == b).any()
    ]


def home_baseline(features: pl.DataFrame, season: int, settings: ModelSettings) -> tuple[float, float]:
    """(home win rate, mean home margin) of the training games before `season`: the baseline
    that always picks the home team."""
    before = training_rows(features, settings).filter(pl.col("season") < season)
    if before.is_empty():
        return 0.5, 0.0
    return float((before["margin"] > 0).mean()), float(before["margin"].mean())


def backtest(
    features: pl.DataFrame, lines: pl.DataFrame | None, season: int, settings: ModelSettings | None = None,
    *, market: bool = False, memo: Checkpoints | None = None,
) -> BacktestReport:
    """The headline backtest (no betting information); with `market`, also the model with the
    market feature set, in `report.market`. `memo`: see `walk_forward`."""
    settings = settings or ModelSettings()
    predictions = walk_forward(features, season, settings, memo)
    report = evaluate(predictions, lines, season, *home_baseline(features, season, settings))
    if market and lines is not None and not lines.is_empty():
        with_market = walk_forward(add_market(features, lines), season, replace(settings, features=MARKET_FEATURES), memo)
        fbs = with_market.filter(pl.col("is_fbs_game"))
        report.market = prediction_metrics(fbs["margin"].to_numpy(), fbs["predicted_margin"].to_numpy(),
                                 fbs["home_win_prob"].to_numpy())
    return report
