"""The pipeline flows on a real Prefect server, real DuckDB files and real (small) snapshot data."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows import ncaa_pipeline
from flows.collect import collect
from gridiron.config import load_config
from gridiron.testing.snapshots import copy_snapshot
from tests.helpers import change_score, query, staged_files, write_config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]


def test_first_run_builds_the_warehouse_from_real_data(config_file):
    result = ncaa_pipeline(config_path=str(config_file))
    assert result.source == "snapshot"
    assert sorted(result.partitions_loaded) == sorted([
        "games/2022", "games/2023", "lines/2023", "teams_fbs/2023", "stats_season/2023",
        "teams", "conferences"])
    assert query(config_file, "SELECT season, count(*) FROM games GROUP BY 1 ORDER BY 1") == [
        (2022, 3705), (2023, 3734)]
    assert query(config_file, "SELECT count(*) FROM lines") == [(2934,)]  # provider rows in lines/2023
    assert query(
        config_file,
        "SELECT home_team, home_points, away_team, away_points, season_type FROM games WHERE game_id = 401551789",
    ) == [("Michigan", 34, "Washington", 13, "postseason")]
    assert query(config_file, "SELECT wins, losses, win_pct FROM standings WHERE season = 2023 AND team_id = 130") == [
        (15, 0, 1.0)]
    # stats map school names to ids through that season's FBS list: every FBS team has stats
    assert query(config_file, "SELECT count(DISTINCT team_id) FROM team_season_stats") == [(133,)]
    run = query(config_file, "SELECT status, partitions_changed, records_loaded, peak_rss_mb FROM pipeline_runs")
    assert run[0][:3] == ("completed", 7, result.rows_loaded) and run[0][3] > 50
    phases = query(config_file, "SELECT phase, status, records FROM pipeline_run_phases ORDER BY started_at")
    assert [(p, s) for p, s, _ in phases] == [
        ("collect", "completed"), ("process", "completed"), ("train", "completed"), ("load", "completed"),
        ("validate", "completed"), ("backup", "completed")]
    assert phases[0][2] == sum(r for (r,) in query(config_file, "SELECT rows FROM raw_manifest"))


def test_rerun_without_change_loads_nothing(config_file):
    ncaa_pipeline(config_path=str(config_file))
    loaded_at = query(config_file, "SELECT partition_key, loaded_at FROM raw_manifest ORDER BY 1")
    files = staged_files(config_file)
    result = ncaa_pipeline(config_path=str(config_file))
    assert result.partitions_loaded == [] and result.rows_loaded == 0
    assert query(config_file, "SELECT partition_key, loaded_at FROM raw_manifest ORDER BY 1") == loaded_at
    assert staged_files(config_file) == files
    runs = query(config_file, "SELECT partitions_changed, records_processed, records_loaded FROM pipeline_runs ORDER BY started_at")
    # processed: the staged rows of the 7 partitions; loaded: those plus the trained marts (7,440: features
    # and the model run; no game kicks off after now, so no predictions and no forecasts)
    assert runs[0] == (7, 22270, 29710)
    assert runs[1] == (0, 0, 0)


def test_one_changed_game_reprocesses_only_its_partition(config_file, small_snapshot):
    ncaa_pipeline(config_path=str(config_file))
    before = query(config_file, "SELECT partition_key, loaded_at FROM raw_manifest ORDER BY 1")
    change_score(small_snapshot, 401551789, 35)
    result = ncaa_pipeline(config_path=str(config_file))
    assert result.partitions_loaded == ["games/2023"]
    staging = {t: n for t, n in result.rows_by_table.items() if t not in ("game_features", "predictions", "model_runs", "forecasts")}
    assert staging == {"games": 3734, "standings": 703}
    assert result.rows_by_table["model_runs"] == 1  # a changed game retrains
    assert query(config_file, "SELECT home_points FROM games WHERE game_id = 401551789") == [(35,)]
    assert query(config_file, "SELECT points_for FROM standings WHERE season = 2023 AND team_id = 130") == [(539,)]
    after = dict(query(config_file, "SELECT partition_key, loaded_at FROM raw_manifest ORDER BY 1"))
    changed = [key for key, loaded in before if after[key] != loaded]
    assert changed == ["games/2023"]


def read_this_run(config_file, full_refresh: bool = False) -> tuple[list[str], dict[str, str]]:
    """What collect reads now (keys) and what it leaves, with why."""
    result = collect(load_config(str(config_file)), full_refresh)
    return sorted(p.key for p in result.partitions if p.was_fetched), result.skipped


def test_a_rerun_reads_only_the_snapshot_files_that_changed(config_file, small_snapshot):
    ncaa_pipeline(config_path=str(config_file))
    every = sorted(key for (key,) in query(config_file, "SELECT partition_key FROM raw_manifest"))
    read, left = read_this_run(config_file)
    assert read == [] and sorted(left) == every
    assert set(left.values()) == {"unchanged at the source since it was loaded"}
    assert read_this_run(config_file, full_refresh=True)[0] == every

    change_score(small_snapshot, 401551789, 35)
    read, _ = read_this_run(config_file)
    # the season's games file, and its weeks (the games file says which games are a week's)
    assert read == ["games/2023"] + sorted(k for k in every if k.startswith("games_teams/2023/"))
    assert ncaa_pipeline(config_path=str(config_file)).partitions_loaded == ["games/2023"]
    assert read_this_run(config_file)[0] == []  # the weeks, read and unchanged, keep the new tag


def test_a_warehouse_loaded_before_version_tags_learns_them_in_one_run(config_file):
    ncaa_pipeline(config_path=str(config_file))
    with duckdb.connect(str(load_config(str(config_file)).warehouse_path)) as con:
        con.execute("UPDATE raw_manifest SET source_version = NULL")
    loaded_at = query(config_file, "SELECT partition_key, loaded_at, checksum FROM raw_manifest ORDER BY 1")
    assert ncaa_pipeline(config_path=str(config_file)).partitions_loaded == []  # read all, nothing changed
    assert query(config_file, "SELECT partition_key, loaded_at, checksum FROM raw_manifest ORDER BY 1") == loaded_at
    assert read_this_run(config_file)[0] == []


def test_talent_loads_feeds_the_model_and_a_changed_composite_retrains(config_file, small_snapshot):
    copy_snapshot(small_snapshot, {"talent": [2023]}, reference=False)
    first = ncaa_pipeline(config_path=str(config_file))
    assert "talent/2023" in first.partitions_loaded and first.rows_by_table["team_talent"] == 238  # 2 repeats dropped
    assert query(config_file, "SELECT talent FROM team_talent WHERE season = 2023 AND team = 'Alabama'") == [(1015.43,)]
    assert query(config_file, "SELECT DISTINCT passed FROM quality_reports WHERE table_name = 'team_talent'") == [(True,)]
    # 2023 games read the composite; 2022 has none in this snapshot, and says so
    assert query(config_file, "SELECT season, min(has_talent), count(*) FILTER (talent_diff <> 0) > 500 FROM "
                              "game_features GROUP BY season ORDER BY season") == [(2022, 0.0, False), (2023, 1.0, True)]
    path = small_snapshot / "talent" / "2023.json.gz"
    rows = json.loads(gzip.decompress(path.read_bytes()))
    rows[0]["talent"] = 500.0  # Alabama's composite, revised
    path.write_bytes(gzip.compress(json.dumps(rows).encode()))
    again = ncaa_pipeline(config_path=str(config_file))
    assert again.partitions_loaded == ["talent/2023"]
    assert again.rows_by_table["model_runs"] == 1  # what the model reads changed: it is trained again
    assert query(config_file, "SELECT talent FROM team_talent WHERE season = 2023 AND team = 'Alabama'") == [(500.0,)]


TITLE_GAME = 401551789  # 2023's national championship, Michigan v Washington (FBS v FBS)


def test_forecasts_are_kept_as_issued_and_scored_once_the_games_are_played(config_file, small_snapshot, tmp_path,
                                                                            capsys):
    from gridiron.storage import connect, forecast_scores

    kickoff = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for season in small_snapshot.glob("games/*.json.gz"):  # the 24 games without a result, and the
        rows = json.loads(gzip.decompress(season.read_bytes()))  # 2023 title game, rescheduled after now
        for row in rows:  # no result: not completed, a score missing, or a completed 0-0 (suspect)
            if (not row.get("completed") or row.get("homePoints") is None or not (row["homePoints"] or row["awayPoints"])
                    or row["id"] == TITLE_GAME):
                row.update(startDate=kickoff, completed=False, homePoints=None, awayPoints=None)
        season.write_bytes(gzip.compress(json.dumps(rows).encode()))
    path = small_snapshot / "games" / "2023.json.gz"
    rows = json.loads(gzip.decompress(path.read_bytes()))
    first = ncaa_pipeline(config_path=str(config_file))
    issued = query(config_file, "SELECT game_id, batch, predicted_margin FROM forecasts ORDER BY game_id")
    assert len(issued) == first.rows_by_table["forecasts"] == 25 and len({b for _, b, _ in issued}) == 1
    # the title game is played (early, before its kickoff as the data has it): a home win by 3
    game_id, batch, margin = next(f for f in issued if f[0] == TITLE_GAME)
    for row in rows:
        if row["id"] == game_id:
            row.update(completed=True, homePoints=24, awayPoints=21)
    path.write_bytes(gzip.compress(json.dumps(rows).encode()))
    second = ncaa_pipeline(config_path=str(config_file))
    assert second.rows_by_table.get("forecasts") == 24, second  # a new batch for the games still to play
    # the first batch is untouched: what we predicted then, scored against what happened
    assert query(config_file, "SELECT predicted_margin FROM forecasts WHERE game_id = ? AND batch = ?",
                 [game_id, batch]) == [(margin,)]
    with connect(tmp_path / "home" / "gridiron.duckdb", read_only=True) as con:
        scores = forecast_scores(con)
    assert scores["batch"].to_list()[1] == batch and scores["forecasts"].to_list() == [24, 25]
    first_batch = scores.row(1, named=True)
    assert first_batch["scored"] == 1 and first_batch["mae"] == pytest.approx(abs(margin - 3))
    assert first_batch["su_accuracy"] == (1.0 if margin > 0 else 0.0)
    from cli import main

    assert main(["--config", str(config_file), "status"]) == 0
    shown = capsys.readouterr().out
    assert "forecasts as issued, scored on the games played since:" in shown
    assert f": 1 of 25 played, {100.0 if margin > 0 else 0.0:.1f}% straight up, MAE {abs(margin - 3):.1f}, Brier " in shown
    assert "next week's forecasts (24 games still to kick off" in shown
    lines = shown.splitlines()
    ledger = next(i for i, line in enumerate(lines) if line.startswith("how we did"))
    assert lines[ledger + 2].split()[:3] == ["2023", "postseason", "1"], shown  # the week played: 1 game


def test_full_refresh_refetches_and_rebuilds_everything(config_file):
    ncaa_pipeline(config_path=str(config_file))
    result = ncaa_pipeline(config_path=str(config_file), full_refresh=True)
    assert len(result.partitions_loaded) == 7
    assert query(config_file, "SELECT count(*) FROM games") == [(7439,)]
    assert query(config_file, "SELECT is_full_refresh FROM pipeline_runs ORDER BY started_at") == [(False,), (True,)]
    # every table is rebuilt, the model tables too: the same data trains a model once more
    assert result.rows_by_table["model_runs"] == 1 and result.rows_by_table["game_features"] == 7439
    assert query(config_file, "SELECT count(*) FROM model_runs") == [(2,)]


def test_a_lost_warehouse_is_rebuilt_from_cached_staging_without_recomputing(config_file, tmp_path):
    ncaa_pipeline(config_path=str(config_file))
    expected = query(config_file, "SELECT count(*), sum(home_points) FROM games")
    files = staged_files(config_file)
    (tmp_path / "home" / "gridiron.duckdb").unlink()
    result = ncaa_pipeline(config_path=str(config_file))
    assert len(result.partitions_loaded) == 7
    assert query(config_file, "SELECT count(*), sum(home_points) FROM games") == expected
    assert staged_files(config_file) == files  # every stage task was a cache hit: nothing rewritten


def test_config_scope_of_conferences_scopes_standings_and_rebuilds_them(config_file, tmp_path, small_snapshot):
    ncaa_pipeline(config_path=str(config_file))
    scoped = write_config(
        tmp_path / "scoped.yaml", conferences=["Big Ten"], source={"snapshot_dir": str(small_snapshot)},
        storage={"home": str(tmp_path / "home")})
    result = ncaa_pipeline(config_path=str(scoped))
    assert sorted(result.partitions_loaded) == ["games/2022", "games/2023"]
    assert query(scoped, "SELECT DISTINCT conference FROM standings") == [("Big Ten",)]
    assert query(scoped, "SELECT count(*) FROM games") == [(7439,)]  # games are never scoped


def test_a_season_the_bundled_snapshot_lacks_is_used_from_a_snapshot_dir(tmp_path):
    """A later season (here 2024, built from 2023's rows) in GRIDIRON_SNAPSHOT_DIR's layout."""
    root = tmp_path / "later"
    (root / "games").mkdir(parents=True)
    rows = json.loads(gzip.decompress((Path(__file__).parents[1] / "gridiron/snapshot/games/2023.json.gz").read_bytes()))
    for row in rows:
        row["id"] += 10_000_000
        row["season"] = 2024
        row["startDate"] = row["startDate"].replace("2023-", "2024-", 1).replace("2024-01-", "2025-01-", 1)
    (root / "games" / "2024.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))
    for name in ("teams.json.gz", "conferences.json.gz"):
        (root / name).write_bytes((Path(__file__).parents[1] / "gridiron/snapshot" / name).read_bytes())
    cfg = write_config(tmp_path / "later.yaml", start_year=2024, end_year=2024,
                       source={"snapshot_dir": str(root)}, storage={"home": str(tmp_path / "home")})
    result = ncaa_pipeline(config_path=str(cfg))
    assert sorted(result.partitions_loaded) == ["conferences", "games/2024", "teams"]
    assert query(cfg, "SELECT season, count(*) FROM games GROUP BY 1") == [(2024, 3734)]
    assert query(cfg, "SELECT wins, losses FROM standings WHERE season = 2024 AND team_id = 130") == [(15, 0)]


def test_too_little_history_to_train_still_loads_the_data(tmp_path, small_snapshot):
    cfg = write_config(tmp_path / "one.yaml", start_year=2023, end_year=2023,
                       source={"snapshot_dir": str(small_snapshot)}, storage={"home": str(tmp_path / "home")})
    result = ncaa_pipeline(config_path=str(cfg))
    assert result.model is None and "model_runs" not in result.rows_by_table
    assert query(cfg, "SELECT count(*) FROM games") == [(3734,)]


def test_an_unchanged_rerun_does_not_retrain(config_file):
    first = ncaa_pipeline(config_path=str(config_file))
    # the 24 games with no result yet all kicked off long ago: unscored, never forecast
    assert first.model and first.rows_by_table["predictions"] == 0 and (first.forecasts, first.unscored) == (0, 24)
    again = ncaa_pipeline(config_path=str(config_file))
    assert again.rows_by_table == {} and again.model is None
    assert query(config_file, "SELECT count(*) FROM model_runs") == [(1,)]
