"""Restoring the warehouse to a point in time from its backups (`gridiron.storage.backup`).

A restore goes into a new file that is swapped in with an atomic rename; the warehouse it replaces
is itself backed up first, and its run history is kept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path

import duckdb

from gridiron.progress import step
from gridiron.storage.backup import (
    NAME_FORMAT,
    BackupError,
    BackupInfo,
    backup_damage,
    check_files,
    create_backup,
    import_backup,
    list_backups,
    sql_path,
    verify_backup,
)
from gridiron.storage.db import connect, content_checksums, damage_of, transaction
from gridiron.storage.encryption import BackupKey, known_keys
from gridiron.storage.schema import migrate

log = logging.getLogger(__name__)


def parse_point_in_time(text: str) -> datetime:
    """`2026-11-27T16:45:00Z`, `2026-11-27 16:45` (UTC when no offset), or `2026-11-27` (the end of
    that day, UTC)."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.fromisoformat(value).date()
            return datetime.combine(day, time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BackupError(
            f"'{text}' is not a point in time: use an ISO 8601 date or time, e.g. 2026-11-27T06:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def choose_backup(backups: list[BackupInfo], at: datetime) -> BackupInfo:
    """The latest verified backup made at or before `at`."""
    return restorable(backups, at)[0]


def restorable(backups: list[BackupInfo], at: datetime) -> list[BackupInfo]:
    """The verified backups made at or before `at`, newest first (BackupError: there is none)."""
    candidates = [info for info in backups if info.verified and info.created_at <= at]
    if not candidates:
        oldest = min((info.created_at for info in backups if info.verified), default=None)
        hint = f"; the oldest verified backup is from {oldest:%Y-%m-%dT%H:%M:%SZ}" if oldest else "; there is no verified backup"
        raise BackupError(f"no verified backup at or before {at:%Y-%m-%dT%H:%M:%SZ}{hint}")
    return candidates[::-1]


def damaged_warehouse(warehouse: Path, backups_dir: Path, error: BaseException) -> str:
    """One line for a warehouse file DuckDB found damaged (`error`, or the DuckDB error it came
    from): the file, DuckDB's words, and the way back (the restore of the newest backup whose files
    are whole, or a rebuild when there is none)."""
    words = str(damage_of(error) or error).strip().splitlines()[0]
    whole = [info for info in reversed(list_backups(backups_dir)) if info.verified and backup_damage(info) is None]
    way_back = (f"restore it with: gridiron restore --at {whole[0].created_at:%Y-%m-%dT%H:%M:%SZ} (the newest whole backup)"
                if whole else "there is no whole backup: move the file aside and run 'gridiron run --full-refresh'")
    return f"the warehouse {warehouse} is damaged ({words}); {way_back}"


# the run history outlives a restore: these rows of the replaced warehouse are merged back
HISTORY_TABLES = ("pipeline_runs", "pipeline_run_phases", "pipeline_run_errors", "quality_reports", "raw_fetches",
                  "health_checks", "forecasts")


@dataclass(frozen=True)
class RestoreReport:
    """What a restore brought back, and the backup it took of the warehouse it replaced."""

    restored: str
    replaced_backup: str | None
    warehouse: str
    tables: dict[str, int]
    restored_created_at: datetime | None = None
    history_kept: dict[str, int] = field(default_factory=dict)  # table -> rows merged back
    passed_over: tuple[str, ...] = ()  # why each newer backup was not used (damaged files)

    def describe(self, at: datetime) -> str:
        """One line: which backup (and when it was made), what was kept."""
        when = f"{self.restored_created_at:%Y-%m-%dT%H:%M:%SZ}" if self.restored_created_at else "?"
        later = (" (the newest verified backup: no backup is as late as the time asked for)"
                 if at > datetime.now(UTC) else "")
        kept = sum(self.history_kept.values())
        passed = (f" (the next older verified backup: {'; '.join(self.passed_over)})" if self.passed_over else "")
        return (f"warehouse restored from backup {self.restored}, made {when}{later}{passed}"
                + (f"; the replaced warehouse was kept as {self.replaced_backup}" if self.replaced_backup else "")
                + (f"; {kept} rows of run history kept ({', '.join(f'{t} {n}' for t, n in self.history_kept.items() if n)})"
                   if kept else ""))


def _merge_history(target: Path, replaced: Path) -> dict[str, int]:
    """Copy the run history rows the restored file lacks from the warehouse it replaces."""
    kept: dict[str, int] = {}
    with connect(target) as con:
        migrate(con)  # a backup from an older release lacks the newer history tables
        con.execute(f"ATTACH '{sql_path(replaced)}' AS replaced (READ_ONLY)")
        try:
            present = {row[0] for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'replaced'").fetchall()}
            with transaction(con):
                for table in (t for t in HISTORY_TABLES if t in present):
                    before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    if table in ("raw_fetches", "pipeline_run_errors"):  # no key: add the rows it lacks
                        con.execute(f"INSERT INTO {table} SELECT * FROM replaced.{table} EXCEPT SELECT * FROM {table}")
                    else:  # keyed by run: the replaced warehouse's record is the later one
                        con.execute(f"INSERT OR REPLACE INTO {table} BY NAME SELECT * FROM replaced.{table}")
                    kept[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before
        finally:
            con.execute("DETACH replaced")
    return kept


def restore(
    warehouse: str | Path, backups_dir: str | Path, at: datetime, *, now: datetime | None = None,
    key: BackupKey | None = None,
) -> RestoreReport:
    """Bring the warehouse back to the latest verified backup at or before `at` that is whole.

    Checks the backup's files first, restores into a new file, checks its content against the
    manifest, backs up the warehouse it replaces, then swaps the new file in with an atomic rename.
    Any failure before the swap leaves the warehouse untouched. A backup whose files are damaged
    (missing, or not matching their checksums) or whose restore differs from its manifest is passed
    over, with a warning, for the next older verified one; the report says which and why. So is an
    encrypted backup whose key is not at hand, or whose file fails its authentication tag. The
    backup of the replaced warehouse is encrypted with `key` when one is given.
    """
    warehouse, backups_dir = Path(warehouse), Path(backups_dir)
    keys = {**known_keys(), **({key.key_id: key} if key else {})}
    passed_over: list[str] = []
    for info in restorable(list_backups(backups_dir), at):
        try:
            return _restore_from(info, warehouse, backups_dir, now, tuple(passed_over), key, keys)
        except BackupError as error:
            log.warning("restore: %s; trying the next older verified backup", error)
            passed_over.append(str(error))
    raise BackupError(f"no verified backup at or before {at:%Y-%m-%dT%H:%M:%SZ} is whole: {'; '.join(passed_over)}")


def _restore_from(info: BackupInfo, warehouse: Path, backups_dir: Path, now: datetime | None,
                  passed_over: tuple[str, ...], key: BackupKey | None, keys: dict[str, BackupKey]) -> RestoreReport:
    with step(f"restore: checking the files of backup {info.name}"):
        check_files(info, keys)
    target = warehouse.with_name(f".{warehouse.name}.restoring")
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)
    try:
        with step(f"restore: importing {info.name} into a new file"):
            import_backup(info, target, keys)
        with step("restore: checking the restored content against the backup's manifest"):
            with connect(target, read_only=True) as con:
                restored = content_checksums(con)
            expected = {name: table["checksum"] for name, table in info.tables.items()}
            if restored != expected:
                differing = sorted(n for n in set(expected) | set(restored) if expected.get(n) != restored.get(n))
                raise BackupError(f"backup {info.name}: restored content differs in {', '.join(differing)}")
        replaced, history = None, {}
        if warehouse.exists():
            with step("restore: backing up the warehouse it replaces"):
                replaced = _keep_replaced(warehouse, backups_dir, now, key, keys)
            try:
                with step("restore: keeping the replaced warehouse's run history"):
                    history = _merge_history(target, warehouse)
            except duckdb.Error as error:  # an unreadable warehouse: its history stays in `replaced`
                log.warning("restore: the replaced warehouse's run history was not merged: %s", error)
        os.replace(target, warehouse)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)  # belonged to the old file
    return RestoreReport(
        restored=info.name, replaced_backup=replaced, warehouse=str(warehouse),
        tables={name: table["rows"] for name, table in info.tables.items()},
        restored_created_at=info.created_at, history_kept=history, passed_over=passed_over,
    )


def _keep_replaced(warehouse: Path, backups_dir: Path, now: datetime | None, key: BackupKey | None,
                   keys: dict[str, BackupKey]) -> str:
    """Back up the warehouse about to be replaced; if it cannot be opened, keep its file aside."""
    try:
        with connect(warehouse) as con:
            info = create_backup(con, backups_dir, reason="replaced by restore", now=now, key=key)
        return verify_backup(info, keys=keys).name
    except (duckdb.Error, BackupError):
        stamp = (now or datetime.now(UTC)).strftime(NAME_FORMAT)
        aside = backups_dir / f"unreadable-{stamp}.duckdb"
        shutil.copy2(warehouse, aside)
        return aside.name
