"""Quality: schemas accept the real data, reject each kind of bad row by name; scores; integrity."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from gridiron.game_weeks import game_calendar, game_weeks_of, plan_weeks
from gridiron.quality.gate import integrity_problems, judge_partition, judge_partitions, run_quality
from gridiron.quality.schemas import SCHEMAS
from gridiron.quality.scoring import WEIGHTS, TableQuality, assess, combine, completeness, timeliness
from gridiron.sources import Partition, SnapshotSource, bundled_snapshot_dir
from gridiron.storage import StagingArea, commit_partitions, connect, migrate
from gridiron.tables import TABLES
from gridiron.transforms import build_games, build_standings, stage_partition
from tests.helpers import NOW, game, staged

SOURCE = SnapshotSource(bundled_snapshot_dir())
TEAM_IDS = pl.Series([10, 20, 30, 40], dtype=pl.Int64)


def real_partitions():
    for endpoint in ("games", "lines", "teams_fbs", "stats_season", "talent"):
        for season in sorted(SOURCE.seasons_available(endpoint)):
            yield Partition(endpoint, season)
    yield Partition("teams")
    yield Partition("conferences")
    # box scores week by week: 2014 (no defensive stats), 2019 (an impossible fourth-down pair),
    # 2022 (games without an FBS side, "1--1" fourth downs)
    for season in (2014, 2019, 2022):
        weeks = game_weeks_of(game_calendar(SOURCE.fetch(Partition("games", season)).payload))
        yield from plan_weeks(weeks, SOURCE.seasons_available, now=NOW)[0]


def test_every_schema_accepts_all_ten_seasons_of_real_data():
    known = pl.Series([row["id"] for row in SOURCE.fetch(Partition("teams")).payload], dtype=pl.Int64)
    seen = set()
    for partition in real_partitions():
        deps = {}
        if partition.endpoint == "stats_season":
            deps = {f"teams_fbs/{partition.season}": SOURCE.fetch(Partition("teams_fbs", partition.season)).payload}
        if partition.endpoint == "talent":
            deps = {"teams": SOURCE.fetch(Partition("teams")).payload}
        frames = stage_partition(partition, SOURCE.fetch(partition).payload, deps).frames
        verdict = judge_partition(partition.key, frames, max_null_percentage=0.1, known_ids={"team_id": known})
        assert verdict.reason is None, verdict.reason
        assert all(t.score == 1.0 for t in verdict.tables), [(t.table, t.score) for t in verdict.tables]
        seen.update(frames)
    assert seen == set(SCHEMAS)


def games_frame() -> pl.DataFrame:
    return build_games([game(1, 10, 20, 24, 17), game(2, 30, 40, 10, 3), game(3, 10, 30, None, None, completed=False)])


def with_value(frame: pl.DataFrame, game_id: int, **values) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("game_id") == game_id).then(pl.lit(value, dtype=frame.schema[column])).otherwise(pl.col(column)).alias(column)
        for column, value in values.items()
    )


# each kind of bad row -> the one-line description naming table, column and an example row
BAD_ROWS = {
    "negative points": (
        lambda f: with_value(f, 2, home_points=-3),
        "games.home_points: greater_than_or_equal_to(0) fails on 1 row(s), e.g. {game_id: 2, home_points: -3}"),
    "duplicate game id": (
        lambda f: pl.concat([f, f.filter(pl.col("game_id") == 1)]),
        "games.game_id: field_uniqueness fails on 2 row(s), e.g. {game_id: 1}"),
    "unknown team id": (
        lambda f: with_value(f, 2, away_id=999),
        "games.away_id: team_id_known fails on 1 row(s), e.g. {game_id: 2, away_id: 999, team: 'Team 40'}"),
    "completed game without score": (
        lambda f: with_value(f, 1, away_points=None),
        "games: completed_has_both_scores fails on 1 row(s), e.g. {game_id: 1, is_completed: True, home_points: 24, away_points: None}"),
    "home team is the away team": (
        lambda f: with_value(f, 2, away_id=30),
        "games: home_differs_from_away fails on 1 row(s), e.g. {game_id: 2, home_id: 30, away_id: 30}"),
    "a string in a numeric field": (
        lambda f: f.with_columns(pl.col("home_points").cast(pl.String)),
        "games.home_points: dtype('Int32') fails on the table, e.g. String"),
    "a missing column": (
        lambda f: f.drop("week"),
        "games: column_in_dataframe fails on the table, e.g. week"),
    "an unexpected new column (schema drift fails)": (
        lambda f: f.with_columns(playoff=pl.lit(True)),
        "games: column_in_schema fails on the table, e.g. playoff"),
    "a week out of range": (
        lambda f: with_value(f, 1, week=25),
        "games.week: in_range(0, 20) fails on 1 row(s), e.g. {game_id: 1, week: 25}"),
}


@pytest.mark.parametrize("damage,message", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_each_kind_of_bad_row_is_rejected_by_name(damage, message):
    verdict = judge_partition("games/2023", {"games": damage(games_frame())},
                              max_null_percentage=0.1, known_ids={"team_id": TEAM_IDS})
    assert verdict.quarantined
    assert message in [f.describe() for t in verdict.tables for f in t.failures]
    assert verdict.reason.startswith("games/2023: ")


def shifted(frame: pl.DataFrame, by: int) -> pl.DataFrame:
    return frame.with_columns(pl.col("game_id") + by)


def one_by_one(parts):
    return [judge_partition(key, frames, max_null_percentage=0.1, known_ids={"team_id": TEAM_IDS},
                            age_days=age, allowed_age_days=allowed) for key, frames, age, allowed in parts]


def same_verdicts(batched, single) -> bool:
    return [(v.key, v.reason, [t.as_row() for t in v.tables]) for v in batched] == \
        [(v.key, v.reason, [t.as_row() for t in v.tables]) for v in single]


@pytest.mark.parametrize("damage,message", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_weeks_judged_together_get_the_verdicts_they_get_one_by_one(damage, message):
    parts = [("w/1", {"games": games_frame()}, 1.0, 3.0),
             ("w/2", {"games": shifted(damage(games_frame()), 100)}, 1.0, 3.0),
             ("w/3", {"games": shifted(games_frame(), 200)}, 9.0, 3.0)]
    batched = judge_partitions(parts, max_null_percentage=0.1, known_ids={"team_id": TEAM_IDS})
    assert same_verdicts(batched, one_by_one(parts))
    assert [v.quarantined for v in batched] == [False, True, False]
    assert batched[2].tables[0].timeliness < 1  # each part keeps its own age


def test_a_key_repeated_across_weeks_fails_their_union_but_neither_week():
    parts = [("w/1", {"games": games_frame()}, None, None), ("w/2", {"games": games_frame()}, None, None)]
    batched = judge_partitions(parts, max_null_percentage=0.1, known_ids={"team_id": TEAM_IDS})
    assert same_verdicts(batched, one_by_one(parts))
    assert not any(v.quarantined for v in batched)


@pytest.mark.parametrize("table,frame,message", [
    ("lines", pl.DataFrame({"game_id": [1], "season": [2023], "week": [1], "season_type": ["regular"],
                            "provider": ["x"], "spread": [-150.0], "spread_open": [None], "over_under": [50.0],
                            "over_under_open": [None], "home_moneyline": [None], "away_moneyline": [None],
                            "formatted_spread": [None]},
                           schema_overrides={"season": pl.Int32, "week": pl.Int32, "spread_open": pl.Float64,
                                             "over_under_open": pl.Float64, "home_moneyline": pl.Int32,
                                             "away_moneyline": pl.Int32, "formatted_spread": pl.String}),
     "lines.spread: spread_within_100 fails on 1 row(s), e.g. {game_id: 1, provider: 'x', spread: -150.0}"),
    ("standings", build_standings(build_games([game(1, 10, 20, 24, 17)])).with_columns(
        pl.when(pl.col("team_id") == 10).then(pl.lit(5, pl.Int32)).otherwise(pl.col("wins")).alias("wins")),
     "standings: wins_losses_ties_add_up_to_games fails on 1 row(s), e.g. {season: 2023, team_id: 10, games: 1, wins: 5, losses: 0, ties: 0}"),
])
def test_other_tables_name_their_failures_too(table, frame, message):
    quality = assess(table, frame, max_null_percentage=0.1)
    assert message in [f.describe() for f in quality.failures]


def test_a_clean_frame_scores_one_and_weights_add_up():
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    quality = assess("games", games_frame(), max_null_percentage=0.1, known_ids={"team_id": TEAM_IDS})
    assert quality.score == 1.0 and quality.failures == []


def test_scores_are_the_share_of_rows_that_pass():
    quality = assess("games", with_value(games_frame(), 2, home_points=-3), max_null_percentage=0.1)
    assert quality.validity == pytest.approx(2 / 3)
    assert quality.score == pytest.approx(1 - WEIGHTS["validity"] / 3, abs=1e-4)


@pytest.mark.parametrize("nulls,max_null,expected", [(0, 0.1, 1.0), (1, 0.1, 1.0), (2, 0.1, 0.8 / 0.9), (10, 0.1, 0.0)])
def test_completeness_against_the_allowed_null_share(nulls, max_null, expected):
    frame = pl.DataFrame({"name": ["x"] * (10 - nulls) + [None] * nulls, "conference_id": list(range(10))})
    assert completeness("conferences", frame, max_null) == pytest.approx(expected)


@pytest.mark.parametrize("age,allowed,expected", [(None, 1.0, 1.0), (0.5, 1.0, 1.0), (2.0, 1.0, 0.5), (3.0, 1.0, 0.0), (9.0, None, 1.0)])
def test_timeliness(age, allowed, expected):
    assert timeliness(age, allowed) == expected


def test_run_quality_weights_partitions_by_rows_and_averages_tables():
    good = TableQuality("games", rows=300)
    bad = TableQuality("games", rows=100, validity=0.0)
    assert combine([good, bad]).validity == pytest.approx(0.75)
    from gridiron.quality.gate import PartitionVerdict

    tables, score = run_quality([PartitionVerdict("games/2022", [good]), PartitionVerdict("games/2023", [bad]),
                                 PartitionVerdict("teams", [TableQuality("teams", rows=10)])])
    assert [t.table for t in tables] == ["games", "teams"]
    assert score == pytest.approx((1 - 0.25 * WEIGHTS["validity"] + 1.0) / 2, abs=1e-4)


def test_new_api_fields_are_ignored_with_a_warning():
    row = {**game(1, 10, 20, 24, 17), "playoff": True}
    staged_frames = stage_partition(Partition("games", 2023), [row])
    assert "playoff" not in staged_frames.frames["games"].columns
    assert staged_frames.warnings == ["games/2023: fields not in the staging tables are ignored: playoff"]


@pytest.fixture
def warehouse(tmp_path):
    area = StagingArea(tmp_path / "home")
    teams = [{"id": i, "school": f"Team {i}", "conference": "Big Ten"} for i in (10, 20, 30, 40)]
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        commit_partitions(con, [staged(area, Partition("teams"), teams),
                                staged(area, Partition("games", 2023), [game(1, 10, 20, 24, 17), game(2, 30, 40, 10, 3)])],
                          [], "run-1")
        yield con


def test_integrity_holds_on_a_consistent_warehouse(warehouse):
    report = integrity_problems(warehouse)
    assert report.problems == []
    assert report.checked == ["row counts of 3 table partitions against the manifest", "10 foreign keys",
                              "4 standard queries"]


VALUES_BY_TYPE = {"INTEGER": 1, "BIGINT": 1, "VARCHAR": "k", "BOOLEAN": False, "DOUBLE": 0.0,
                  "TIMESTAMP WITH TIME ZONE": NOW}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_duckdb_refuses_a_duplicate_key_in_every_registry_table(tmp_path, table):
    """Why integrity has no duplicate-key check: DuckDB enforces each registry key on insert."""
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        columns = [c for c, nullable in con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall() if nullable == "NO" or c in TABLES[table].key]
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]).fetchall())
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        values = [VALUES_BY_TYPE[types[c]] for c in columns]
        con.execute(insert, values)
        with pytest.raises(duckdb.ConstraintException, match="(?i)duplicate key"):
            con.execute(insert, values)


def test_integrity_names_a_standard_query_that_no_longer_answers(warehouse):
    warehouse.execute("DROP INDEX lines_season")  # an index pins the table's columns
    warehouse.execute("ALTER TABLE lines RENAME COLUMN spread TO spread_renamed")
    assert any(p.startswith("standard query 'median closing spread' fails: Binder Error")
               for p in integrity_problems(warehouse).problems)


def test_integrity_names_a_broken_foreign_key(warehouse):
    warehouse.execute("DELETE FROM teams WHERE team_id = 40")
    assert "games.away_id: 1 row(s) name a team_id missing from teams (e.g. 40)" in integrity_problems(warehouse).problems


def test_integrity_names_rows_missing_against_the_manifest(warehouse):
    warehouse.execute("DELETE FROM games WHERE game_id = 2")
    problems = integrity_problems(warehouse).problems
    assert "games (season 2023): 1 rows stored, the manifest says 2" in problems


def test_the_validation_outcome_warns_per_table_and_fails_on_integrity_or_a_low_score():
    from gridiron.quality.gate import validation_outcome

    good, poor = TableQuality("games", 10), TableQuality("lines", 10, validity=0.0, consistency=0.0)
    passes = validation_outcome([good], [], 0.8)
    assert (passes.fails, passes.breaches, passes.score) == (False, [], 1.0)

    low = validation_outcome([good, poor], [], 0.8)  # lines 0.5, the run 0.75
    assert [(b.table, b.severity) for b in low.breaches] == [("lines", "warning"), ("warehouse", "critical")]
    assert low.fails and low.message() == (
        "the warehouse failed validation: data quality 0.750 is below min_data_quality_score 0.80 (worst: )")

    broken = validation_outcome([good], ["games 2023: 3734 rows stored, the manifest says 3735"], 0.8)
    assert broken.fails and [(b.table, b.failed_checks) for b in broken.breaches] == [
        ("warehouse", ["games 2023: 3734 rows stored, the manifest says 3735"])]
