"""Storage: the Parquet staging area and the DuckDB warehouse, split by job.

- `db`: connections, `transaction()`, frames, content checksums;
- `schema`: the DDL in numbered migrations (keys from the table registry);
- `raw`: the manifest of loaded partitions, their payloads, the fetch history;
- `loading`: the one-transaction commit of a run;
- `planned`: the warehouse as it will be once a run's partitions load;
- `operations`: runs, phases, quality reports, backtests, what `status` shows;
- `staging`, `backup`, `restore`, `rollback`, `runlock`: files under `GRIDIRON_HOME`.
"""

from gridiron.storage.backup import (
    BackupError,
    BackupInfo,
    RetentionReport,
    apply_retention,
    backup_damage,
    create_backup,
    list_backups,
    verify_backup,
)
from gridiron.storage.db import (
    LoadError,
    WarehouseBusy,
    connect,
    content_checksums,
    damage_of,
    existing_parent,
    no_space,
    read_frame,
    transaction,
)
from gridiron.storage.loading import (
    FetchRecord,
    LoadReport,
    MartOutput,
    PartitionLoad,
    QuarantineRecord,
    TableOutput,
    api_fetches,
    commit_partitions,
    table_counts,
    version_updates,
)
from gridiron.storage.operations import (
    WarehouseStatus,
    abandoned_run,
    forecast_scores,
    last_quality_rows,
    ledger_games,
    monitor_frames,
    record_backtest,
    record_health,
    record_quality,
    record_run,
    unscored_games,
    upcoming_forecasts,
    warehouse_status,
    weekly_ledger,
)
from gridiron.storage.planned import PlannedWarehouse
from gridiron.storage.raw import last_calls_remaining, read_manifest, read_raw_payload
from gridiron.storage.restore import RestoreReport, choose_backup, damaged_warehouse, parse_point_in_time, restore
from gridiron.storage.rollback import RollbackPoint, rollback_on_failure
from gridiron.storage.runlock import RunInProgress, lock_holder, lock_state, run_lock
from gridiron.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from gridiron.storage.staging_area import StagingArea

__all__ = [
    "abandoned_run",
    "BackupError", "BackupInfo", "FetchRecord", "LoadError", "LoadReport", "MIGRATIONS", "MartOutput",
    "PartitionLoad", "PlannedWarehouse", "QuarantineRecord", "RestoreReport", "RetentionReport",
    "RollbackPoint", "RunInProgress", "SCHEMA_VERSION", "StagingArea", "TableOutput", "WarehouseBusy", "WarehouseStatus", "api_fetches", "version_updates",
    "apply_retention", "backup_damage", "choose_backup", "commit_partitions", "connect", "content_checksums",
    "create_backup", "damage_of", "damaged_warehouse", "existing_parent", "forecast_scores", "unscored_games", "upcoming_forecasts", "weekly_ledger", "last_calls_remaining", "last_quality_rows", "ledger_games", "list_backups", "lock_holder", "lock_state", "migrate", "monitor_frames", "no_space", "record_health",
    "parse_point_in_time", "read_frame", "read_manifest", "read_raw_payload", "record_backtest",
    "record_quality", "record_run", "restore", "rollback_on_failure", "run_lock", "schema_version", "table_counts",
    "transaction", "verify_backup", "warehouse_status",
]
