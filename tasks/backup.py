"""Backup tasks: export, verify by restoring, apply retention, restore to a point in time."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from gridiron.storage import (
    BackupInfo,
    apply_retention,
    connect,
    content_checksums,
    create_backup,
    restore,
    verify_backup,
)
from gridiron.storage.backup import RetentionReport
from gridiron.storage.encryption import current_key
from gridiron.storage.restore import RestoreReport


@task(name="create-backup", cache_policy=NO_CACHE)
def create_warehouse_backup(warehouse: str, backups_dir: str, run_id: str | None,
                            encrypted: bool = False) -> tuple[BackupInfo, dict[str, str]]:
    """Export the warehouse (encrypted with GRIDIRON_BACKUP_KEY when `encrypted`: the key is read
    here, never passed as a parameter); returns the backup and the live content checksums."""
    key = current_key() if encrypted else None
    with connect(warehouse) as con:
        info = create_backup(con, backups_dir, run_id=run_id, key=key)
        return info, content_checksums(con)


@task(name="verify-backup", cache_policy=NO_CACHE)
def verify_warehouse_backup(info: BackupInfo, live: dict[str, str], scratch: str) -> BackupInfo:
    return verify_backup(info, live, scratch=scratch)


@task(name="apply-backup-retention", cache_policy=NO_CACHE)
def apply_backup_retention(backups_dir: str, retention_days: float) -> RetentionReport:
    return apply_retention(backups_dir, retention_days)


@task(name="restore-warehouse", cache_policy=NO_CACHE)
def restore_warehouse_to(warehouse: str, backups_dir: str, at: datetime, encrypted: bool = False) -> RestoreReport:
    return restore(warehouse, backups_dir, at, key=current_key() if encrypted else None)
