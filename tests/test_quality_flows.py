"""The quality gate and the validate phase through the flows, on a real Prefect server."""

from __future__ import annotations

import json
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter

from flows import ncaa_pipeline
from gridiron.storage import connect, content_checksums
from gridiron.testing.fake_cfbd import Fault
from tasks.validate import BREACH_EVENT
from tests.helpers import API_KEY, query, write_config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]


def season_checksums(home, table: str, season: int) -> str:
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        return con.execute(
            f"SELECT count(*) || ':' || coalesce(sum(hash(t)), 0) FROM {table} t WHERE season = ?", [season]
        ).fetchone()[0]


def breach_events(run_id: str, expected: set[tuple[str, str]], timeout: float = 60.0) -> list:
    """The run's breach events once every expected (severity, table) has arrived: the server
    persists events in batches, so the first poll may see only some of them."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[BREACH_EVENT])), limit=50)
        events = [e for e in page.events if e.payload.get("run_id") == run_id]
        seen = {(e.resource.get("gridiron.severity"), e.resource.get("gridiron.table")) for e in events}
        if expected <= seen or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


@pytest.fixture
def api(fake_cfbd, monkeypatch):
    monkeypatch.setenv("CFBD_API_KEY", API_KEY)
    monkeypatch.setenv("CFBD_BASE_URL", fake_cfbd.url)
    return fake_cfbd


def stale_config(tmp_path, **values):
    """Refetch everything each run (complete seasons would otherwise not be fetched again)."""
    return write_config(tmp_path / "stale.yaml", source={"refresh_age_days": 0},
                        storage={"home": str(tmp_path / "home")}, **values)


def test_a_corrupted_partition_is_quarantined_and_the_good_ones_load(config_file, api, tmp_path):
    home = tmp_path / "home"
    ncaa_pipeline(config_path=str(config_file))
    games_2023 = season_checksums(home, "games", 2023)
    games_2022 = season_checksums(home, "games", 2022)
    lines_2023 = season_checksums(home, "lines", 2023)

    def corrupt(rows):  # one impossible score
        return [{**row, "homePoints": -7} if row["id"] == 401551789 else row for row in rows]

    def move_line(rows):  # a real correction: one provider's spread changes
        first = rows[0]
        return [{**first, "lines": [{**first["lines"][0], "spread": (first["lines"][0]["spread"] or 0) + 0.5}, *first["lines"][1:]]}, *rows[1:]]

    api.add_fault(Fault("/games", "mutate", params={"year": "2023"}, body=corrupt, times=-1))
    api.add_fault(Fault("/lines", "mutate", params={"year": "2023"}, body=move_line, times=-1))
    state = ncaa_pipeline(config_path=str(stale_config(tmp_path)), return_state=True)

    assert state.is_failed() and "games/2023: quarantined: games/2023: games.home_points" in state.message
    assert season_checksums(home, "games", 2023) == games_2023  # the old season stays as it was
    assert season_checksums(home, "games", 2022) == games_2022
    assert season_checksums(home, "lines", 2023) != lines_2023  # the good partition was loaded
    key, reason, payload_bytes = query(
        config_file, "SELECT partition_key, reason, octet_length(payload_gzip) FROM raw_quarantine")[0]
    assert key == "games/2023" and payload_bytes > 1000
    assert reason == ("games/2023: games.home_points: greater_than_or_equal_to(0) fails on 1 row(s), "
                      "e.g. {game_id: 401551789, home_points: -7}")


def test_a_run_below_the_threshold_loads_nothing_and_emits_a_breach(config_file, api, tmp_path):
    home = tmp_path / "home"
    ncaa_pipeline(config_path=str(config_file))
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        before = content_checksums(con, ["games", "lines", "standings", "teams", "raw_manifest", "raw_quarantine"])
    api.add_fault(Fault("/games", "mutate", params={"year": "2023"}, times=-1,
                        body=lambda rows: [{**row, "week": 30} for row in rows]))  # every week out of range
    state = ncaa_pipeline(config_path=str(stale_config(tmp_path, min_data_quality_score=0.95)), return_state=True)

    assert state.is_failed()
    assert "below min_data_quality_score 0.95; nothing was loaded" in state.message
    assert "games.week: in_range(0, 20) fails on 3734 row(s)" in state.message
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        assert content_checksums(con, ["games", "lines", "standings", "teams", "raw_manifest", "raw_quarantine"]) == before
        run_id, status = con.execute("SELECT run_id, status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone()
        report = con.execute("SELECT score, passed FROM quality_reports WHERE run_id = ? AND stage = 'process' "
                             "AND table_name = 'overall'", [run_id]).fetchone()
    assert status == "failed" and report[0] < 0.95 and report[1] is False

    events = breach_events(run_id, expected={("critical", "run"), ("warning", "games")})
    critical = [e for e in events if e.resource.get("gridiron.severity") == "critical"]
    assert len(critical) == 1
    assert critical[0].resource.get("gridiron.table") == "run"
    assert critical[0].payload["threshold"] == 0.95 and critical[0].payload["score"] < 0.95
    assert any("games.week" in check for check in critical[0].payload["failed_checks"])
    assert {e.resource.get("gridiron.table") for e in events if e.resource.get("gridiron.severity") == "warning"} >= {"games"}


def test_a_warehouse_that_fails_validation_is_rolled_back(config_file, api, tmp_path):
    home = tmp_path / "home"
    ncaa_pipeline(config_path=str(config_file))
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        before = content_checksums(con, ["games", "teams", "standings", "raw_manifest"])
    # the team list drops Michigan, whom unchanged games still name: only the loaded warehouse shows it
    api.add_fault(Fault("/teams", "mutate", times=-1, body=lambda rows: [r for r in rows if r["id"] != 130]))
    state = ncaa_pipeline(config_path=str(stale_config(tmp_path)), return_state=True)

    assert state.is_failed()
    assert "games.home_id: " in state.message and "missing from teams (e.g. 130)" in state.message
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        assert content_checksums(con, ["games", "teams", "standings", "raw_manifest"]) == before
        run_id = con.execute("SELECT run_id FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        stages = con.execute("SELECT DISTINCT stage FROM quality_reports WHERE run_id = ? ORDER BY 1", [run_id]).fetchall()
    assert stages == [("process",), ("validate",)]  # the failed run's report survived the rollback


def test_each_run_publishes_keyed_quality_artifacts(config_file):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    result = ncaa_pipeline(config_path=str(config_file))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
            "gridiron-quality-validate", "gridiron-quality-validate-summary"])))
    # The keys keep every run's artifact: this run's are the newest (the server's order is not).
    kinds = {a.key: a for a in sorted(artifacts, key=lambda a: a.created) if a.type in ("table", "markdown")}
    assert set(kinds) == {"gridiron-quality-validate", "gridiron-quality-validate-summary"}
    table = kinds["gridiron-quality-validate"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {row["table_name"] for row in rows} >= {"games", "lines", "standings", "overall"}
    assert "Overall score **1.000**" in kinds["gridiron-quality-validate-summary"].data
    assert result.quality == 1.0
