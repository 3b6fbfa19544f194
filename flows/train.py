"""train: features, walk-forward backtest, champion/challenger and predictions, when inputs changed."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger

from gridiron.config import PipelineConfig
from gridiron.model.training import TrainSettings, train_signature
from gridiron.planning import CollectResult
from tasks.train import current_model_signature, train_models


@flow(name="train")
def train(config: PipelineConfig, collected: CollectResult, processed: dict, run_id: str = "local") -> dict:
    logger = get_run_logger()
    if not config.model.enabled:
        logger.info("train: model.enabled is false, no training")
        return {"outputs": []}
    loads = processed["loads"]
    # what the warehouse will hold: this run's passing partitions over the loaded ones
    signatures = {p.key: p.signature for p in collected.partitions
                  if p.key.split("/")[0] in ("games", "lines") and not p.is_changed}
    signatures.update({load.key: load.signature for load in loads if load.endpoint in ("games", "lines")})
    signature = train_signature(signatures, TrainSettings.from_config(config), datetime.now(timezone.utc))
    if current_model_signature(str(config.home / "models")) == signature:
        logger.info("train: same games, lines, settings and code as the champion's: no retraining")
        return {"outputs": []}
    staged = {endpoint: [o.path for load in loads if load.endpoint == endpoint for o in load.outputs if o.table == endpoint]
              for endpoint in ("games", "lines")}
    replaced = {endpoint: [load.season for load in loads if load.endpoint == endpoint] for endpoint in ("games", "lines")}
    return train_models(config, staged["games"], staged["lines"], replaced["games"], replaced["lines"],
                        signature, run_id)
