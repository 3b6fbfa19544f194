"""The decisions the flows delegate to the domain: the gate's outcome, what is carried forward,
the failure summary, the rollback point, the planned warehouse, and the table registry."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest

from gridiron.planning import CollectedPartition, CollectResult, ManifestEntry, calls_remaining_after, carry_forward
from gridiron.quality.gate import Breach, gate_outcome, gate_waves, judge_partition
from gridiron.quality.schemas import SCHEMAS
from gridiron.results import ProcessResult, TrainResult, failure_summary, flow_run_summary, partition_failures
from gridiron.sources import ENDPOINTS, Partition
from gridiron.storage import (
    PartitionLoad,
    PlannedWarehouse,
    QuarantineRecord,
    StagingArea,
    TableOutput,
    commit_partitions,
    connect,
    content_checksums,
    migrate,
    rollback_on_failure,
)
from gridiron.tables import TABLES, produced_by
from gridiron.testing.fake_cfbd import REFERENCE_ROUTES, SEASONAL_ROUTES
from gridiron.transforms import PRODUCES
from tests.helpers import NOW, game, staged

TEAMS = [{"id": team_id, "school": f"Team {team_id}", "conference": "Big Ten"} for team_id in (10, 20, 30)]


def lines_of(game_id: int, season: int = 2023) -> dict:
    return {"id": game_id, "season": season, "week": 1, "seasonType": "regular", "homeTeam": "Team 10",
            "awayTeam": "Team 20", "lines": [{"provider": "consensus", "spread": -3.5, "overUnder": 48.5}]}


@pytest.fixture
def area(tmp_path) -> StagingArea:
    return StagingArea(tmp_path / "home")


def verdicts_for(loads, known):
    import polars as pl

    frames = {load.key: {o.table: pl.read_parquet(o.path) for o in load.outputs} for load in loads}
    return {load.key: judge_partition(load.key, frames[load.key], max_null_percentage=0.5,
                                      known_ids={k: pl.Series(v, dtype=pl.Int64) for k, v in known.items()})
            for load in loads}


# -- the gate -------------------------------------------------------------------------------------
def test_gate_waves_judge_the_team_list_then_what_names_teams_then_what_names_games(area):
    loads = [staged(area, Partition("lines", 2023), [lines_of(1)]),
             staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17)]),
             staged(area, Partition("teams"), TEAMS)]
    assert [[load.key for load in wave] for wave in gate_waves(loads)] == [["teams"], ["games/2023"], ["lines/2023"]]


def test_gate_outcome_passes_quarantines_and_names_each_breach(area):
    teams = staged(area, Partition("teams"), TEAMS)
    good = staged(area, Partition("games", 2022), [game(5, 10, 20, 14, 7, season=2022)])
    bad = staged(area, Partition("games", 2023), [game(1, 10, 99, 24, 17)])  # team 99 is unknown
    loads = [teams, good, bad]
    outcome = gate_outcome(loads, verdicts_for(loads, {"team_id": [10, 20, 30]}), threshold=0.95)
    assert [load.key for load in outcome.passing] == ["teams", "games/2022"]
    assert [q.key for q in outcome.quarantined] == ["games/2023"]
    record = outcome.quarantined[0]
    failures = ["games.away_id: team_id_known fails on 1 row(s), e.g. {game_id: 1, away_id: 99, team: 'Team 99'}",
                "standings.team_id: team_id_known fails on 1 row(s), e.g. {season: 2023, team_id: 99}"]
    assert record.reason == "games/2023: " + "; ".join(failures)
    assert record.checksum == bad.checksum and record.raw_path == bad.raw_path
    assert json.loads(record.failed_checks) == failures
    # games: consistency 1/2 over its two partitions' rows; standings: 3 of its 4 rows consistent
    assert [(t.table, t.score) for t in outcome.tables] == [("games", 0.9), ("standings", 0.95), ("teams", 1.0)]
    assert outcome.breaches == [Breach("games", "warning", 0.9, 0.95, failures[:1])]
    assert outcome.score == 0.95 and not outcome.stops  # the run's mean of its tables meets the threshold


def test_gate_outcome_below_the_threshold_stops_with_a_critical_breach(area):
    bad = staged(area, Partition("games", 2023), [game(1, 10, 99, 24, 17)])
    outcome = gate_outcome([bad], verdicts_for([bad], {"team_id": [10, 20]}), threshold=0.999)
    assert outcome.stops and [(b.table, b.severity) for b in outcome.breaches] == [
        ("games", "warning"), ("standings", "warning"), ("run", "critical")]
    assert outcome.stop_message().startswith(
        f"data quality {outcome.score:.3f} is below min_data_quality_score 1.00; nothing was loaded. Worst checks: ")


# -- collect's carry-forward ---------------------------------------------------------------------
def test_partitions_not_fetched_are_carried_as_the_warehouse_holds_them():
    fetched = [CollectedPartition("games/2023", "new", 10, NOW, "api", calls_remaining=900)]
    manifest = {"games/2022": ManifestEntry("games/2022", "old", NOW - timedelta(days=3), "sig", 7),
                "games/2023": ManifestEntry("games/2023", "older", NOW - timedelta(days=3), "sig", 9)}
    carried = carry_forward(fetched, ["games/2022", "lines/2023", "games/2023"], manifest)
    assert [(c.key, c.checksum, c.rows, c.source, c.was_fetched) for c in carried] == [
        ("games/2023", "new", 10, "api", True), ("games/2022", "old", 7, "warehouse", False)]
    assert calls_remaining_after(carried, 950) == 900
    assert calls_remaining_after(carried[1:], 950) == 950


def test_the_failure_summary_names_every_failed_and_quarantined_partition():
    collected = CollectResult(source="api", partitions=[], failed={"lines/2023": "HTTP 503"}, skipped={})
    processed = ProcessResult(failed={"games/2022": "transform failed"}, quarantined=[
        QuarantineRecord("games/2023", "c", "games/2023: bad ids", "[]", "/x")])
    assert failure_summary(partition_failures(collected, processed)) == (
        "3 partition(s) failed and were not loaded: games/2022: transform failed; "
        "games/2023: quarantined: games/2023: bad ids; lines/2023: HTTP 503")
    assert failure_summary(partition_failures(CollectResult("api", [], {}, {}), ProcessResult())) is None


# -- rollback --------------------------------------------------------------------------------------
def test_rollback_on_failure_undoes_the_block_and_keeps_a_success(tmp_path, area):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        migrate(con)
        commit_partitions(con, [staged(area, Partition("teams"), TEAMS)], [], "run-1")
        before = content_checksums(con)
    with pytest.raises(RuntimeError, match="validate said no"):
        with rollback_on_failure(path, tmp_path / "home"):
            with connect(path) as con:
                con.execute("DELETE FROM teams")
            raise RuntimeError("validate said no")
    with connect(path) as con:
        assert content_checksums(con) == before
    with rollback_on_failure(path, tmp_path / "home") as point:
        with connect(path) as con:
            con.execute("DELETE FROM teams WHERE team_id = 10")
    with connect(path) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    assert not point.copy.exists()  # the copy is removed either way


# -- the warehouse as it will be ------------------------------------------------------------------
def test_the_planned_warehouse_is_stored_rows_minus_replaced_partitions_plus_staged(tmp_path, area):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        migrate(con)
        commit_partitions(con, [
            staged(area, Partition("teams"), TEAMS),
            staged(area, Partition("games", 2022), [game(5, 10, 20, 14, 7, season=2022)]),
            staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17), game(2, 20, 30, 3, 0)]),
        ], [], "run-1")
    replacing = [staged(area, Partition("games", 2023), [game(3, 30, 10, 21, 20)]),
                 staged(area, Partition("teams"), TEAMS[:2] + [{"id": 40, "school": "Team 40"}])]
    planned = PlannedWarehouse(path, replacing)
    assert planned.ids("games", "game_id") == [3, 5]
    assert planned.ids("teams", "team_id") == [10, 20, 40]  # a team list replaces the whole table
    frame = planned.frame("games", ["game_id", "season", "home_points", "start_date"])
    assert sorted(frame.select("game_id", "season", "home_points").rows()) == [(3, 2023, 21), (5, 2022, 14)]
    assert str(frame["start_date"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    assert PlannedWarehouse(path).ids("games", "game_id") == [1, 2, 5]  # nothing staged: as stored
    signatures = planned.signatures(["games"])
    assert set(signatures) == {"games/2022", "games/2023"} and signatures["games/2023"] == replacing[0].signature


def test_the_planned_warehouse_before_any_load_is_the_staged_files_alone(tmp_path, area):
    staged_games = staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17)])
    assert PlannedWarehouse(tmp_path / "none.duckdb", [staged_games]).ids("games", "game_id") == [1]
    assert PlannedWarehouse(tmp_path / "none.duckdb").frame("lines").is_empty()
    assert not (tmp_path / "none.duckdb").exists()  # reading never creates the file


# -- the registry ------------------------------------------------------------------------------------
def test_the_ddl_primary_keys_are_the_registry_keys(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        keys = dict(con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
        ).fetchall())
    assert {name: tuple(keys[name]) for name in TABLES} == {name: t.key for name, t in TABLES.items()}


def test_schemas_produces_and_fake_routes_are_read_from_the_registries():
    assert {name: schema.key for name, schema in SCHEMAS.items()} == {
        name: TABLES[name].key for name in SCHEMAS}
    assert PRODUCES == {endpoint: produced_by(endpoint) for endpoint in ENDPOINTS}
    assert PRODUCES["games"] == ("games", "standings")
    assert {**SEASONAL_ROUTES, **REFERENCE_ROUTES} == {e.route: e.name for e in ENDPOINTS.values()}


def test_every_registered_endpoint_has_one_transform_and_it_gives_the_tables_the_registry_names():
    """Adding an endpoint is its registry row and its transform: each endpoint's transform, on one
    real partition of the bundled snapshot, gives exactly the tables its registry row produces."""
    from gridiron.planning import dependencies_of
    from gridiron.transforms import TRANSFORMS, stage_partition
    from tests.helpers import real_rows

    assert set(TRANSFORMS) == set(ENDPOINTS)
    for name, endpoint in ENDPOINTS.items():
        partition = (Partition(name, 2023, "regular", 1) if endpoint.weekly
                     else Partition(name, 2023) if endpoint.seasonal else Partition(name))
        deps = {d.key: real_rows(d) for d in dependencies_of(partition)}
        staged = stage_partition(partition, real_rows(partition), deps)
        assert tuple(staged.frames) == produced_by(name), name
        assert all(frame.height for frame in staged.frames.values()), name


def test_a_moved_export_imports_from_its_new_folder_on_the_installed_duckdb(tmp_path):
    """Pins what `storage.backup.import_backup` relies on: IMPORT DATABASE reads each table's file
    from the folder it is given, not the (absolute) path EXPORT wrote into load.sql."""
    with duckdb.connect(str(tmp_path / "a.duckdb")) as con:
        con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b VARCHAR)")
        con.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
        con.execute(f"EXPORT DATABASE '{tmp_path / 'written'}' (FORMAT parquet)")
    assert str(tmp_path / "written") in (tmp_path / "written" / "load.sql").read_text()
    (tmp_path / "written").rename(tmp_path / "moved")
    (tmp_path / "written").mkdir()
    (tmp_path / "written" / "t.parquet").write_text("not parquet")  # the old path holds junk now
    with duckdb.connect(str(tmp_path / "b.duckdb")) as con:
        con.execute(f"IMPORT DATABASE '{tmp_path / 'moved'}'")
        assert con.execute("SELECT * FROM t ORDER BY a").fetchall() == [(1, "x"), (2, "y")]


def test_a_runs_peak_memory_is_its_own_not_that_of_the_process_that_started_it():
    """ru_maxrss carries the starting process's peak across exec (a worker's, for a deployment
    run); the run's bookkeeping reads the process's own high-water mark."""
    import subprocess
    import sys

    from tests.helpers import REPO

    measure = "from gridiron.runs import peak_rss_mb; print(peak_rss_mb())"
    starter = ("import subprocess, sys; held = bytearray(600 * 2**20); held[::4096] = b'x' * len(held[::4096]); "
               f"print(subprocess.run([sys.executable, '-c', {measure!r}], capture_output=True, text=True, "
               "check=True).stdout)")
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, cwd=REPO, check=True)
    assert 5 < float(done.stdout) < 300, done.stdout  # the starter held 600 MiB; importing the module costs far less


def test_what_a_phases_flow_run_records_of_its_inputs_stays_small_at_a_hundred_seasons():
    seasonal = [name for name, spec in ENDPOINTS.items() if spec.seasonal and not spec.weekly]
    keys = [f"{name}/{season}" for season in range(1924, 2024) for name in seasonal]
    keys += [f"games_teams/{season}/regular/{week}" for season in range(1924, 2024) for week in range(1, 16)]
    partitions = [CollectedPartition(key=key, checksum="c" * 64, rows=800, fetched_at=NOW, source="api",
                                     raw_path=f"/home/staging/{key}.json.gz", is_changed=True) for key in keys]
    failed = {key: "the CFBD API answered HTTP 500 " * 5 for key in keys[:40]}
    collected = CollectResult(source="api", partitions=partitions, failed=failed, skipped={}, calls_remaining=900)
    loads = [PartitionLoad.from_collected(p, [TableOutput("games", f"/home/staging/{p.key}.parquet", 800)])
             for p in partitions]
    summaries = [flow_run_summary(collected), flow_run_summary(ProcessResult(loads=loads, score=0.97)),
                 flow_run_summary(TrainResult(report={"slates": list(range(5000))}, champion="m1")),
                 flow_run_summary({key: ("v", "w") for key in keys}), flow_run_summary(partitions)]
    from dataclasses import asdict

    full = len(json.dumps([asdict(collected), asdict(ProcessResult(loads=loads))], default=str))
    assert full > 512_000  # what the server was asked to store of process's inputs before: over its default limit
    assert max(len(json.dumps(summary)) for summary in summaries) < 2_000
    changed = summaries[0]["changed"]
    assert changed == {"count": len(keys), "first": sorted(keys)[:10]} and summaries[0]["failed"]["count"] == 40
    assert summaries[1]["loads"]["count"] == len(loads) and summaries[1]["score"] == 0.97
    assert summaries[2]["champion"] == "m1" and "report" not in summaries[2]
    assert summaries[4] == changed  # a list of partitions: by their keys
    assert flow_run_summary(["a", "b"]) == ["a", "b"] and flow_run_summary("run-1") == "run-1"  # small values as they are
