"""Backup, restore and rollback through the flows and the command line, on a real Prefect server."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from cli import main
from flows import ncaa_pipeline
from gridiron.storage import connect, content_checksums, list_backups
from gridiron.testing.fake_cfbd import Fault
from tests.helpers import API_KEY, change_score, query, write_config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]


def test_each_run_that_changes_data_leaves_one_verified_backup(config_file, small_snapshot, tmp_path):
    first = ncaa_pipeline(config_path=str(config_file))
    backups = list_backups(tmp_path / "home" / "backups")
    assert [b.name for b in backups] == [first.backup] and backups[0].verified
    assert backups[0].run_id == first.run_id
    again = ncaa_pipeline(config_path=str(config_file))
    assert again.backup is None and len(list_backups(tmp_path / "home" / "backups")) == 1
    change_score(small_snapshot, 401551789, 36)
    third = ncaa_pipeline(config_path=str(config_file))
    assert third.backup and len(list_backups(tmp_path / "home" / "backups")) == 2
    assert query(config_file, "SELECT phase, records FROM pipeline_run_phases WHERE phase = 'backup' ORDER BY started_at") == [
        ("backup", 1), ("backup", 0), ("backup", 1)]


def test_no_backup_when_disabled(tmp_path, small_snapshot):
    cfg = write_config(tmp_path / "c.yaml", enable_backup=False, source={"snapshot_dir": str(small_snapshot)},
                       storage={"home": str(tmp_path / "home")})
    assert ncaa_pipeline(config_path=str(cfg)).backup is None
    assert list_backups(tmp_path / "home" / "backups") == []


def test_restore_command_brings_back_an_earlier_run(config_file, small_snapshot, tmp_path, capsys):
    ncaa_pipeline(config_path=str(config_file))
    between = datetime.now(UTC)
    change_score(small_snapshot, 401551789, 40)
    ncaa_pipeline(config_path=str(config_file))
    assert query(config_file, "SELECT home_points FROM games WHERE game_id = 401551789") == [(40,)]
    runs = query(config_file, "SELECT run_id, status FROM pipeline_runs ORDER BY started_at")
    assert main(["--config", str(config_file), "restore", "--at", between.isoformat()]) == 0
    shown = capsys.readouterr()
    out = shown.out
    assert out.startswith("warehouse restored from backup ") and "rows of run history kept" in out
    steps = [re.sub(r" \S*\d{8}\S*", "", line.split(" done in ")[0]) for line in shown.err.splitlines()
             if " done in " in line]  # without the backup's name
    assert steps == ["gridiron: restore: checking the files of backup", "gridiron: restore: importing into a new file",
                     "gridiron: restore: checking the restored content against the backup's manifest",
                     "gridiron: restore: backing up the warehouse it replaces",
                     "gridiron: restore: keeping the replaced warehouse's run history"]
    assert query(config_file, "SELECT home_points FROM games WHERE game_id = 401551789") == [(34,)]
    # the run history outlives the restore: both runs (the backup held only the first's) are there
    assert query(config_file, "SELECT run_id, status FROM pipeline_runs ORDER BY started_at") == runs
    assert len(runs) == 2
    assert main(["--config", str(config_file), "backup", "--list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count(" yes ") == 3 and "replaced by restore" in listing


def test_restore_at_a_future_time_says_it_used_the_newest_backup(config_file, capsys):
    first = ncaa_pipeline(config_path=str(config_file))
    assert main(["--config", str(config_file), "restore", "--at", "2999-01-01T00:00:00Z"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"warehouse restored from backup {first.backup}, made ")
    assert "(the newest verified backup: no backup is as late as the time asked for)" in out


def test_restore_before_every_backup_is_one_line_and_changes_nothing(config_file, tmp_path, capsys):
    ncaa_pipeline(config_path=str(config_file))
    with connect(tmp_path / "home" / "gridiron.duckdb", read_only=True) as con:
        before = content_checksums(con)
    assert main(["--config", str(config_file), "restore", "--at", "2001-09-01"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gridiron: restore failed: no verified backup at or before 2001-09-01T23:59:59Z; "
                   f"the oldest verified backup is from {list_backups(tmp_path / 'home' / 'backups')[0].created_at:%Y-%m-%dT%H:%M:%SZ}"]
    with connect(tmp_path / "home" / "gridiron.duckdb", read_only=True) as con:
        assert content_checksums(con) == before


def test_a_load_that_fails_leaves_the_warehouse_as_it_was(config_file, fake_cfbd, monkeypatch, tmp_path):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    ncaa_pipeline(config_path=str(config_file))
    with connect(tmp_path / "home" / "gridiron.duckdb", read_only=True) as con:
        before = content_checksums(con, ["games", "standings", "raw_manifest", "raw_payloads"])
        taken = con.execute("SELECT game_id FROM games WHERE season = 2022 LIMIT 1").fetchone()[0]

    def clash(rows):  # the API lists a 2022 game again under 2023: a key clash only the load sees
        return rows + [{**rows[0], "id": taken}]

    fake_cfbd.add_fault(Fault("/games", "mutate", params={"year": "2023"}, body=clash, times=-1))
    state = ncaa_pipeline(config_path=str(write_config(
        tmp_path / "stale.yaml", source={"refresh_age_days": 0}, storage={"home": str(tmp_path / "home")})),
        return_state=True)
    assert state.is_failed()
    assert "games (season 2023): the rows clash with rows already stored" in state.message
    assert str(taken) in state.message
    with connect(tmp_path / "home" / "gridiron.duckdb", read_only=True) as con:
        assert content_checksums(con, ["games", "standings", "raw_manifest", "raw_payloads"]) == before
