"""The train phase's work: features, backtest, final fit, champion/challenger, predictions.

`train` takes every game and line the warehouse will hold once the run loads, and returns the
frames the load commits (`game_features`, `predictions`, `model_runs`) with the decision taken.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from importlib import resources

import polars as pl

from gridiron.config import PipelineConfig
from gridiron.game_weeks import current_season, is_season_complete
from gridiron.model.backtest import (
    BacktestReport,
    ModelSettings,
    NotEnoughHistory,
    backtest,
    fit_models,
    training_rows,
)
from gridiron.model.elo import EloSettings
from gridiron.model.features import FeatureSettings, build_game_features
from gridiron.model.registry import (
    CheckpointDir,
    ModelCard,
    ModelCompatibilityError,
    champion_version,
    load_model,
    promotion_decision,
    read_card,
    save_model,
    set_champion,
)

log = logging.getLogger(__name__)
OUTCOME_COLUMNS = ("margin", "home_win")


@dataclass(frozen=True)
class TrainSettings:
    """The feature and model settings a train run uses, and the tolerance a challenger is held to."""

    features: FeatureSettings = FeatureSettings()
    model: ModelSettings = ModelSettings()
    tolerance: tuple[tuple[str, float], ...] = (("brier", 0.002), ("mae", 0.15), ("su_accuracy", 0.01))

    def as_dict(self) -> dict:
        """The settings as plain JSON data (for the model card and the signature)."""
        return {"features": asdict(self.features), "model": asdict(self.model), "tolerance": dict(self.tolerance)}

    @classmethod
    def from_config(cls, config: PipelineConfig) -> TrainSettings:
        """The settings of the config's `model:` section."""
        m = config.model
        return cls(
            features=FeatureSettings(
                elo=EloSettings(k=m.elo_k, hfa=m.elo_home_advantage, regression=m.elo_regression),
                ridge_alpha=m.rating_alpha, half_life_days=m.rating_half_life_days,
            ),
            model=ModelSettings(margin_alpha=m.margin_alpha, prob_c=m.probability_c),
            tolerance=(("brier", m.tolerance_brier), ("mae", m.tolerance_mae), ("su_accuracy", m.tolerance_accuracy)),
        )

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainSettings:
        """Settings from `as_dict`'s data."""
        features = dict(data["features"])
        features["elo"] = EloSettings(**features["elo"])
        known = {f.name for f in fields(ModelSettings)}  # an older card's retired settings are dropped
        model = {key: value for key, value in data["model"].items() if key in known}
        model["features"] = tuple(model["features"])
        return cls(FeatureSettings(**features), ModelSettings(**model), tuple(data["tolerance"].items()))


def code_fingerprint() -> str:
    """A sha256 of the model package's source: new model code retrains."""
    digest = hashlib.sha256()
    package = resources.files(__package__)
    for name in sorted(p.name for p in package.iterdir() if p.name.endswith(".py")):
        digest.update((package / name).read_bytes())
    return digest.hexdigest()


def train_signature(partition_signatures: Mapping[str, str], settings: TrainSettings, today: datetime) -> str:
    """Same games and lines, same settings, same code, same latest complete season: same model."""
    payload = {
        "partitions": dict(sorted(partition_signatures.items())),
        "settings": settings.as_dict(),
        "code": code_fingerprint(),
        "complete_through": [s for s in (current_season(today.date()), current_season(today.date()) - 1)
                             if is_season_complete(s, today.date())][0],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def latest_complete_season(games: pl.DataFrame, today: datetime) -> int | None:
    """The newest season with results that is complete by `today` (None: none)."""
    seasons = games.filter(pl.col("has_result"))["season"].unique().to_list()
    complete = [s for s in seasons if is_season_complete(s, today.date())]
    return max(complete) if complete else None


@dataclass
class TrainedModel:
    """The frames the load commits and the decision taken (the train phase reports a `results.TrainResult`)."""

    features: pl.DataFrame
    predictions: pl.DataFrame
    forecasts: pl.DataFrame  # the predictions as issued by this train run (`batch`: its version)
    model_run: pl.DataFrame
    card: ModelCard
    report: BacktestReport
    promoted: bool
    decision: str
    champion: str
    unscored: int = 0  # games without a result whose kickoff is past the as-of time: neither scored nor forecast


def _scope(games: pl.DataFrame, conferences: Sequence[str]) -> pl.DataFrame:
    if not conferences:
        return games
    return games.filter(pl.col("home_conference").is_in(list(conferences)) | pl.col("away_conference").is_in(list(conferences)))


def train(
    games: pl.DataFrame,
    lines: pl.DataFrame,
    models_dir: str,
    *,
    talent: pl.DataFrame | None = None,
    box: pl.DataFrame | None = None,
    settings: TrainSettings,
    signature: str,
    conferences: Sequence[str] = (),
    now: datetime | None = None,
    run_id: str | None = None,
    checkpoints_dir: str | None = None,
    backtests_dir: str | None = None,
) -> TrainedModel:
    """`now`: the data's as-of time. Games without a result whose kickoff is after it are
    forecast (`predictions`, each with how much the ratings know of its sides); those whose
    kickoff is past are counted as `unscored`, never forecast.

    `checkpoints_dir`: where the feature walk keeps each season's starting state, so a run that
    changed one season's games walks from that season on (`build_game_features`);
    `backtests_dir`: where the backtest keeps each slate's predictions, so it refits only the
    slates whose inputs changed (`backtest.walk_forward`)."""
    now = now or datetime.now(UTC)
    checkpoints = CheckpointDir(checkpoints_dir) if checkpoints_dir else None
    backtests = CheckpointDir(backtests_dir) if backtests_dir else None
    features = build_game_features(games, settings.features, talent, box, checkpoints)
    season = latest_complete_season(games, now)
    if season is None:
        raise NotEnoughHistory("no complete season with results to backtest: the model cannot be judged")
    report = backtest(features, lines, season, settings.model, memo=backtests)
    final = fit_models(training_rows(features, settings.model), settings.model)
    version = f"{now:%Y%m%dT%H%M%S}-{signature[:8]}"
    card = ModelCard(
        version=version, trained_at=now.isoformat(),
        training_seasons=sorted(training_rows(features, settings.model)["season"].unique().to_list()),
        features=list(settings.model.features), settings=settings.as_dict(),
        backtests={str(season): report.as_json()}, train_signature=signature,
    )
    save_model(models_dir, final, card)

    current = champion_version(models_dir)
    champion_metrics = None
    if current:
        champion_card = read_card(models_dir, current)
        champion_metrics = champion_card.metrics(season)
        if champion_metrics is None:  # the champion was judged on an earlier season: judge it again
            champion_settings = TrainSettings.from_dict(champion_card.settings)
            champion_features = build_game_features(games, champion_settings.features, talent, box, checkpoints)
            champion_metrics = backtest(champion_features, lines, season, champion_settings.model,
                                        memo=backtests).model
    for store in (checkpoints, backtests):
        if store is not None:
            store.prune()
    promoted, decision = promotion_decision(report.model, champion_metrics, dict(settings.tolerance))
    champion, predictor = version, final
    if promoted:
        set_champion(models_dir, version)
    else:
        try:
            predictor, _ = load_model(models_dir, current)
            champion = current
        except (ModelCompatibilityError, OSError) as error:
            log.warning("%s; the new model predicts instead", error)
            set_champion(models_dir, version)
            promoted, decision = True, f"promoted: the champion could not be loaded ({error})"

    scoped_ids = _scope(games, conferences).select("game_id")
    unplayed = features.filter(~pl.col("has_result")).join(scoped_ids, on="game_id")
    upcoming = unplayed.filter(pl.col("start_date") > now)  # kickoff after the data's as-of time
    predictions = (
        predictor.predict(upcoming) if upcoming.height else
        pl.DataFrame(schema={"game_id": pl.Int64, "predicted_margin": pl.Float64, "home_win_prob": pl.Float64})
    ).join(forecast_basis(games, upcoming, now, settings.features.lookback_days), on="game_id", how="left").with_columns(
        model_version=pl.lit(champion), generated_at=pl.lit(now))
    m = report.model
    model_run = pl.DataFrame([{
        "version": version, "trained_at": now, "run_id": run_id,
        "first_season": min(card.training_seasons), "last_season": max(card.training_seasons),
        "backtest_season": season, "games": report.games, "su_accuracy": m["su_accuracy"], "mae": m["mae"],
        "brier": m["brier"], "log_loss": m["log_loss"], "ats": m["ats"], "is_promoted": promoted,
        "decision": decision, "settings": json.dumps(settings.as_dict(), default=str),
        "metrics": json.dumps(report.as_json()), "train_signature": signature,
    }])
    forecasts = predictions.with_columns(batch=pl.lit(version)).select(
        "game_id", "batch", "model_version", "generated_at", "home_win_prob", "predicted_margin")
    return TrainedModel(
        features=features.drop(*OUTCOME_COLUMNS), predictions=predictions, forecasts=forecasts, model_run=model_run,
        card=card, report=report, promoted=promoted, decision=decision, champion=champion,
        unscored=unplayed.height - upcoming.height,
    )


LOW_CONFIDENCE_GAMES = 6  # results on record, for the side with fewer: under this a forecast has little basis


def forecast_basis(games: pl.DataFrame, upcoming: pl.DataFrame, as_of: datetime, lookback_days: float) -> pl.DataFrame:
    """Per upcoming game, how much the ratings know of it: `basis_games`, the results on record in
    the ratings' lookback window for the side with fewer, and `is_low_confidence` when that is
    under `LOW_CONFIDENCE_GAMES` (a lower-division team's first games against an FBS side)."""
    played = games.filter(pl.col("has_result") & (pl.col("start_date") <= as_of)
                          & (pl.col("start_date") > as_of - timedelta(days=lookback_days)))
    record = pl.concat([played.select(team=pl.col("home_id")), played.select(team=pl.col("away_id"))]).group_by(
        "team").agg(games=pl.len().cast(pl.Int64))
    sides = upcoming.select("game_id", "home_id", "away_id")
    return (
        sides.join(record.rename({"team": "home_id", "games": "home_record"}), on="home_id", how="left")
        .join(record.rename({"team": "away_id", "games": "away_record"}), on="away_id", how="left")
        .select("game_id", basis_games=pl.min_horizontal(pl.col("home_record").fill_null(0),
                                                          pl.col("away_record").fill_null(0)).cast(pl.Int32))
        .with_columns(is_low_confidence=pl.col("basis_games") < LOW_CONFIDENCE_GAMES)
    )
