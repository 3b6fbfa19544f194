"""Quality tasks: judge staged partitions, check the warehouse, publish scores, emit breach events."""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from gridiron.quality.gate import (
    IntegrityReport,
    PartitionVerdict,
    integrity_problems,
    judge_partition,
    judge_partitions,
    warehouse_quality,
)
from gridiron.quality.report import markdown_summary
from gridiron.quality.scoring import TableQuality
from gridiron.storage import (
    PartitionLoad,
    PlannedWarehouse,
    TableOutput,
    connect,
    last_quality_rows,
    migrate,
    record_quality,
)

BREACH_EVENT = "gridiron.quality.breach"


@task(name="known-ids", cache_policy=NO_CACHE)
def known_ids(warehouse: str, passing: list[PartitionLoad]) -> dict[str, pl.Series]:
    """The team and game ids the warehouse will hold once the partitions passed so far load. As
    Series, not lists: Prefect walks a list parameter item by item for every task it is passed to,
    which for ~20,000 game ids and a wave of ~200 weekly partitions cost minutes."""
    planned = PlannedWarehouse(warehouse, passing)
    return {"team_id": pl.Series("team_id", planned.ids("teams", "team_id"), dtype=pl.Int64),
            "game_id": pl.Series("game_id", planned.ids("games", "game_id"), dtype=pl.Int64)}


@task(name="judge-partition", cache_policy=NO_CACHE, task_run_name="judge-{key}")
def judge_staged_partition(
    key: str, outputs: list[TableOutput], known: dict[str, pl.Series], max_null_percentage: float,
    age_days: float | None, allowed_age_days: float | None,
) -> PartitionVerdict:
    frames = {output.table: pl.read_parquet(output.path) for output in outputs}
    return judge_partition(
        key, frames, max_null_percentage=max_null_percentage,
        known_ids=known,
        age_days=age_days, allowed_age_days=allowed_age_days,
    )


@task(name="judge-weeks", cache_policy=NO_CACHE, task_run_name="judge-{label}")
def judge_staged_weeks(
    items: list[tuple[str, list[TableOutput], float | None, float | None]], known: dict[str, pl.Series],
    max_null_percentage: float, label: str,
) -> list[PartitionVerdict]:
    """`judge-partition` for a season's weekly partitions ((key, outputs, age, allowed age) each), in
    one task run."""
    return judge_partitions(
        [(key, {o.table: pl.read_parquet(o.path) for o in outputs}, age, allowed) for key, outputs, age, allowed in items],
        max_null_percentage=max_null_percentage, known_ids=known,
    )


@task(name="check-integrity", cache_policy=NO_CACHE)
def check_integrity(warehouse: str) -> IntegrityReport:
    with connect(warehouse) as con:
        return integrity_problems(con)


@task(name="assess-warehouse", cache_policy=NO_CACHE)
def assess_warehouse(
    warehouse: str, tables: list[str] | None, max_null_percentage: float,
    ages: dict[str, tuple[float | None, float | None]],
) -> list[TableQuality]:
    with connect(warehouse) as con:
        return warehouse_quality(con, tables, max_null_percentage=max_null_percentage, ages=ages)


@task(name="publish-quality", cache_policy=NO_CACHE)
def publish_quality(stage: str, tables: list[TableQuality], score: float, threshold: float, extra: list[str]) -> None:
    """Keyed artifacts: the UI keeps one history per key, so each run's report lands beside the last."""
    create_table_artifact(
        key=f"gridiron-quality-{stage}",
        table=[{k: v for k, v in t.as_row().items() if k != "failed_checks"} | {"passed": t.score >= threshold}
               for t in tables] + [{"table_name": "overall", "score": score, "passed": score >= threshold}],
        description=f"gridiron data quality ({stage}): overall {score:.3f}, threshold {threshold:.2f}",
    )
    create_markdown_artifact(
        key=f"gridiron-quality-{stage}-summary",
        markdown=markdown_summary(stage, tables, score, threshold, extra),
        description=f"gridiron data quality ({stage})",
    )


@task(name="emit-quality-breach", cache_policy=NO_CACHE)
def emit_quality_breach(
    table: str, severity: str, score: float, threshold: float, failed_checks: list[str], stage: str, run_id: str,
) -> None:
    """`gridiron.quality.breach`: table and severity as resource labels (automations filter on
    labels), score, threshold and the failed checks in the payload."""
    emit_event(
        event=BREACH_EVENT,
        resource={
            "prefect.resource.id": f"gridiron.quality.{table}",
            "prefect.resource.name": f"data quality of {table}",
            "gridiron.table": table,
            "gridiron.severity": severity,
            "gridiron.stage": stage,
        },
        payload={"score": score, "threshold": threshold, "failed_checks": failed_checks, "run_id": run_id},
    )


@task(name="record-quality-reports", cache_policy=NO_CACHE)
def record_quality_reports(warehouse: str, run_id: str, reports: list[dict[str, Any]]) -> None:
    with connect(warehouse) as con:
        migrate(con)
        for report in reports:
            record_quality(con, run_id, report["stage"], report["rows"], report["threshold"])


@task(name="last-quality-report", cache_policy=NO_CACHE)
def last_quality_report(warehouse: str, stage: str) -> list[TableQuality] | None:
    """The tables of the most recent report of a stage, to carry over when nothing changed."""
    with connect(warehouse) as con:
        rows = last_quality_rows(con, stage)
    return [TableQuality(**row) for row in rows] or None
