"""The DuckDB warehouse: migrations, one-transaction loads, replace-by-partition, rollback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from gridiron.quality.gate import integrity_problems
from gridiron.sources import Partition
from gridiron.storage import (
    MIGRATIONS,
    SCHEMA_VERSION,
    LoadError,
    StagingArea,
    commit_partitions,
    connect,
    content_checksums,
    migrate,
    read_manifest,
    read_raw_payload,
    schema_version,
)
from tests.helpers import game, staged

TEAMS = [{"id": team_id, "school": f"Team {team_id}", "conference": "Big Ten"} for team_id in (10, 20, 30)]


@pytest.fixture
def warehouse(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    migrate(con)
    yield con
    con.close()


@pytest.fixture
def area(tmp_path) -> StagingArea:
    return StagingArea(tmp_path / "home")


def test_migrations_are_idempotent_and_versioned(tmp_path):
    with connect(tmp_path / "m.duckdb") as con:
        assert migrate(con) == list(range(1, SCHEMA_VERSION + 1))
        assert migrate(con) == []
        assert schema_version(con) == SCHEMA_VERSION
        primary = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        assert {"games", "lines", "standings", "teams", "raw_manifest"} <= {row[0] for row in primary}


def test_a_version_1_warehouse_with_data_is_upgraded_in_place(tmp_path, area):
    with connect(tmp_path / "old.duckdb") as con:
        assert migrate(con, MIGRATIONS[:1]) == [1]  # a warehouse written by the first release
        con.execute("INSERT INTO teams (team_id, school) VALUES (10, 'Team 10')")
        assert schema_version(con) == 1
        assert migrate(con) == list(range(2, SCHEMA_VERSION + 1))
        assert con.execute("SELECT school FROM teams").fetchall() == [("Team 10",)]
        assert con.execute("SELECT count(*) FROM quality_reports").fetchone() == (0,)


def test_a_newer_warehouse_is_refused(tmp_path):
    with connect(tmp_path / "n.duckdb") as con:
        migrate(con)
        con.execute("INSERT INTO schema_version VALUES (99, 'future', now())")
        with pytest.raises(LoadError, match="schema version 99, newer than this gridiron"):
            migrate(con)


def test_commit_loads_tables_manifest_and_payload(warehouse, area):
    loads = [
        staged(area, Partition("teams"), TEAMS),
        staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17), game(2, 20, 30, 3, 0)]),
    ]
    report = commit_partitions(warehouse, loads, [], "run-1")
    assert report.rows_by_table == {"teams": 3, "games": 2, "standings": 3}
    assert warehouse.execute("SELECT game_id, home_points FROM games ORDER BY 1").fetchall() == [(1, 24), (2, 3)]
    manifest = read_manifest(warehouse)
    assert manifest["games/2023"].checksum == loads[1].checksum
    assert manifest["games/2023"].signature == loads[1].signature
    digest, payload = read_raw_payload(warehouse, "games/2023")
    assert digest == loads[1].checksum and payload == Path(loads[1].raw_path).read_bytes()
    assert integrity_problems(warehouse).problems == []  # row counts, keys, foreign keys, queries


def test_a_partition_replaces_only_its_own_season(warehouse, area):
    commit_partitions(warehouse, [
        staged(area, Partition("teams"), TEAMS),
        staged(area, Partition("games", 2022), [game(10, 10, 20, 7, 3, season=2022)]),
        staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17), game(2, 20, 30, 3, 0)]),
    ], [], "run-1")
    # the 2023 partition loses game 2 and changes game 1's score
    commit_partitions(warehouse, [staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 21)])], [], "run-2")
    assert warehouse.execute("SELECT game_id, season, away_points FROM games ORDER BY 1").fetchall() == [
        (1, 2023, 21), (10, 2022, 3)]


def test_failed_check_rolls_back_everything(warehouse, area):
    commit_partitions(warehouse, [
        staged(area, Partition("teams"), TEAMS),
        staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17)]),
    ], [], "run-1")
    before = content_checksums(warehouse)
    good = staged(area, Partition("games", 2022), [game(5, 10, 30, 14, 7, season=2022)])
    bad = staged(area, Partition("games", 2023), [game(1, 10, 20, 0, 3), game(2, 20, 30, 1, 0)])
    bad.outputs[0] = replace(bad.outputs[0], rows=5)  # processed count disagrees with what lands
    with pytest.raises(LoadError, match="games: 2 rows stored for season 2023, 5 processed"):
        commit_partitions(warehouse, [good, bad], [], "run-2")
    assert content_checksums(warehouse) == before


def test_missing_staged_file_rolls_back_everything(warehouse, area):
    commit_partitions(warehouse, [staged(area, Partition("teams"), TEAMS)], [], "run-1")
    before = content_checksums(warehouse)
    load = staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17)])
    Path(load.outputs[1].path).unlink()
    with pytest.raises(duckdb.Error):
        commit_partitions(warehouse, [load], [], "run-2")
    assert content_checksums(warehouse) == before


def test_content_checksums_see_any_value_change(warehouse, area):
    commit_partitions(warehouse, [staged(area, Partition("teams"), TEAMS)], [], "run-1")
    before = content_checksums(warehouse, ["teams"])
    warehouse.execute("UPDATE teams SET mascot = 'Owls' WHERE team_id = 20")
    assert content_checksums(warehouse, ["teams"]) != before


def test_a_locked_warehouse_is_waited_for_then_named(tmp_path):
    """DuckDB locks the file per process both ways: connect() waits out a short hold, and names the
    file and the holder once it has waited `wait_seconds`."""
    import subprocess
    import sys

    from gridiron.storage import WarehouseBusy

    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        migrate(con)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))"), str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match=rf"the warehouse {path} stayed locked by another process for 0.2 s: "
                                                r"IO Error: Could not set lock"):
            connect(path, read_only=True, wait_seconds=0.2)
        with connect(path, read_only=True, wait_seconds=60) as con:  # after the holder lets go
            assert schema_version(con) == SCHEMA_VERSION
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()


def test_an_empty_snapshot_directory_says_so(tmp_path):
    from gridiron.sources import SnapshotSource
    from gridiron.sources.errors import RequestError

    with pytest.raises(RequestError, match=rf"snapshot directory {tmp_path} holds no seasons and no team or "
                                           "conference lists .*check GRIDIRON_SNAPSHOT_DIR"):
        SnapshotSource(tmp_path)


def test_a_payload_many_partitions_read_is_parsed_once_and_each_path_keeps_its_own_rows(area):
    import json

    first = area.write_raw(json.dumps(TEAMS).encode(), "a" * 64)
    second = area.write_raw(json.dumps(TEAMS[:1]).encode(), "b" * 64)
    rows = area.read_shared_raw(str(first))
    assert rows == TEAMS and area.read_shared_raw(str(first)) is rows  # the same parsed rows, not read again
    assert area.read_shared_raw(str(second)) == TEAMS[:1]
    assert StagingArea(area.root.parent).read_shared_raw(str(first)) is rows  # per process, not per area


def test_a_partition_fetched_again_unchanged_counts_as_fetched_then(warehouse, area):
    """An unchanged refetch loads nothing, but the data is as fresh as it: planning (is a week that
    was fetched before it settled settled now?) and staleness read the last fetch of the loaded
    content, never one of other content (changed, then quarantined)."""
    from datetime import UTC, datetime

    from gridiron.storage import FetchRecord

    first, later, other = (datetime(2023, 10, d, 10, tzinfo=UTC) for d in (3, 10, 17))
    load = replace(staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17)]), fetched_at=first)
    commit_partitions(warehouse, [staged(area, Partition("teams"), TEAMS), load],
                      [FetchRecord("games/2023", first, "api", load.checksum, 1, 900, True)], "run-1")
    assert read_manifest(warehouse)["games/2023"].fetched_at == first
    commit_partitions(warehouse, [], [FetchRecord("games/2023", later, "api", load.checksum, 1, 890, False)], "run-2")
    commit_partitions(warehouse, [], [FetchRecord("games/2023", other, "api", "another", 1, 880, True)], "run-3")
    entry = read_manifest(warehouse)["games/2023"]
    assert entry.fetched_at == later and entry.checksum == load.checksum
    teams = staged(area, Partition("teams"), TEAMS)
    assert read_manifest(warehouse)["teams"].fetched_at == teams.fetched_at  # no fetch recorded: the load's
