"""Backups of the warehouse: compressed, checksummed, verified by a restore, retained, restorable.

A backup is a folder `backups/<UTC timestamp>/` holding DuckDB's `EXPORT DATABASE` (Parquet, zstd:
`schema.sql`, `load.sql`, one Parquet file per table) and `manifest.json`: per table its row count
and content checksum, per file its sha256, the run id, schema version and gridiron version, and
whether a restore of it was verified. It is written under a hidden temporary name and renamed when
complete, so a crash never leaves a folder that looks like a backup.

Restores go into a new file that is swapped in with an atomic rename; the warehouse it replaces is
itself backed up first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb

from gridiron import __version__
from gridiron.progress import step
from gridiron.storage.db import connect, content_checksums, transaction
from gridiron.storage.schema import migrate, schema_version
from gridiron.storage.staging_area import atomic_write

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
_NAME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


class BackupError(RuntimeError):
    """A backup that cannot be made, found, trusted or restored; nothing was changed."""


@dataclass
class BackupInfo:
    """A backup as its manifest describes it: when, which run, per table rows and checksum, per file sha256."""

    path: Path
    created_at: datetime
    run_id: str | None
    reason: str
    schema_version: int
    gridiron_version: str
    duckdb_version: str
    tables: dict[str, dict[str, Any]]  # name -> {"rows": int, "checksum": str}
    files: dict[str, str]  # file name -> sha256
    verified: bool = False
    verified_at: datetime | None = None
    size_bytes: int = 0

    @property
    def name(self) -> str:
        """The backup's folder name (its UTC timestamp)."""
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON (the path is where it lies, not part of it)."""
        data = asdict(self)
        data.pop("path")
        data["created_at"] = self.created_at.isoformat()
        data["verified_at"] = self.verified_at.isoformat() if self.verified_at else None
        return data

    @classmethod
    def read(cls, path: Path) -> BackupInfo:
        """The backup in `path`, from its manifest (BackupError: none, or unreadable)."""
        try:
            data = json.loads((path / MANIFEST).read_text())
            data["created_at"] = datetime.fromisoformat(data["created_at"])
            if data.get("verified_at"):
                data["verified_at"] = datetime.fromisoformat(data["verified_at"])
            return cls(path=path, **data)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise BackupError(f"backup {path.name}: unreadable {MANIFEST} ({error})") from None


@dataclass
class RetentionReport:
    """What retention deleted and kept, and the size of what it kept."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    total_bytes: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(info: BackupInfo) -> None:
    atomic_write(info.path / MANIFEST, json.dumps(info.to_json(), indent=2, sort_keys=True).encode())


def create_backup(
    con: duckdb.DuckDBPyConnection,
    backups_dir: str | Path,
    *,
    run_id: str | None = None,
    reason: str = "run",
    now: datetime | None = None,
) -> BackupInfo:
    """Export the warehouse into `backups_dir/<UTC timestamp>/` with its manifest (not yet verified)."""
    backups_dir = Path(backups_dir)
    backups_dir.mkdir(parents=True, exist_ok=True)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    final = backups_dir / now.strftime(_NAME_FORMAT)
    if final.exists():
        raise BackupError(f"backup {final.name} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=backups_dir))
    try:
        con.execute(f"EXPORT DATABASE '{_sql_text(staging)}' (FORMAT parquet, COMPRESSION zstd)")
        checksums = content_checksums(con)
        tables = {
            name: {"rows": int(value.split(":", 1)[0]), "checksum": value}
            for name, value in checksums.items()
        }
        files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
        info = BackupInfo(
            path=staging, created_at=now, run_id=run_id, reason=reason,
            schema_version=schema_version(con), gridiron_version=__version__,
            duckdb_version=duckdb.__version__, tables=tables, files=files,
            size_bytes=sum(p.stat().st_size for p in staging.iterdir()),
        )
        _write_manifest(info)
        os.replace(staging, final)
    except (duckdb.IOException, OSError) as error:  # a full disk, a quota, a read-only folder
        shutil.rmtree(staging, ignore_errors=True)
        detail = str(error).splitlines()[0]
        reason = "File too large" if "File too large" in detail else "No space left on device" if (
            "No space" in detail) else detail[:200]
        raise BackupError(
            f"backup {final.name} could not be written to {backups_dir} ({reason}); nothing was kept of it "
            "and the older backups are untouched: free space there or lower backup_retention_days"
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    info.path = final
    return info


def check_files(info: BackupInfo) -> None:
    """Every file of the manifest exists with its sha256; `BackupError` naming the first that does not."""
    for name, expected in info.files.items():
        path = info.path / name
        if not path.is_file():
            raise BackupError(f"backup {info.name}: file {name} is missing")
        if _sha256(path) != expected:
            raise BackupError(f"backup {info.name}: file {name} does not match its checksum (corrupted)")


def import_backup(info: BackupInfo, target: Path) -> None:
    """Load a backup into a new DuckDB file `target` (which must not exist).

    `load.sql` names the folder the export was written to (a temporary name, renamed since);
    DuckDB's IMPORT DATABASE reads each table's file from the folder it is given instead (pinned by
    `test_import_reads_a_moved_export_from_its_new_folder`).
    """
    if target.exists():
        raise BackupError(f"{target} already exists")
    with connect(target) as con:
        con.execute(f"IMPORT DATABASE '{_sql_text(info.path)}'")


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


def verify_backup(info: BackupInfo, live: dict[str, str] | None = None, *, scratch: Path | None = None) -> BackupInfo:
    """Prove a backup restorable: files match, and a restore of it holds exactly what the manifest
    (and, when given, the live warehouse's checksums) say. Marks the manifest verified."""
    check_files(info)
    scratch_dir = Path(tempfile.mkdtemp(prefix="gridiron-verify-", dir=scratch))
    try:
        target = scratch_dir / "restored.duckdb"
        import_backup(info, target)
        with connect(target, read_only=True) as con:
            restored = content_checksums(con)
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    expected = {name: table["checksum"] for name, table in info.tables.items()}
    for reference, what in ((expected, "its manifest"), (live, "the live warehouse")):
        if reference is None:
            continue
        differing = sorted(name for name in set(reference) | set(restored) if reference.get(name) != restored.get(name))
        if differing:
            raise BackupError(
                f"backup {info.name}: a restore differs from {what} in {', '.join(differing)}"
            )
    info.verified, info.verified_at = True, datetime.now(UTC)
    _write_manifest(info)
    return info


def list_backups(backups_dir: str | Path) -> list[BackupInfo]:
    """Complete backups (not temporary folders), oldest first; unreadable manifests are skipped."""
    backups_dir = Path(backups_dir)
    if not backups_dir.is_dir():
        return []
    found = []
    for path in backups_dir.iterdir():
        if path.is_dir() and _NAME.match(path.name):
            try:
                found.append(BackupInfo.read(path))
            except BackupError:
                continue
    return sorted(found, key=lambda info: info.created_at)


def apply_retention(backups_dir: str | Path, retention_days: float, now: datetime | None = None) -> RetentionReport:
    """Delete backups older than the retention period, but never the newest verified one."""
    now = now or datetime.now(UTC)
    backups = list_backups(backups_dir)
    verified = [info for info in backups if info.verified]
    protected = verified[-1].name if verified else None
    report = RetentionReport()
    for info in backups:
        if info.created_at < now - timedelta(days=retention_days) and info.name != protected:
            shutil.rmtree(info.path)
            report.deleted.append(info.name)
        else:
            report.kept.append(info.name)
            report.total_bytes += info.size_bytes
    for leftover in Path(backups_dir).glob(".*.*"):  # temporary folders of crashed backups
        if leftover.is_dir() and leftover.stat().st_mtime < (now - timedelta(hours=1)).timestamp():
            shutil.rmtree(leftover, ignore_errors=True)
    return report


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
    candidates = [info for info in backups if info.verified and info.created_at <= at]
    if not candidates:
        oldest = min((info.created_at for info in backups if info.verified), default=None)
        hint = f"; the oldest verified backup is from {oldest:%Y-%m-%dT%H:%M:%SZ}" if oldest else "; there is no verified backup"
        raise BackupError(f"no verified backup at or before {at:%Y-%m-%dT%H:%M:%SZ}{hint}")
    return candidates[-1]


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

    def describe(self, at: datetime) -> str:
        """One line: which backup (and when it was made), what was kept."""
        when = f"{self.restored_created_at:%Y-%m-%dT%H:%M:%SZ}" if self.restored_created_at else "?"
        later = (" (the newest verified backup: no backup is as late as the time asked for)"
                 if at > datetime.now(UTC) else "")
        kept = sum(self.history_kept.values())
        return (f"warehouse restored from backup {self.restored}, made {when}{later}"
                + (f"; the replaced warehouse was kept as {self.replaced_backup}" if self.replaced_backup else "")
                + (f"; {kept} rows of run history kept ({', '.join(f'{t} {n}' for t, n in self.history_kept.items() if n)})"
                   if kept else ""))


def _merge_history(target: Path, replaced: Path) -> dict[str, int]:
    """Copy the run history rows the restored file lacks from the warehouse it replaces."""
    kept: dict[str, int] = {}
    with connect(target) as con:
        migrate(con)  # a backup from an older release lacks the newer history tables
        con.execute(f"ATTACH '{_sql_text(replaced)}' AS replaced (READ_ONLY)")
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
    warehouse: str | Path, backups_dir: str | Path, at: datetime, *, now: datetime | None = None
) -> RestoreReport:
    """Bring the warehouse back to the latest verified backup at or before `at`.

    Checks the backup's files first, restores into a new file, checks its content against the
    manifest, backs up the warehouse it replaces, then swaps the new file in with an atomic rename.
    Any failure before the swap leaves the warehouse untouched.
    """
    warehouse, backups_dir = Path(warehouse), Path(backups_dir)
    info = choose_backup(list_backups(backups_dir), at)
    with step(f"restore: checking the files of backup {info.name}"):
        check_files(info)
    target = warehouse.with_name(f".{warehouse.name}.restoring")
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)
    try:
        with step(f"restore: importing {info.name} into a new file"):
            import_backup(info, target)
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
                replaced = _keep_replaced(warehouse, backups_dir, now)
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
        restored_created_at=info.created_at, history_kept=history,
    )


def _keep_replaced(warehouse: Path, backups_dir: Path, now: datetime | None) -> str:
    """Back up the warehouse about to be replaced; if it cannot be opened, keep its file aside."""
    try:
        with connect(warehouse) as con:
            info = create_backup(con, backups_dir, reason="replaced by restore", now=now)
        return verify_backup(info).name
    except (duckdb.Error, BackupError):
        stamp = (now or datetime.now(UTC)).strftime(_NAME_FORMAT)
        aside = backups_dir / f"unreadable-{stamp}.duckdb"
        shutil.copy2(warehouse, aside)
        return aside.name
