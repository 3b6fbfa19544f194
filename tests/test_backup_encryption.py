"""Backups encrypted at rest (AES-256-GCM), on real DuckDB files: nothing readable in the files, a
restore that gives back every table exactly, key rotation, a missing key named, and real flipped
bytes refused by the tag with the restore falling back to the next older backup."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridiron.config import ConfigError, load_config
from gridiron.storage import (
    BackupError,
    connect,
    content_checksums,
    create_backup,
    list_backups,
    restore,
    verify_backup,
)
from gridiron.storage.backup import backup_damage
from gridiron.storage.encryption import BackupKey, known_keys
from tests.helpers import seed_monitored_warehouse, write_config

KEY1, KEY2 = BackupKey(bytes(range(32))), BackupKey(bytes(range(32, 64)))
T1 = datetime(2026, 11, 1, 6, tzinfo=UTC)
T2 = T1 + timedelta(days=1)


def b64(key: BackupKey) -> str:
    return base64.b64encode(key.key).decode()


def checksums(path: Path) -> dict[str, str]:
    with connect(path, read_only=True) as con:
        return content_checksums(con)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    return seed_monitored_warehouse(tmp_path / "home")


def backup(warehouse: Path, when: datetime, key: BackupKey | None, keys=None):
    with connect(warehouse) as con:
        info = create_backup(con, warehouse.parent / "backups", now=when, key=key)
        live = content_checksums(con)
    return verify_backup(info, live, keys=keys if keys is not None else ({key.key_id: key} if key else {}))


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_encrypted_backup_holds_nothing_readable_and_restores_every_table_exactly(warehouse, tmp_path):
    info = backup(warehouse, T1, KEY1)
    files = sorted(p.name for p in info.path.iterdir())
    assert "manifest.json" in files and all(name.endswith(".enc") for name in files if name != "manifest.json")
    assert any(name == "games.parquet.enc" for name in files)
    for path in info.path.iterdir():
        if path.name != "manifest.json":
            data = path.read_bytes()
            assert b"PAR1" not in data and b"CREATE TABLE" not in data and b"Michigan" not in data, path.name
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["encryption"] == {"algorithm": "AES-256-GCM", "key_id": KEY1.key_id}
    assert b64(KEY1) not in json.dumps(manifest) and KEY1.key.hex() not in json.dumps(manifest)
    assert info.verified
    before = checksums(warehouse)
    with connect(warehouse) as con:
        con.execute("DELETE FROM games")
    report = restore(warehouse, warehouse.parent / "backups", T1 + timedelta(hours=1), now=T2, key=KEY1)
    assert report.restored == info.name and checksums(warehouse) == before
    replaced = next(b for b in list_backups(warehouse.parent / "backups") if b.name == report.replaced_backup)
    assert replaced.key_id == KEY1.key_id  # the replaced warehouse's backup is encrypted too


def test_a_rotated_key_encrypts_new_backups_and_old_keys_still_decrypt(warehouse, monkeypatch):
    old = backup(warehouse, T1, KEY1)
    new = backup(warehouse, T2, KEY2)
    assert (old.key_id, new.key_id) == (KEY1.key_id, KEY2.key_id)
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY2))
    monkeypatch.setenv("GRIDIRON_BACKUP_OLD_KEYS", b64(KEY1))
    assert set(known_keys()) == {KEY1.key_id, KEY2.key_id}
    assert backup_damage(old) is None and backup_damage(new) is None
    before = checksums(warehouse)
    report = restore(warehouse, warehouse.parent / "backups", T1 + timedelta(hours=1), now=T2 + timedelta(hours=1))
    assert report.restored == old.name and checksums(warehouse) == before

    monkeypatch.delenv("GRIDIRON_BACKUP_OLD_KEYS")  # the old key is gone: its backup is named, never used
    assert backup_damage(old) == (f"backup {old.name}: key {KEY1.key_id} not available (set GRIDIRON_BACKUP_KEY to "
                                  "it, or list it in GRIDIRON_BACKUP_OLD_KEYS)")
    with pytest.raises(BackupError, match=f"key {KEY1.key_id} not available"):
        restore(warehouse, warehouse.parent / "backups", T1 + timedelta(hours=1), now=T2 + timedelta(hours=2))
    assert checksums(warehouse) == before


@pytest.mark.parametrize("file", ["games.parquet.enc", "load.sql.enc", "schema.sql.enc"])
def test_one_flipped_byte_fails_the_tag_and_the_restore_falls_back_to_the_older_backup(warehouse, monkeypatch, file):
    """The byte is flipped and the file's sha256 in the manifest rewritten to match, so only the
    GCM tag can tell: the restore names the file and uses the next older verified backup."""
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY1))
    older = backup(warehouse, T1, KEY1)
    with connect(warehouse) as con:
        con.execute("UPDATE pipeline_runs SET duration_seconds = 99")
    newer = backup(warehouse, T2, KEY1)
    path = newer.path / file
    flip_byte(path)
    manifest = json.loads((newer.path / "manifest.json").read_text())
    import hashlib

    manifest["files"][file] = hashlib.sha256(path.read_bytes()).hexdigest()
    (newer.path / "manifest.json").write_text(json.dumps(manifest))
    report = restore(warehouse, warehouse.parent / "backups", T2 + timedelta(hours=1), now=T2 + timedelta(hours=2))
    assert report.restored == older.name
    assert report.passed_over == (f"backup {newer.name}: file {file[:-4]} fails its authentication tag (changed "
                                  "since it was encrypted, or damaged); it is not restored",)


def test_a_flipped_byte_with_the_manifest_untouched_is_caught_by_the_checksum_first(warehouse, monkeypatch):
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY1))
    info = backup(warehouse, T1, KEY1)
    flip_byte(info.path / "games.parquet.enc")
    assert backup_damage(info) == f"backup {info.name}: file games.parquet.enc does not match its checksum (corrupted)"


def test_the_key_is_refused_in_the_config_and_required_in_the_environment(tmp_path):
    config = write_config(tmp_path / "c.yaml", backup={"encryption": True, "key": b64(KEY1)})
    with pytest.raises(ConfigError, match="a backup key never belongs in the config file: set GRIDIRON_BACKUP_KEY"):
        load_config(str(config), {})
    config = write_config(tmp_path / "c.yaml", backup={"encryption": True})
    with pytest.raises(ConfigError, match="backup.encryption: backup encryption is on but GRIDIRON_BACKUP_KEY is not set"):
        load_config(str(config), {})
    with pytest.raises(ConfigError, match="GRIDIRON_BACKUP_KEY must be base64 of 32 bytes"):
        load_config(str(config), {"GRIDIRON_BACKUP_KEY": base64.b64encode(b"short").decode()})
    with pytest.raises(ConfigError, match="GRIDIRON_BACKUP_OLD_KEYS is not base64"):
        load_config(str(config), {"GRIDIRON_BACKUP_KEY": b64(KEY1), "GRIDIRON_BACKUP_OLD_KEYS": "not base64!"})
    assert load_config(str(config), {"GRIDIRON_BACKUP_KEY": b64(KEY1)}).backup.encryption
    assert repr(KEY1) == f"BackupKey({KEY1.key_id})"  # a key in a log line or a traceback is its id only


def test_backup_list_says_which_backups_are_encrypted_and_which_key_is_missing(warehouse, monkeypatch, capsys):
    from cli import main

    plain, encrypted = backup(warehouse, T1, None), backup(warehouse, T2, KEY2)
    monkeypatch.setenv("GRIDIRON_HOME", str(warehouse.parent))
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY2))
    assert main(["backup", "--list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert " yes " in lines[plain.name] and "encrypted" not in lines[plain.name]
    assert " yes " in lines[encrypted.name] and f"(encrypted, key {KEY2.key_id})" in lines[encrypted.name]
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY1))  # rotated, without listing the old key
    assert main(["backup", "--list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert " NO KEY " in lines[encrypted.name] and f"key {KEY2.key_id} not available" in lines[encrypted.name]
    assert " yes " in lines[plain.name]


def test_encrypt_existing_encrypts_the_plain_backups_keeping_their_times_and_content(warehouse, monkeypatch, capsys):
    from cli import main

    first, second = backup(warehouse, T1, None), backup(warehouse, T2, None)
    monkeypatch.setenv("GRIDIRON_HOME", str(warehouse.parent))
    assert main(["backup", "--encrypt-existing"]) == 1  # no key: one line naming the variable
    assert "GRIDIRON_BACKUP_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", b64(KEY1))
    assert main(["backup", "--encrypt-existing"]) == 0
    assert "2 plain backups encrypted" in capsys.readouterr().out
    after = {info.name: info for info in list_backups(warehouse.parent / "backups")}
    assert set(after) == {first.name, second.name}  # the same names: the same points in time
    for before in (first, second):
        info = after[before.name]
        assert info.key_id == KEY1.key_id and info.verified and info.created_at == before.created_at
        assert info.tables == before.tables and not list(info.path.glob("*.parquet"))
    assert not [p for p in (warehouse.parent / "backups").iterdir() if p.name.startswith(".")]
    original = checksums(warehouse)
    with connect(warehouse) as con:
        con.execute("DELETE FROM games")
    restore(warehouse, warehouse.parent / "backups", T1 + timedelta(hours=1), now=T2 + timedelta(hours=1), key=KEY1)
    assert checksums(warehouse) == original
    assert main(["backup", "--encrypt-existing"]) == 0
    assert "no plain backups" in capsys.readouterr().out
