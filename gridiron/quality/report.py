"""A run's quality reports on disk (`GRIDIRON_HOME/runs/<run id>/quality-<stage>.json`).

Each phase writes its report here as soon as it has one, and the parent flow records them in the
warehouse at the end of the run, after any rollback, so a failed run keeps its quality history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gridiron.quality.scoring import TableQuality, overall_score


def report_rows(tables: list[TableQuality], score: float | None = None) -> list[dict[str, Any]]:
    """One row per table and one named `overall` (the mean of the tables' scores)."""
    rows = [table.as_row() for table in tables]
    overall = overall_score(tables) if score is None else score
    rows.append({"table_name": "overall", "rows": sum(t.rows for t in tables), "score": overall,
                 "failed_checks": None})
    return rows


def write_report(home: str | Path, run_id: str, stage: str, rows: list[dict[str, Any]], threshold: float) -> Path:
    """Write a stage's quality report as JSON under the run's folder of the home."""
    path = Path(home) / "runs" / run_id / f"quality-{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": stage, "threshold": threshold, "rows": rows}))
    return path


def read_reports(home: str | Path, run_id: str) -> list[dict[str, Any]]:
    """Every stage's quality report of a run (none when the run left none)."""
    folder = Path(home) / "runs" / run_id
    return [json.loads(p.read_text()) for p in sorted(folder.glob("quality-*.json"))] if folder.is_dir() else []


def markdown_summary(stage: str, tables: list[TableQuality], score: float, threshold: float, extra: list[str] = ()) -> str:
    """The report as the Prefect artifact's markdown: the verdict, the score against the threshold, each table."""
    verdict = "passed" if score >= threshold else "**below threshold**"
    lines = [
        f"# Data quality ({stage})",
        "",
        f"Overall score **{score:.3f}** against `min_data_quality_score` {threshold:.2f}: {verdict}.",
        "",
        "| table | rows | completeness | validity | uniqueness | consistency | timeliness | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in tables:
        flag = "" if t.score >= threshold else " ⚠"
        lines.append(
            f"| {t.table}{flag} | {t.rows} | {t.completeness:.3f} | {t.validity:.3f} | {t.uniqueness:.3f} "
            f"| {t.consistency:.3f} | {t.timeliness:.3f} | {t.score:.3f} |"
        )
    failures = [f.describe() for t in tables for f in t.failures]
    if failures:
        lines += ["", "## Failed checks", ""] + [f"- {f}" for f in failures[:20]]
        if len(failures) > 20:
            lines.append(f"- ... and {len(failures) - 20} more")
    if extra:
        lines += ["", *extra]
    return "\n".join(lines)
