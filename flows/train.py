"""train: features, walk-forward backtest, champion/challenger and predictions, when inputs changed."""

from __future__ import annotations

from prefect import get_run_logger

from flows.phases import phase
from gridiron.config import PipelineConfig
from gridiron.model.training import TrainSettings
from gridiron.results import ProcessResult, TrainResult
from tasks.train import current_model_signature, planned_train_signature, train_models


@phase("train")
def train(config: PipelineConfig, processed: ProcessResult, run_id: str = "local", full_refresh: bool = False) -> TrainResult:
    """Build the features, backtest and fit the model when its inputs changed, and predict the unplayed games."""
    logger = get_run_logger()
    if not config.model.enabled:
        logger.info("train: model.enabled is false, no training")
        return TrainResult.not_trained("model.enabled is false")
    signature = planned_train_signature(str(config.warehouse_path), processed.loads, TrainSettings.from_config(config))
    if not full_refresh and current_model_signature(str(config.home / "models")) == signature:
        logger.info("train: same games, lines, settings and code as the champion's: no retraining")
        return TrainResult.not_trained("same games, lines, settings and code as the champion's")
    return train_models(config, processed.loads, signature, run_id)
