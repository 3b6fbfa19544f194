"""Storage: the Parquet staging area and the DuckDB warehouse."""

from gridiron.storage.backup import (
    BackupError,
    BackupInfo,
    apply_retention,
    create_backup,
    list_backups,
    parse_point_in_time,
    restore,
    verify_backup,
)
from gridiron.storage.rollback import RollbackPoint
from gridiron.storage.staging import StagingArea
from gridiron.storage.warehouse import (
    SCHEMA_VERSION,
    TABLES,
    FetchRecord,
    LoadError,
    LoadReport,
    MartOutput,
    PartitionLoad,
    QuarantineRecord,
    TableOutput,
    commit_partitions,
    connect,
    content_checksums,
    last_calls_remaining,
    migrate,
    read_frame,
    read_manifest,
    read_raw_payload,
    record_quality,
    record_run,
    schema_version,
    table_counts,
)

__all__ = [
    "BackupError", "BackupInfo", "RollbackPoint", "apply_retention", "create_backup",
    "list_backups", "parse_point_in_time", "restore", "verify_backup",
    "SCHEMA_VERSION", "TABLES", "FetchRecord", "LoadError", "LoadReport", "MartOutput", "PartitionLoad", "QuarantineRecord", "record_quality",
    "StagingArea", "TableOutput", "commit_partitions", "connect", "content_checksums",
    "last_calls_remaining", "migrate", "read_frame", "read_manifest", "read_raw_payload", "record_run",
    "schema_version", "table_counts",
]
