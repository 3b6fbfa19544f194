"""validate: check the committed warehouse (integrity and quality); a failure undoes the run."""

from __future__ import annotations

from prefect import get_run_logger

from flows.phases import phase
from gridiron import clock
from gridiron.config import PipelineConfig
from gridiron.planning import table_ages
from gridiron.quality.gate import validation_outcome
from gridiron.quality.report import report_rows, write_report
from gridiron.quality.scoring import timeliness
from gridiron.results import ValidateResult
from gridiron.transforms import PRODUCES
from tasks.collect import read_collect_state
from tasks.validate import (
    assess_warehouse,
    check_integrity,
    emit_quality_breach,
    last_quality_report,
    publish_quality,
)


class ValidationFailed(RuntimeError):
    """The committed warehouse failed its integrity checks or scored below the threshold."""


@phase("validate")
def validate(config: PipelineConfig, run_id: str = "local", changed: bool = True) -> ValidateResult:
    """Check the committed warehouse's integrity and quality; a failure raises and the run rolls back."""
    logger = get_run_logger()
    warehouse = str(config.warehouse_path)
    threshold = config.min_data_quality_score
    integrity = check_integrity(warehouse)
    manifest, _ = read_collect_state(warehouse)
    ages = table_ages(
        manifest.values(), PRODUCES, schedule_interval=config.schedule_interval,
        refresh_age_days=config.source.refresh_age_days, now=clock.now(),
    )
    tables = None if changed else last_quality_report(warehouse, "validate")
    if tables is None:
        tables = assess_warehouse(warehouse, None, config.max_null_percentage, ages)
    else:  # nothing changed: carry the last scores, but data still ages
        logger.info("validate: nothing changed; the tables keep their last scores")
        for table in tables:
            table.timeliness = timeliness(*ages.get(table.table, (None, None)))
    outcome = validation_outcome(tables, integrity.problems, threshold)
    score = outcome.score
    write_report(config.home, run_id, "validate", report_rows(tables, score), threshold)
    notes = [f"Integrity: {'; '.join(integrity.checked)}."] + [f"- **{p}**" for p in integrity.problems]
    publish_quality("validate", tables, score, threshold, notes)
    for breach in outcome.breaches:
        emit_quality_breach(breach.table, breach.severity, breach.score, breach.threshold,
                            breach.failed_checks, "validate", run_id)
    if outcome.fails:
        raise ValidationFailed(outcome.message())
    logger.info("validate: integrity holds (%s); quality %.3f (threshold %.2f)",
                "; ".join(integrity.checked), score, threshold)
    return ValidateResult(score=score, tables={t.table: t.score for t in tables}, checked=integrity.checked)
