"""Train tasks: the champion's signature, and train/backtest/predict on the planned warehouse."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gridiron import clock
from gridiron.config import PipelineConfig
from gridiron.endpoints import TRAINED_ON
from gridiron.model.backtest import NotEnoughHistory
from gridiron.model.features import BOX_COLUMNS
from gridiron.model.registry import champion_version, read_card
from gridiron.model.training import TrainSettings, train, train_signature
from gridiron.results import TrainResult
from gridiron.storage import MartOutput, PartitionLoad, PlannedWarehouse, StagingArea


@task(name="planned-train-signature", cache_policy=NO_CACHE)
def planned_train_signature(warehouse: str, loads: list[PartitionLoad], settings: TrainSettings) -> str:
    """The signature of what the model would be trained on once this run's partitions load."""
    signatures = PlannedWarehouse(warehouse, loads).signatures(TRAINED_ON)
    return train_signature(signatures, settings, clock.now())


@task(name="current-model-signature", cache_policy=NO_CACHE)
def current_model_signature(models_dir: str) -> str | None:
    version = champion_version(models_dir)
    return read_card(models_dir, version).train_signature if version else None


@task(name="train-models", cache_policy=NO_CACHE)
def train_models(config: PipelineConfig, loads: list[PartitionLoad], signature: str, run_id: str) -> TrainResult:
    logger = get_run_logger()
    planned = PlannedWarehouse(config.warehouse_path, loads)
    try:
        result = train(planned.frame("games"), planned.frame("lines"), str(config.home / "models"),
                       talent=planned.frame("team_talent"), box=planned.frame("game_team_stats", BOX_COLUMNS),
                       settings=TrainSettings.from_config(config), signature=signature,
                       conferences=config.conferences, now=clock.now(), run_id=run_id,
                       checkpoints_dir=str(config.home / "cache" / "features"),
                       backtests_dir=str(config.home / "cache" / "backtests"))
    except NotEnoughHistory as reason:  # the data still loads; the model waits for more seasons
        logger.warning("train: no model trained: %s", reason)
        return TrainResult.not_trained(str(reason))
    area = StagingArea(config.home)
    outputs = [
        MartOutput("game_features", str(area.write_table(result.features, "game_features", signature, 10_000)),
                   result.features.height),
        MartOutput("predictions", str(area.write_table(result.predictions, "predictions", f"{signature}-{result.champion}", 10_000)),
                   result.predictions.height, key=result.champion),
        MartOutput("model_runs", str(area.write_table(result.model_run, "model_runs", result.card.version, 10_000)),
                   1, key=result.card.version),
        MartOutput("forecasts", str(area.write_table(result.forecasts, "forecasts", result.card.version, 10_000)),
                   result.forecasts.height, key=result.card.version),
    ]
    m = result.report.model
    logger.info(
        "train: model %s backtested on %d (%d FBS games): %.1f%% straight up, MAE %.2f, Brier %.3f; %s; "
        "%d upcoming game(s) forecast (%d with little basis), %d past kickoff without a result (unscored)",
        result.card.version, result.report.season, result.report.games, 100 * m["su_accuracy"], m["mae"],
        m["brier"], result.decision, result.predictions.height,
        int(result.predictions["is_low_confidence"].sum()), result.unscored,
    )
    return TrainResult(outputs=outputs, version=result.card.version, champion=result.champion,
                       is_promoted=result.promoted, predictions=result.predictions.height,
                       unscored=result.unscored,
                       report=result.report.as_json())
