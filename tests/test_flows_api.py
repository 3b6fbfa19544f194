"""The pipeline flows over HTTP: the fake CFBD server (real data) on a real Prefect server, with real
DuckDB files. Its budget, its refusals, its retries, its empty answers and the weekly box scores.
(Apart from tests/test_flows.py so that the two test workers share the flow tests evenly.)"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from flows import ncaa_pipeline
from gridiron.storage import content_checksums
from gridiron.testing.fake_cfbd import Fault
from gridiron.testing.snapshots import copy_snapshot
from tests.helpers import API_KEY, query, write_config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]


def test_api_source_through_the_fake_server_and_quota_friendly_rerun(config_file, fake_cfbd, monkeypatch):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    result = ncaa_pipeline(config_path=str(config_file))
    assert result.source == "api"
    # the API has every season's endpoints; the small snapshot behind it answers [] where it lacks one
    assert len(fake_cfbd.metered) == 12 and len(fake_cfbd.requests_to("/info")) == 1  # calls left, read fresh
    assert query(config_file, "SELECT count(*) FROM games") == [(7439,)]
    assert query(config_file, "SELECT min(calls_remaining) FROM raw_fetches") == [(988,)]
    assert query(config_file, "SELECT DISTINCT source FROM raw_manifest") == [("api",)]

    # 2022 and 2023 are complete seasons fetched moments ago: the rerun spends no call
    again = ncaa_pipeline(config_path=str(config_file))
    assert len(fake_cfbd.metered) == 12 and again.partitions_loaded == []


def test_api_budget_fetches_only_what_the_quota_allows(config_file, fake_cfbd, monkeypatch, tmp_path):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    ncaa_pipeline(config_path=str(config_file))
    refresh = write_config(
        tmp_path / "r.yaml", storage={"home": str(tmp_path / "home")},
        # one request at a time: with several in flight, an answer's calls-left header may already
        # count one still in flight, and the client (counting it too) stops a call early, by design
        source={"refresh_age_days": 0, "min_calls_reserve": 50, "max_concurrent_requests": 1})
    # other tools have spent the month's calls since: 53 left (the run reads it from /info), 50 kept
    # in reserve; what was recorded in raw_fetches (988) is out of date
    fake_cfbd.calls_remaining = 53
    before = len(fake_cfbd.metered)
    result = ncaa_pipeline(config_path=str(refresh))
    fetched = [(r["path"], r["query"].get("year")) for r in fake_cfbd.metered[before:]]
    # 3 calls may be spent: the reference lists every game joins to, then the newest season
    assert sorted(fetched, key=str) == sorted([("/teams", None), ("/conferences", None), ("/games", "2023")], key=str)
    assert sorted(result.not_fetched) == ["games/2022", "lines/2022", "lines/2023", "stats_season/2022",
                                          "stats_season/2023", "talent/2022", "talent/2023", "teams_fbs/2022",
                                          "teams_fbs/2023"]
    assert set(result.not_fetched.values()) == {"over the API call budget (3 calls may be spent)"}
    assert query(refresh, "SELECT min(calls_remaining) FROM raw_fetches") == [(50,)]


def test_bad_api_key_fails_the_run_and_changes_nothing(config_file, fake_cfbd, monkeypatch):
    ncaa_pipeline(config_path=str(config_file))  # a warehouse from the snapshot
    before = content_checksums(duckdb.connect(str(Path(config_file).parent / "home" / "gridiron.duckdb"), read_only=True),
                               ["games", "lines", "standings", "raw_manifest"])
    monkeypatch.setenv("CFBD_API_KEY", "not-the-key")
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    state = ncaa_pipeline(config_path=str(config_file), full_refresh=True, return_state=True)
    assert state.is_failed()
    assert "API key is missing or invalid (HTTP 401" in state.message
    with duckdb.connect(str(Path(config_file).parent / "home" / "gridiron.duckdb"), read_only=True) as con:
        assert content_checksums(con, ["games", "lines", "standings", "raw_manifest"]) == before
        status, error = con.execute(
            "SELECT status, error FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone()
    assert status == "failed" and "HTTP 401" in error


def test_one_bad_partition_fails_the_run_but_the_others_load(config_file, fake_cfbd, monkeypatch):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    fake_cfbd.add_fault(Fault("/games", "malformed", params={"year": "2023"}, times=-1))
    state = ncaa_pipeline(config_path=str(config_file), return_state=True)
    assert state.is_failed()
    assert "2 partition(s) failed and were not loaded: games/2023" in state.message
    assert "not valid JSON" in state.message
    # the season's lines name games that never arrived: held back too, not loaded dangling
    assert "lines/2023: quarantined: lines/2023: lines.game_id: game_id_known fails on 2934 row(s)" in state.message
    assert query(config_file, "SELECT DISTINCT season FROM games") == [(2022,)]
    assert ("games/2023",) not in query(config_file, "SELECT partition_key FROM raw_manifest")


def test_recoverable_errors_are_retried_by_the_task_after_the_client_gives_up(config_file, fake_cfbd, monkeypatch, tmp_path):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    cfg = write_config(
        tmp_path / "retry.yaml", max_retries=3, retry_delay=0.05,
        source={"http_max_attempts": 2}, storage={"home": str(tmp_path / "home")})
    # 3 failures: the client's 2 attempts fail, the task's first retry fails once more, then 200
    fake_cfbd.add_fault(Fault("/conferences", "status", status=503, times=3))
    result = ncaa_pipeline(config_path=str(cfg))
    assert "conferences" in result.partitions_loaded
    assert len(fake_cfbd.requests_to("/conferences")) == 4


def test_a_partition_that_keeps_failing_costs_max_retries_plus_one_requests(config_file, fake_cfbd, monkeypatch, tmp_path):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    cfg = write_config(
        tmp_path / "budget.yaml", max_retries=2, retry_delay=0.05,
        source={"http_max_attempts": 2}, storage={"home": str(tmp_path / "home")})
    fake_cfbd.add_fault(Fault("/conferences", "status", status=503, times=-1))
    state = ncaa_pipeline(config_path=str(cfg), return_state=True)
    assert state.is_failed()
    # the client's 2 quick attempts, then the task's first retry spends the last of the 3
    assert len(fake_cfbd.requests_to("/conferences")) == 3
    assert ("conferences: gave up after 3 requests (the retry budget: max_retries + 1): server error (HTTP 503"
            in state.message)


def test_an_empty_answer_does_not_wipe_a_stored_season(config_file, fake_cfbd, monkeypatch):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    ncaa_pipeline(config_path=str(config_file))
    fake_cfbd.add_fault(Fault("/games", "mutate", params={"year": "2023"}, body=lambda rows: [], times=-1))
    state = ncaa_pipeline(config_path=str(config_file), full_refresh=True, return_state=True)
    assert state.is_failed()
    assert "games/2023: the source returned 0 rows where 3734 are loaded" in state.message
    assert query(config_file, "SELECT count(*) FROM games WHERE season = 2023") == [(3734,)]


def test_reprocessing_without_api_calls_restores_payloads_and_their_dependencies(config_file, fake_cfbd, monkeypatch, tmp_path):
    """As after a new release of the transforms: stats must be rebuilt, nothing is refetched, and
    the stats' name mapping needs the season's FBS list, which only the warehouse still holds."""
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    ncaa_pipeline(config_path=str(config_file))
    expected = query(config_file, "SELECT count(*), count(DISTINCT team_id) FROM team_season_stats")
    calls = len(fake_cfbd.metered)
    shutil.rmtree(tmp_path / "home" / "staging")
    with duckdb.connect(str(tmp_path / "home" / "gridiron.duckdb")) as con:
        con.execute("UPDATE raw_manifest SET signature = 'older code' WHERE partition_key = 'stats_season/2023'")
        con.execute("DELETE FROM team_season_stats")
    result = ncaa_pipeline(config_path=str(config_file))
    assert result.partitions_loaded == ["stats_season/2023"]
    assert len(fake_cfbd.metered) == calls  # no API call
    assert query(config_file, "SELECT count(*), count(DISTINCT team_id) FROM team_season_stats") == expected == [(8376, 133)]


def test_box_scores_load_week_by_week_and_a_weekly_rerun_touches_only_what_changed(
        tmp_path, small_snapshot, fake_cfbd, monkeypatch):
    """The snapshot is read a week at a time like the API: one changed box score reloads its week
    only; through the API, a rerun fetches no settled week again."""
    copy_snapshot(small_snapshot, {"games_teams": [2023]}, reference=False)
    config = write_config(tmp_path / "box.yaml", start_year=2023, end_year=2023, model={"enabled": False},
                          source={"snapshot_dir": str(small_snapshot), "box_scores": True},
                          storage={"home": str(tmp_path / "home")})
    first = ncaa_pipeline(config_path=str(config))
    weeks = sorted(k for k in first.partitions_loaded if k.startswith("games_teams/"))
    assert len(weeks) == 21 and "games_teams/2023/postseason/1" in weeks  # 15 regular weeks, 6 postseason
    assert query(config, "SELECT count(*), count(DISTINCT game_id) FROM game_team_stats") == [(3116, 1558)]
    assert query(config, "SELECT team, home_away, points, total_yards FROM game_team_stats WHERE game_id = 401551789 "
                         "ORDER BY home_away DESC") == [("Michigan", "home", 34, 443), ("Washington", "away", 13, 301)]

    path = small_snapshot / "games_teams" / "2023.json.gz"
    rows = json.loads(gzip.decompress(path.read_bytes()))
    for side in next(r for r in rows if r["id"] == 401551789)["teams"]:
        for stat in side["stats"]:
            if side["team"] == "Michigan" and stat["category"] == "totalYards":
                stat["stat"] = "444"
    path.write_bytes(gzip.compress(json.dumps(rows).encode()))
    second = ncaa_pipeline(config_path=str(config))
    assert second.partitions_loaded == ["games_teams/2023/postseason/1"]
    assert query(config, "SELECT total_yards FROM game_team_stats WHERE game_id = 401551789 AND team = 'Michigan'") == [(444,)]
    assert query(config, "SELECT count(*) FROM game_team_stats") == [(3116,)]

    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    api = write_config(tmp_path / "api.yaml", start_year=2023, end_year=2023, model={"enabled": False},
                       source={"box_scores": True}, storage={"home": str(tmp_path / "api-home")})
    ncaa_pipeline(config_path=str(api))
    box_calls = fake_cfbd.requests_to("/games/teams")
    assert len({tuple(sorted(call["query"].items())) for call in box_calls}) == 21  # one call a week (retries aside)
    assert all("week" in call["query"] for call in box_calls)
    assert query(api, "SELECT count(*) FROM game_team_stats") == [(3116,)]
    again = ncaa_pipeline(config_path=str(api))
    assert again.partitions_loaded == [] and len(fake_cfbd.requests_to("/games/teams")) == len(box_calls)  # settled
