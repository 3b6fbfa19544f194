"""Backups of the warehouse: compressed, checksummed, verified by a restore, retained, restorable.

A backup is a folder `backups/<UTC timestamp>/` holding DuckDB's `EXPORT DATABASE` (Parquet, zstd:
`schema.sql`, `load.sql`, one Parquet file per table) and `manifest.json`: per table its row count
and content checksum, per file its sha256, the run id, schema version and gridiron version, and
whether a restore of it was verified. It is written under a hidden temporary name and renamed when
complete, so a crash never leaves a folder that looks like a backup. With a key
(`gridiron.storage.encryption`) every file but the manifest is encrypted (`<file>.enc`), and the
manifest records the key's id and the encrypted files' sha256.

Restoring one is `gridiron.storage.restore`.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from gridiron import __version__
from gridiron.storage.db import connect, content_checksums
from gridiron.storage.encryption import ALGORITHM, SUFFIX, BackupKey, TagMismatch, decrypt, encrypt, known_keys
from gridiron.storage.schema import schema_version
from gridiron.storage.staging_area import atomic_write

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
NAME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
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
    encryption: dict[str, str] | None = None  # {"algorithm": "AES-256-GCM", "key_id": ...}; None: plain files

    @property
    def stamp(self) -> str:
        """Its time as its folder is named: what an encrypted file is bound to (wherever the folder is)."""
        return self.created_at.astimezone(UTC).strftime(NAME_FORMAT)

    @property
    def key_id(self) -> str | None:
        """The id of the key its files are encrypted with, or None for a plain backup."""
        return self.encryption["key_id"] if self.encryption else None

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
    key: BackupKey | None = None,
) -> BackupInfo:
    """Export the warehouse into `backups_dir/<UTC timestamp>/` with its manifest (not yet
    verified); with `key`, its files encrypted."""
    backups_dir = Path(backups_dir)
    backups_dir.mkdir(parents=True, exist_ok=True)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    final = backups_dir / now.strftime(NAME_FORMAT)
    if final.exists():
        raise BackupError(f"backup {final.name} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=backups_dir))
    try:
        con.execute(f"EXPORT DATABASE '{sql_path(staging)}' (FORMAT parquet, COMPRESSION zstd)")
        if key is not None:
            encrypt_files(staging, final.name, key)
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
            encryption={"algorithm": ALGORITHM, "key_id": key.key_id} if key is not None else None,
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


def encrypt_files(folder: Path, backup: str, key: BackupKey) -> None:
    """Replace each file of an export with its encrypted `<file>.enc` (written whole, then the plain one removed)."""
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST and p.suffix != SUFFIX):
        atomic_write(path.with_name(path.name + SUFFIX), encrypt(path.read_bytes(), key, backup=backup, name=path.name))
        path.unlink()


def encrypt_backup(info: BackupInfo, key: BackupKey) -> BackupInfo:
    """A plain backup encrypted with `key`, keeping its name (its time), run and tables.

    The encrypted copy is made in a hidden folder beside it and proven restorable to the content
    its manifest records (so it is verified) first; then the plain folder is moved aside, the copy takes its name, and the plain one
    is removed. A failure before that leaves the plain backup as it was."""
    if info.encryption is not None:
        return info
    check_files(info)
    staging = Path(tempfile.mkdtemp(prefix=f".{info.name}.encrypting-", dir=info.path.parent))
    try:
        for name in info.files:
            shutil.copy2(info.path / name, staging / name)
        encrypt_files(staging, info.stamp, key)
        encrypted = BackupInfo(**{**asdict(info), "path": staging,
                                  "files": {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()},
                                  "encryption": {"algorithm": ALGORITHM, "key_id": key.key_id}})
        encrypted.size_bytes = sum(p.stat().st_size for p in staging.iterdir())
        verify_backup(encrypted, scratch=info.path.parent, keys={key.key_id: key})  # writes its manifest
        aside = info.path.with_name(f".{info.name}.plain-old")
        os.replace(info.path, aside)
        os.replace(staging, info.path)
        shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    encrypted.path = info.path
    return encrypted


def _key_for(info: BackupInfo, keys: dict[str, BackupKey] | None) -> BackupKey | None:
    """The key that decrypts the backup (None for a plain one); BackupError when this process lacks it."""
    if info.encryption is None:
        return None
    keys = known_keys() if keys is None else keys
    if info.key_id not in keys:
        raise BackupError(f"backup {info.name}: key {info.key_id} not available (set GRIDIRON_BACKUP_KEY to it, or "
                          "list it in GRIDIRON_BACKUP_OLD_KEYS)")
    return keys[info.key_id]


def check_files(info: BackupInfo, keys: dict[str, BackupKey] | None = None) -> None:
    """Every file of the manifest exists with its sha256, and an encrypted backup's key is at hand;
    `BackupError` naming the first problem."""
    _key_for(info, keys)
    for name, expected in info.files.items():
        path = info.path / name
        if not path.is_file():
            raise BackupError(f"backup {info.name}: file {name} is missing")
        if _sha256(path) != expected:
            raise BackupError(f"backup {info.name}: file {name} does not match its checksum (corrupted)")


def backup_damage(info: BackupInfo, keys: dict[str, BackupKey] | None = None) -> str | None:
    """Why the backup cannot be restored now (a file missing or not matching its checksum, or its
    key not available), or None."""
    try:
        check_files(info, keys)
    except BackupError as error:
        return str(error)
    return None


def import_backup(info: BackupInfo, target: Path, keys: dict[str, BackupKey] | None = None) -> None:
    """Load a backup into a new DuckDB file `target` (which must not exist). An encrypted backup is
    decrypted into a scratch folder beside `target` first; a file failing its tag is a BackupError
    naming it.

    `load.sql` names the folder the export was written to (a temporary name, renamed since);
    DuckDB's IMPORT DATABASE reads each table's file from the folder it is given instead (pinned by
    `test_import_reads_a_moved_export_from_its_new_folder`).
    """
    if target.exists():
        raise BackupError(f"{target} already exists")
    key = _key_for(info, keys)
    if key is None:
        with connect(target) as con:
            con.execute(f"IMPORT DATABASE '{sql_path(info.path)}'")
        return
    plain = Path(tempfile.mkdtemp(prefix=f".{target.name}.plain-", dir=target.parent))
    try:
        for name in info.files:
            if name.endswith(SUFFIX):
                try:
                    data = decrypt((info.path / name).read_bytes(), key, backup=info.stamp, name=name[:-len(SUFFIX)])
                except TagMismatch as error:
                    raise BackupError(f"backup {info.name}: file {error}; it is not restored") from None
                (plain / name[:-len(SUFFIX)]).write_bytes(data)
        with connect(target) as con:
            con.execute(f"IMPORT DATABASE '{sql_path(plain)}'")
    finally:
        shutil.rmtree(plain, ignore_errors=True)


def sql_path(path: Path) -> str:
    """A path as the text of a SQL string literal (its quotes doubled)."""
    return str(path).replace("'", "''")


def verify_backup(info: BackupInfo, live: dict[str, str] | None = None, *, scratch: Path | None = None,
                  keys: dict[str, BackupKey] | None = None) -> BackupInfo:
    """Prove a backup restorable: files match, and a restore of it holds exactly what the manifest
    (and, when given, the live warehouse's checksums) say. Marks the manifest verified."""
    check_files(info, keys)
    scratch_dir = Path(tempfile.mkdtemp(prefix="gridiron-verify-", dir=scratch))
    try:
        target = scratch_dir / "restored.duckdb"
        import_backup(info, target, keys)
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
