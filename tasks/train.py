"""Train tasks: gather the run's games and lines, train/backtest/predict, stage the marts."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gridiron.config import PipelineConfig
from gridiron.model.backtest import NotEnoughHistory
from gridiron.model.registry import champion_version, read_card
from gridiron.model.training import TrainSettings, train
from gridiron.storage import MartOutput, StagingArea, connect, read_frame, schema_version


def _frame(warehouse: str, table: str, staged: list[str], replaced: list[int]) -> pl.DataFrame:
    """The table as the warehouse will hold it: stored seasons not replaced, plus staged files."""
    parts = []
    with connect(warehouse) as con:
        if schema_version(con) > 0:
            parts.append(read_frame(con, f"SELECT * FROM {table} WHERE NOT list_contains(?, season)", [replaced]))
    parts += [pl.read_parquet(path) for path in staged]
    parts = [p for p in parts if p.height]
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()


@task(name="current-model-signature", cache_policy=NO_CACHE)
def current_model_signature(models_dir: str) -> str | None:
    version = champion_version(models_dir)
    return read_card(models_dir, version).train_signature if version else None


@task(name="train-models", cache_policy=NO_CACHE)
def train_models(
    config: PipelineConfig, staged_games: list[str], staged_lines: list[str], replaced_games: list[int],
    replaced_lines: list[int], signature: str, run_id: str,
) -> dict:
    logger = get_run_logger()
    warehouse, home = str(config.warehouse_path), config.home
    games = _frame(warehouse, "games", staged_games, replaced_games)
    lines = _frame(warehouse, "lines", staged_lines, replaced_lines)
    try:
        result = train(games, lines, str(home / "models"), settings=TrainSettings.from_config(config), signature=signature,
                       conferences=config.conferences, now=datetime.now(timezone.utc), run_id=run_id)
    except NotEnoughHistory as reason:  # the data still loads; the model waits for more seasons
        logger.warning("train: no model trained: %s", reason)
        return {"outputs": [], "skipped": str(reason)}
    area = StagingArea(home)
    outputs = [
        MartOutput("game_features", str(area.write_table(result.features, "game_features", signature, 10_000)),
                   result.features.height),
        MartOutput("predictions", str(area.write_table(result.predictions, "predictions", f"{signature}-{result.champion}", 10_000)),
                   result.predictions.height, key=result.champion),
        MartOutput("model_runs", str(area.write_table(result.model_run, "model_runs", result.card.version, 10_000)),
                   1, key=result.card.version),
    ]
    m = result.report.model
    logger.info(
        "train: model %s backtested on %d (%d FBS games): %.1f%% straight up, MAE %.2f, Brier %.3f; %s",
        result.card.version, result.report.season, result.report.games, 100 * m["su_accuracy"], m["mae"],
        m["brier"], result.decision,
    )
    return {"outputs": outputs, "version": result.card.version, "champion": result.champion,
            "promoted": result.promoted, "predictions": result.predictions.height, "report": result.report.as_json()}
