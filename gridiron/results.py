"""What each phase of a run hands on, and what the run returns: frozen, the same fields on every path.

`CollectResult` (in `gridiron.planning`) and `LoadReport` (in `gridiron.storage.loading`) stand
beside these. Each result's `records` is what the run's bookkeeping counts for its phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gridiron.planning import CollectResult
from gridiron.storage.loading import MartOutput, PartitionLoad, QuarantineRecord


@dataclass(frozen=True)
class ProcessResult:
    """The process phase: partitions staged and through the gate, those held back, those failed.

    `loads` passed the quality gate and are what load commits; `quarantined` failed their schema
    and keep their payload in `raw_quarantine`; `failed` maps partition key -> error for those
    whose transform failed. `score` is the gate's overall score (None when nothing was judged).
    """

    loads: list[PartitionLoad] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    score: float | None = None

    @property
    def rows(self) -> int:
        """Rows staged over every passing partition's tables."""
        return sum(output.rows for load in self.loads for output in load.outputs)

    @property
    def records(self) -> int:
        """The phase's record count: the rows it staged."""
        return self.rows


@dataclass(frozen=True)
class TrainResult:
    """The train phase: the marts to commit (none when it did not train) and what it decided.

    `skipped` says why nothing was trained (None when a model was); `version` is the model just
    trained, `champion` the model whose predictions are committed, `report` its backtest.
    """

    outputs: list[MartOutput] = field(default_factory=list)
    skipped: str | None = None
    version: str | None = None
    champion: str | None = None
    is_promoted: bool = False
    predictions: int = 0  # games forecast: no result yet, kickoff after the data's as-of time
    unscored: int = 0  # games past kickoff with no result: neither scored nor forecast
    report: dict[str, Any] | None = None

    @classmethod
    def not_trained(cls, reason: str) -> TrainResult:
        """A train phase that fitted nothing, with why."""
        return cls(skipped=reason)

    @property
    def records(self) -> int:
        """Rows of the trained marts it hands to load."""
        return sum(output.rows for output in self.outputs)


@dataclass(frozen=True)
class ValidateResult:
    """The validate phase: the overall quality score, per table scores, the integrity checks run."""

    score: float
    tables: dict[str, float]
    checked: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        """The phase's record count: the tables it scored."""
        return len(self.tables)


@dataclass(frozen=True)
class BackupResult:
    """The backup phase: the backup made (None with the reason in `skipped`), and retention."""

    backup: str | None = None
    skipped: str | None = None
    kept: int = 0
    deleted: list[str] = field(default_factory=list)
    total_bytes: int = 0

    @property
    def records(self) -> int:
        """1 when the phase made a backup, else 0."""
        return 1 if self.backup else 0


@dataclass(frozen=True)
class PipelineResult:
    """What `ncaa_pipeline()` returns for a completed run (a failed run raises instead).

    - `run_id`: the Prefect flow run id (`local` outside a flow run); `source`: `api` or `snapshot`;
    - `partitions_loaded`: keys committed this run (e.g. `games/2023`); `rows_by_table`: rows
      committed per table, marts included; `rows_loaded`: their sum;
    - `quarantined`: partition keys held back by the quality gate; `not_fetched`: partitions due
      but left for the next run by the API call budget (key -> reason);
    - `quality`: the validate phase's overall score; `model`: the champion model version whose
      predictions this run committed (None when it did not train); `backup`: the backup made
      (None when none was needed); `warehouse`: the DuckDB file's path;
    - `forecasts`: the upcoming games (kickoff after the data's as-of time) the champion forecast
      this run (None when it did not train); `unscored`: games past kickoff with no result yet.
    """

    run_id: str
    source: str
    partitions_loaded: list[str]
    rows_by_table: dict[str, int]
    quarantined: list[str]
    not_fetched: dict[str, str]
    quality: float
    model: str | None
    backup: str | None
    warehouse: str
    forecasts: int | None = None
    unscored: int = 0

    @property
    def rows_loaded(self) -> int:
        """Rows loaded by the run over every table."""
        return sum(self.rows_by_table.values())


def partition_failures(collected: CollectResult, processed: ProcessResult) -> dict[str, str]:
    """Partition key -> why it was not loaded this run (failed to fetch, to process, or quarantined)."""
    return {
        **collected.failed, **processed.failed,
        **{q.key: f"quarantined: {q.reason}" for q in processed.quarantined},
    }


def failure_summary(failures: Mapping[str, str]) -> str | None:
    """One line naming every partition that failed or was held back this run (None: none did);
    `failures` is what `partition_failures` returns."""
    if not failures:
        return None
    return f"{len(failures)} partition(s) failed and were not loaded: " + "; ".join(
        f"{key}: {message}" for key, message in sorted(failures.items())
    )


SUMMARY_KEYS = 10  # how many keys a summary names; the rest are counted


def flow_run_summary(value: Any) -> Any:
    """What a phase's flow run records of one of its inputs: a phase result or a list or mapping of
    partitions as counts and its first few keys, never in full, so what the Prefect server stores
    (and shows) for a run stays small at any number of seasons; other values as they are.

    The phase still receives the value itself: this is only its record on the server, which
    refuses parameters over 512 KB by default (Prefect 3.9), about 27 seasons of full results.
    """
    if isinstance(value, CollectResult):
        return {"source": value.source, "partitions": len(value.partitions),
                "changed": _keys(p.key for p in value.changed), "failed": _keys(value.failed),
                "not_fetched": _keys(value.held_for_quota), "calls_remaining": value.calls_remaining}
    if isinstance(value, ProcessResult):
        return {"loads": _keys(load.key for load in value.loads), "rows": value.rows,
                "quarantined": _keys(q.key for q in value.quarantined), "failed": _keys(value.failed),
                "score": value.score}
    if isinstance(value, TrainResult):
        return {"outputs": _keys(output.table for output in value.outputs), "rows": value.records,
                "skipped": value.skipped, "version": value.version, "champion": value.champion,
                "is_promoted": value.is_promoted, "predictions": value.predictions,
                "unscored": value.unscored}
    if isinstance(value, Mapping) and len(value) > SUMMARY_KEYS:
        return _keys(value)
    if isinstance(value, (list, tuple)) and len(value) > SUMMARY_KEYS:
        return _keys(getattr(item, "key", None) or type(item).__name__ for item in value)
    return value


def _keys(keys: Any) -> dict[str, Any]:
    """{"count": how many, "first": the first SUMMARY_KEYS of them in order}."""
    ordered = sorted(str(key) for key in keys)
    return {"count": len(ordered), "first": ordered[:SUMMARY_KEYS]}
