"""backup: export the warehouse, prove the backup restorable, apply retention. Also the restore flow."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.phases import phase
from gridiron.config import PipelineConfig, load_config
from gridiron.results import BackupResult
from gridiron.storage import RestoreReport, list_backups, parse_point_in_time, run_lock
from tasks.backup import (
    apply_backup_retention,
    create_warehouse_backup,
    restore_warehouse_to,
    verify_warehouse_backup,
)


@phase("backup")
def backup(config: PipelineConfig, run_id: str | None = None, changed: bool = True) -> BackupResult:
    """Back the warehouse up when the run changed it (or no verified backup exists), verify the backup, apply retention."""
    logger = get_run_logger()
    backups_dir = str(config.home / "backups")
    if not config.enable_backup:
        logger.info("backup: enable_backup is false, no backup made")
        return BackupResult(skipped="enable_backup is false")
    if not config.warehouse_path.exists():
        logger.info("backup: no warehouse yet, nothing to back up")
        return BackupResult(skipped="no warehouse")
    latest = [info for info in list_backups(backups_dir) if info.verified]
    made, skipped = None, None
    if changed or not latest:
        info, live = create_warehouse_backup(str(config.warehouse_path), backups_dir, run_id, config.backup.encryption)
        info = verify_warehouse_backup(info, live, str(config.home))
        made = info.name
        logger.info(
            "backup: %s written and verified by a restore (%d tables, %.1f MB)",
            info.name, len(info.tables), info.size_bytes / 1e6,
        )
    else:
        skipped = f"nothing changed since backup {latest[-1].name}"
        logger.info("backup: %s, none made", skipped)
    retention = apply_backup_retention(backups_dir, config.backup_retention_days)
    if retention.deleted:
        logger.info("backup: retention removed %s", ", ".join(retention.deleted))
    logger.info(
        "backup: %d backups kept, %.1f MB in all", len(retention.kept), retention.total_bytes / 1e6
    )
    return BackupResult(backup=made, skipped=skipped, kept=len(retention.kept), deleted=retention.deleted,
                        total_bytes=retention.total_bytes)


@flow(name="ncaa-restore")
def restore_warehouse(at: str, config_path: str | None = None) -> RestoreReport:
    """Bring the warehouse back to the latest verified backup at or before `at` (ISO 8601, UTC)."""
    logger = get_run_logger()
    config = load_config(config_path)
    moment = parse_point_in_time(at)
    with run_lock(config.home, "restore", "restore"):  # never under a running pipeline
        report = restore_warehouse_to(str(config.warehouse_path), str(config.home / "backups"), moment,
                                      config.backup.encryption)
    logger.info("restore: %s", report.describe(moment))
    return report
