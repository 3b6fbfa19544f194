"""Model files under `GRIDIRON_HOME/models/`: versioned, described, and a champion.

`models/<version>/model.pkl` holds the fitted pipelines; `models/<version>/card.json` says what they
are: training window, features, settings, backtest metrics, library versions, input signature.
`models/champion.json` names the version that predicts. A challenger becomes champion only if its
backtest on the latest complete season is not worse than the champion's beyond the tolerance.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import numpy
import polars

from gridiron.model.backtest import Models
from gridiron.storage.staging_area import atomic_write


class ModelCompatibilityError(RuntimeError):
    """A model file written by other library versions: retrain rather than trust it."""


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model's pickle depends on."""
    return {"scikit-learn": installed("scikit-learn"), "numpy": numpy.__version__,
            "polars": polars.__version__, "python": platform.python_version()}


@dataclass
class ModelCard:
    """What a trained model version records beside its pickle: when, on what, with which settings and backtests."""

    version: str
    trained_at: str
    training_seasons: list[int]
    features: list[str]
    settings: dict[str, Any]
    backtests: dict[str, dict]  # season -> {"model": metrics, "baselines": {...}}
    train_signature: str
    libraries: dict[str, str] = field(default_factory=library_versions)

    def metrics(self, season: int) -> dict | None:
        """The model's backtest metrics for `season` (None: not backtested on it)."""
        entry = self.backtests.get(str(season))
        return entry["model"] if entry else None


class CheckpointDir:
    """`features.Checkpoints` kept in a directory, one pickle per key (written whole or not at all).
    `prune` removes the keys this store's builds neither read nor wrote, so the directory holds
    one walk's seasons (per feature settings in use), not every walk's."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.touched: set[str] = set()

    def get(self, key: str) -> Any | None:
        """The checkpoint kept under `key`; None when it is missing, damaged or foreign (the walk redoes it)."""
        self.touched.add(key)
        try:
            return pickle.loads((self.directory / f"{key}.pkl").read_bytes())
        except Exception:  # noqa: BLE001 (missing, damaged or foreign: a miss, the walk redoes it)
            return None

    def put(self, key: str, value: Any) -> None:
        """Keep a checkpoint under `key`, written whole or not at all."""
        self.touched.add(key)
        atomic_write(self.directory / f"{key}.pkl", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def prune(self) -> None:
        """Delete the checkpoints this store's builds neither read nor wrote."""
        for path in self.directory.glob("*.pkl"):
            if path.stem not in self.touched:
                path.unlink(missing_ok=True)


def save_model(models_dir: str | Path, models: Models, card: ModelCard) -> Path:
    """Write the model and its card under a temporary name, then rename (never half a model)."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / card.version
    staging = Path(tempfile.mkdtemp(prefix=f".{card.version}.", dir=models_dir))
    try:
        (staging / "model.pkl").write_bytes(pickle.dumps(models))
        (staging / "card.json").write_text(json.dumps(asdict(card), indent=2, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_card(models_dir: str | Path, version: str) -> ModelCard:
    """The card of a stored model version."""
    return ModelCard(**json.loads((Path(models_dir) / version / "card.json").read_text()))


def load_model(models_dir: str | Path, version: str) -> tuple[Models, ModelCard]:
    """A stored model version and its card; refuses a pickle written by another scikit-learn."""
    card = read_card(models_dir, version)
    written, running = card.libraries.get("scikit-learn"), installed("scikit-learn")
    if written != running:
        raise ModelCompatibilityError(
            f"model {version} was written by scikit-learn {written}; this is {running}: "
            "its pickled pipelines may not load or may predict differently; retrain it (the next "
            "`gridiron run` does, or `gridiron run --full-refresh`)"
        )
    models = pickle.loads((Path(models_dir) / version / "model.pkl").read_bytes())
    if not hasattr(models, "slope"):
        raise ModelCompatibilityError(
            f"model {version} was written before margin and probability were one forecast: its "
            "predictions could contradict themselves; retrain it (the next `gridiron run` does)"
        )
    return models, card


def champion_version(models_dir: str | Path) -> str | None:
    """The version of the promoted model (None: none promoted yet)."""
    pointer = Path(models_dir) / "champion.json"
    if not pointer.exists():
        return None
    return json.loads(pointer.read_text())["version"]


def set_champion(models_dir: str | Path, version: str) -> None:
    """Promote `version`: the champion pointer is rewritten atomically."""
    atomic_write(Path(models_dir) / "champion.json", json.dumps({"version": version}).encode())


def promotion_decision(challenger: dict, champion: dict | None, tolerance: dict[str, float]) -> tuple[bool, str]:
    """Promote unless the challenger is worse than the champion beyond the tolerance on a metric
    (Brier and MAE: lower is better; straight-up accuracy: higher is better)."""
    if champion is None:
        return True, "no champion yet"
    worse = []
    for metric, allowed in tolerance.items():
        ours, theirs = challenger[metric], champion[metric]
        delta = (theirs - ours) if metric == "su_accuracy" else (ours - theirs)
        if delta > allowed:
            worse.append(f"{metric} {ours:.4f} vs champion {theirs:.4f} (tolerance {allowed})")
    if worse:
        return False, "worse than the champion: " + "; ".join(worse)
    return True, "not worse than the champion beyond the tolerance"
