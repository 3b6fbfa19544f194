"""ncaa-health-check: machine, warehouse, services and run history, as an artifact and an event."""

from __future__ import annotations

import os

from prefect import flow, get_run_logger
from prefect.settings import PREFECT_API_URL

from blocks.register import with_stored_api_key
from gridiron.config import load_config
from gridiron.health import Check
from tasks.health import check_health, report_health


class Unhealthy(RuntimeError):
    """At least one health check failed (the run ends Failed so automations can act)."""


@flow(name="ncaa-health-check")
def health_check(config_path: str | None = None) -> list[Check]:
    """Run every health check, record it in the warehouse, and fail the flow run when one is unhealthy."""
    logger = get_run_logger()
    config = load_config(config_path, with_stored_api_key(os.environ))
    checks = check_health(config, PREFECT_API_URL.value())
    report_health(config, checks)
    for check in checks:
        (logger.info if check.healthy else logger.error)("%s %s: %s", "ok" if check.healthy else "FAIL", check.name, check.detail)
    failing = [c for c in checks if not c.healthy]
    if failing:
        raise Unhealthy("unhealthy: " + "; ".join(f"{c.name}: {c.detail}" for c in failing))
    return checks
