"""Backups and recovery on real DuckDB files: round trip, point in time, corruption, retention,
rollback, and a load killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridiron.sources import Partition
from gridiron.storage import (
    SCHEMA_VERSION,
    BackupError,
    RollbackPoint,
    StagingArea,
    apply_retention,
    commit_partitions,
    connect,
    content_checksums,
    create_backup,
    list_backups,
    migrate,
    parse_point_in_time,
    restore,
    verify_backup,
)
from gridiron.storage.backup import check_files
from tests.helpers import REPO, real_rows, staged

T1 = datetime(2026, 11, 1, 6, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """A warehouse of real data: teams, conferences, games and lines of 2023."""
    path = tmp_path / "home" / "gridiron.duckdb"
    area = StagingArea(tmp_path / "home")
    with connect(path) as con:
        migrate(con)
        loads = [staged(area, p, real_rows(p)) for p in (
            Partition("teams"), Partition("conferences"), Partition("games", 2023), Partition("lines", 2023))]
        commit_partitions(con, loads, [], "run-1")
    return path


def checksums(path: Path) -> dict[str, str]:
    with connect(path, read_only=True) as con:
        return content_checksums(con)


def backup_at(warehouse: Path, when: datetime, verify: bool = True):
    with connect(warehouse) as con:
        info = create_backup(con, warehouse.parent / "backups", run_id=f"run-{when:%d}", now=when)
        live = content_checksums(con)
    return verify_backup(info, live) if verify else info


def set_score(warehouse: Path, points: int) -> None:
    with connect(warehouse) as con:
        con.execute("UPDATE games SET home_points = ? WHERE game_id = 401551789", [points])


def score(warehouse: Path) -> int:
    with connect(warehouse, read_only=True) as con:
        return con.execute("SELECT home_points FROM games WHERE game_id = 401551789").fetchone()[0]


def test_round_trip_gives_identical_content_for_every_table(warehouse):
    before = checksums(warehouse)
    info = backup_at(warehouse, T1)
    assert info.verified and set(info.tables) == set(before)
    assert info.tables["games"]["rows"] == 3734
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["run_id"] == "run-01"
    assert set(manifest["files"]) >= {"schema.sql", "load.sql", "games.parquet"}
    assert info.size_bytes < warehouse.stat().st_size  # compressed
    set_score(warehouse, 99)
    report = restore(warehouse, warehouse.parent / "backups", T1 + timedelta(minutes=1), now=T2)
    assert report.restored == info.name
    assert checksums(warehouse) == before


def test_point_in_time_picks_the_latest_backup_at_or_before(warehouse):
    set_score(warehouse, 1)
    backup_at(warehouse, T1)
    set_score(warehouse, 2)
    second = backup_at(warehouse, T2)
    set_score(warehouse, 3)
    backup_at(warehouse, T3)
    set_score(warehouse, 4)
    report = restore(warehouse, warehouse.parent / "backups", T2 + timedelta(hours=12), now=T3 + timedelta(days=1))
    assert report.restored == second.name and score(warehouse) == 2
    # the warehouse it replaced (score 4) was kept as a verified backup of its own
    kept = [info for info in list_backups(warehouse.parent / "backups") if info.reason == "replaced by restore"]
    assert len(kept) == 1 and kept[0].verified and kept[0].name == report.replaced_backup


def test_a_time_before_every_backup_fails_clearly_and_changes_nothing(warehouse):
    backup_at(warehouse, T1)
    before = checksums(warehouse)
    with pytest.raises(BackupError, match="no verified backup at or before 2026-10-31T06:00:00Z; the oldest verified backup is from 2026-11-01T06:00:00Z"):
        restore(warehouse, warehouse.parent / "backups", T1 - timedelta(days=1))
    assert checksums(warehouse) == before
    assert len(list_backups(warehouse.parent / "backups")) == 1


@pytest.mark.parametrize("damage,message", [
    (lambda path: path.write_bytes(path.read_bytes()[:-100] + b"\0" * 100), "file games.parquet does not match its checksum"),
    (lambda path: path.unlink(), "file games.parquet is missing"),
])
def test_a_damaged_backup_is_detected_before_anything_is_replaced(warehouse, damage, message):
    info = backup_at(warehouse, T1)
    set_score(warehouse, 77)
    before = checksums(warehouse)
    damage(info.path / "games.parquet")
    with pytest.raises(BackupError, match=message):
        restore(warehouse, warehouse.parent / "backups", T2)
    assert checksums(warehouse) == before and score(warehouse) == 77
    assert [b.name for b in list_backups(warehouse.parent / "backups")] == [info.name]
    assert not list(warehouse.parent.glob(".*restoring*"))


def flip_bytes(path: Path, offsets: tuple[float, ...] = (0.3, 0.5, 0.7)) -> None:
    """Flip every bit of one byte at each fraction of the file's length: real damage, same size."""
    data = bytearray(path.read_bytes())
    for fraction in offsets:
        data[int(len(data) * fraction)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_newest_backup_is_passed_over_for_the_next_older_whole_one_and_said(warehouse, capsys, monkeypatch):
    """Bytes flipped in one Parquet file of the newest backup: `--list` marks it DAMAGED (its
    manifest still says verified), and `restore --at` uses the backup before it, saying why."""
    from cli import main

    set_score(warehouse, 1)
    older = backup_at(warehouse, T1)
    set_score(warehouse, 2)
    newest = backup_at(warehouse, T2)
    set_score(warehouse, 3)
    flip_bytes(newest.path / "games.parquet")

    home = warehouse.parent
    monkeypatch.setenv("GRIDIRON_HOME", str(home))
    assert main(["backup", "--list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows[older.name].split()[3] == "yes"
    assert rows[newest.name].split()[3] == "DAMAGED"
    assert "file games.parquet does not match its checksum (corrupted); a restore passes over it" in rows[newest.name]

    report = restore(warehouse, home / "backups", T3, now=T3)
    assert report.restored == older.name and score(warehouse) == 1
    assert report.passed_over == (f"backup {newest.name}: file games.parquet does not match its checksum (corrupted)",)
    line = report.describe(T3)
    assert line.startswith(f"warehouse restored from backup {older.name}, made 2026-11-01T06:00:00Z (the next older "
                           f"verified backup: backup {newest.name}: file games.parquet does not match its checksum")
    assert [b.name for b in list_backups(home / "backups")][:2] == [older.name, newest.name]  # nothing deleted


def test_when_every_backup_is_damaged_the_restore_names_each_and_changes_nothing(warehouse):
    first, second = backup_at(warehouse, T1), backup_at(warehouse, T2)
    set_score(warehouse, 9)
    before = checksums(warehouse)
    flip_bytes(first.path / "lines.parquet")
    (second.path / "games.parquet").unlink()
    with pytest.raises(BackupError) as error:
        restore(warehouse, warehouse.parent / "backups", T3)
    assert str(error.value) == (
        f"no verified backup at or before 2026-11-03T06:00:00Z is whole: backup {second.name}: file games.parquet "
        f"is missing; backup {first.name}: file lines.parquet does not match its checksum (corrupted)")
    assert checksums(warehouse) == before
    assert not list(warehouse.parent.glob(".*restoring*"))


def damage_blocks(path: Path) -> list[int]:
    """Flip one byte inside every 256 KiB storage block of a DuckDB file (after its 12 KiB of
    headers): every block in use then fails its checksum when read. The offsets flipped."""
    data = bytearray(path.read_bytes())
    offsets = list(range(12288 + 5000, len(data), 262144))
    for offset in offsets:
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return offsets


def test_a_damaged_warehouse_is_named_with_the_restore_that_brings_it_back(warehouse, capsys, monkeypatch):
    """Real bytes flipped in the warehouse file: `gridiron health` fails its warehouse check naming
    the file and `gridiron restore --at <the newest whole backup>`; that restore brings it back."""
    from cli import main
    from gridiron.config import PipelineConfig
    from gridiron.health import warehouse_check

    older = backup_at(warehouse, T1)
    newest = backup_at(warehouse, T2)
    flip_bytes(newest.path / "games.parquet")  # the newest backup is damaged too: the line names the older
    expected = checksums(warehouse)
    with connect(warehouse) as con:
        con.execute("CHECKPOINT")
    assert len(damage_blocks(warehouse)) >= 3
    config = PipelineConfig(storage={"home": str(warehouse.parent)})

    check = warehouse_check(config)
    assert not check.healthy
    assert check.detail.startswith(f"the warehouse {warehouse} is damaged (")
    assert check.detail.endswith("; restore it with: gridiron restore --at 2026-11-01T06:00:00Z (the newest whole backup)")

    monkeypatch.setenv("GRIDIRON_HOME", str(warehouse.parent))
    assert main(["health"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gridiron: health failed: ")  # then each failing check: cpu too, on a busy machine
    assert f"warehouse: the warehouse {warehouse} is damaged (" in err[-1]
    assert "gridiron restore --at 2026-11-01T06:00:00Z" in err[-1]

    report = restore(warehouse, warehouse.parent / "backups", T1, now=T3)
    assert report.restored == older.name and report.replaced_backup.startswith("unreadable-")
    assert checksums(warehouse) == expected and warehouse_check(config).healthy


def test_verification_catches_a_backup_that_differs_from_the_live_warehouse(warehouse):
    info = backup_at(warehouse, T1, verify=False)
    live = checksums(warehouse)
    live["games"] = "3734:0"
    with pytest.raises(BackupError, match="a restore differs from the live warehouse in games"):
        verify_backup(info, live)
    assert not info.verified


def test_unverified_backups_are_never_restored(warehouse):
    backup_at(warehouse, T1, verify=False)
    with pytest.raises(BackupError, match="there is no verified backup"):
        restore(warehouse, warehouse.parent / "backups", T2)


def test_retention_removes_only_old_backups_and_keeps_the_newest_verified(warehouse):
    now = T3 + timedelta(days=60)
    old_verified = backup_at(warehouse, T1)
    newest_verified = backup_at(warehouse, T2)
    recent_unverified = backup_at(warehouse, now - timedelta(days=1), verify=False)
    report = apply_retention(warehouse.parent / "backups", 30, now=now)
    assert report.deleted == [old_verified.name]
    assert report.kept == [newest_verified.name, recent_unverified.name]
    assert report.total_bytes == newest_verified.size_bytes + recent_unverified.size_bytes
    assert [b.name for b in list_backups(warehouse.parent / "backups")] == report.kept


def test_a_half_written_backup_is_not_listed(warehouse):
    backups = warehouse.parent / "backups"
    (backups / ".20261101T060000.000000Z.abcd").mkdir(parents=True)
    assert list_backups(backups) == []


@pytest.mark.parametrize("text,expected", [
    ("2026-11-27T06:00:00Z", datetime(2026, 11, 27, 6, tzinfo=UTC)),
    ("2026-11-27 06:00", datetime(2026, 11, 27, 6, tzinfo=UTC)),
    ("2026-11-27T08:00:00+02:00", datetime(2026, 11, 27, 6, tzinfo=UTC)),
    ("2026-11-27", datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC)),
])
def test_points_in_time(text, expected):
    assert parse_point_in_time(text) == expected


def test_rollback_point_restores_the_state_before_the_run(warehouse, tmp_path):
    before = checksums(warehouse)
    point = RollbackPoint(warehouse, tmp_path / "home")
    assert point.take()
    set_score(warehouse, 55)
    assert point.restore() == ["games"]
    assert checksums(warehouse) == before
    assert point.restore() == []  # nothing changed since


def test_a_load_killed_with_sigkill_leaves_the_previous_content(warehouse, tmp_path):
    before = checksums(warehouse)
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from gridiron.sources import Partition
        from gridiron.storage import StagingArea, commit_partitions, connect
        from tests.helpers import real_rows, staged

        rows = real_rows(Partition("games", 2023))
        for row in rows:
            row["homePoints"] = 0 if row["homePoints"] is None else row["homePoints"] + 1
        load = staged(StagingArea({str(tmp_path / 'other')!r}), Partition("games", 2023), rows)

        def pause(key, table, count):
            print(f"mid-load {{key}} {{table}}", flush=True)
            time.sleep(60)

        with connect({str(warehouse)!r}) as con:
            commit_partitions(con, [load], [], "doomed", pause)
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = process.stdout.readline()
        assert line.startswith("mid-load games/2023 games"), line
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert checksums(warehouse) == before  # opens, and holds exactly the previous content
    # and the next load completes
    with connect(warehouse) as con:
        commit_partitions(con, [staged(StagingArea(tmp_path / "next"), Partition("games", 2022),
                                       real_rows(Partition("games", 2022)))], [], "next")
        assert con.execute("SELECT count(*) FROM games WHERE season = 2022").fetchone()[0] == 3705


def _backups_state(backups_dir: Path) -> dict[str, dict[str, str]]:
    return {info.name: info.files for info in list_backups(backups_dir)}


def test_a_backup_killed_with_sigkill_leaves_no_backup_that_looks_whole(warehouse, tmp_path):
    """Kill a process that writes backups in a loop, wherever it happens to be: every backup
    listed afterwards is complete and restorable, the older ones are untouched, the warehouse too."""
    kept = backup_at(warehouse, T1)
    before, listed = checksums(warehouse), _backups_state(warehouse.parent / "backups")
    script = tmp_path / "backups.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from gridiron.storage import connect, create_backup
        with connect({str(warehouse)!r}, read_only=True) as con:
            print("started", flush=True)
            while True:
                print("made", create_backup(con, {str(warehouse.parent / 'backups')!r}).name, flush=True)
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert process.stdout.readline().strip() == "started"
        made = [process.stdout.readline().split()[1] for _ in range(2)]  # two backups done, a third under way
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    after = _backups_state(warehouse.parent / "backups")
    assert after[kept.name] == listed[kept.name] and set(made) <= set(after)
    for info in list_backups(warehouse.parent / "backups"):
        check_files(info)  # every listed backup is whole: its files match its manifest
    assert checksums(warehouse) == before


def test_a_disk_that_fills_during_a_backup_fails_it_and_keeps_the_old_ones(warehouse, tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: writes past it fail with EFBIG."""
    kept = backup_at(warehouse, T1)
    before, listed = checksums(warehouse), _backups_state(warehouse.parent / "backups")
    script = tmp_path / "full.py"
    script.write_text(textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from gridiron.storage import connect, create_backup
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
        with connect({str(warehouse)!r}, read_only=True) as con:
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
            try:
                create_backup(con, {str(warehouse.parent / 'backups')!r})
            except Exception as error:
                print("failed:", type(error).__name__, str(error).splitlines()[0], flush=True)
                sys.exit(1)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("failed: BackupError backup ") and (
        "(File too large); nothing was kept of it and the older backups are untouched" in done.stdout)
    assert _backups_state(warehouse.parent / "backups") == listed and kept.name in listed
    assert [p.name for p in (warehouse.parent / "backups").iterdir() if p.name.startswith(".")] == []
    assert checksums(warehouse) == before
