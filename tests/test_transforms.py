"""Pure transforms on small inline inputs, as given/expect tables."""

from __future__ import annotations

from datetime import UTC

import polars as pl
import pytest

from gridiron.sources import Partition
from gridiron.transforms import (
    TransformError,
    build_games,
    build_lines,
    build_standings,
    build_team_season_stats,
    build_team_seasons,
    drop_exact_duplicates,
    snake_case,
    stage_partition,
)
from tests.helpers import game, real_rows


def standings_of(games):
    return {row["team_id"]: row for row in build_standings(build_games(games)).iter_rows(named=True)}


# given games -> expect, per team, a subset of its standings row (None: the team has no row)
STANDINGS_CASES = {
    "unplayed game counts for nobody": (
        [game(1, 10, 20, None, None, completed=False)],
        {10: None, 20: None},
    ),
    "completed 0-0 is suspect and excluded": (
        [game(1, 10, 20, 0, 0), game(2, 10, 30, 21, 7)],
        {10: {"games": 1, "wins": 1, "losses": 0}, 20: None, 30: {"wins": 0, "losses": 1}},
    ),
    "points on a game not marked completed do not count": (
        [game(1, 10, 20, 14, 10, completed=False)],
        {10: None, 20: None},
    ),
    "home and away records": (
        [game(1, 10, 20, 28, 14), game(2, 20, 10, 31, 24)],
        {10: {"wins": 1, "losses": 1, "home_wins": 1, "home_losses": 0, "away_wins": 0,
              "away_losses": 1, "home_win_pct": 1.0, "away_win_pct": 0.0, "win_pct": 0.5,
              "points_for": 52, "points_against": 45, "point_diff": 7}},
    ),
    "neutral site is neither home nor away": (
        [game(1, 10, 20, 35, 3, neutral=True)],
        {10: {"wins": 1, "home_wins": 0, "away_wins": 0, "home_win_pct": None, "away_win_pct": None},
         20: {"losses": 1, "home_losses": 0, "away_losses": 0}},
    ),
    "FCS opponent counts for both teams": (
        [game(1, 10, 99, 56, 0, away_conf="Big Sky", away_class="fcs")],
        {10: {"wins": 1, "classification": "fbs"},
         99: {"losses": 1, "classification": "fcs", "conference": "Big Sky"}},
    ),
    "postseason counts overall": (
        [game(1, 10, 20, 20, 17), game(2, 10, 30, 34, 13, season_type="postseason", neutral=True,
                                       away_conf="Pac-12", week=1)],
        {10: {"games": 2, "wins": 2, "win_pct": 1.0}},
    ),
    "conference record only from conference games": (
        [game(1, 10, 20, 21, 20, conf=True), game(2, 10, 30, 10, 13, away_conf="SEC"),
         game(3, 40, 10, 17, 14, conf=True)],
        {10: {"wins": 1, "losses": 2, "conf_wins": 1, "conf_losses": 1, "conf_win_pct": 0.5,
              "win_pct": pytest.approx(1 / 3)}},
    ),
    "no conference games: conference pct is null, not zero": (
        [game(1, 10, 30, 10, 13, away_conf="SEC")],
        {10: {"conf_wins": 0, "conf_losses": 0, "conf_win_pct": None}},
    ),
    "a tie counts half a win": (
        [game(1, 50, 60, 14, 14, home_class="iii", away_class="iii", home_conf="OAC", away_conf="OAC")],
        {50: {"wins": 0, "losses": 0, "ties": 1, "win_pct": 0.5}},
    ),
}


@pytest.mark.parametrize("given,expect", STANDINGS_CASES.values(), ids=STANDINGS_CASES.keys())
def test_standings(given, expect):
    standings = standings_of(given)
    for team_id, expected in expect.items():
        if expected is None:
            assert team_id not in standings
            continue
        row = standings[team_id]
        assert {key: row[key] for key in expected} == expected


def test_wins_plus_losses_plus_ties_equal_counted_games_on_real_data():
    from gridiron.sources import SnapshotSource, bundled_snapshot_dir

    source = SnapshotSource(bundled_snapshot_dir())
    games = build_games(source.fetch(Partition("games", 2021)).payload)
    standings = build_standings(games)
    assert (standings["wins"] + standings["losses"] + standings["ties"] == standings["games"]).all()
    assert standings["games"].sum() == 2 * games["has_result"].sum()
    assert standings["points_for"].sum() == standings["points_against"].sum()


def test_conference_scope_keeps_only_those_conferences():
    games = build_games([game(1, 10, 30, 21, 7, away_conf="SEC"), game(2, 40, 50, 3, 0, home_conf="MAC", away_conf="MAC")])
    scoped = build_standings(games, conferences=["Big Ten", "SEC"])
    assert sorted(scoped["team_id"].to_list()) == [10, 30]


def test_games_flags_and_types():
    games = build_games([
        game(3, 10, 20, 0, 0),
        game(1, 10, 20, 24, 17),
        game(2, 10, 20, None, None, completed=False),
    ])
    assert games["game_id"].to_list() == [1, 2, 3]
    assert games["has_result"].to_list() == [True, False, False]
    assert games["is_suspect_score"].to_list() == [False, False, True]
    assert games.schema["start_date"] == pl.Datetime("us", "UTC")
    assert games["start_date"][0].isoformat() == "2023-09-02T19:30:00+00:00"


def test_games_ignore_unknown_fields_and_fill_missing_ones():
    row = game(1, 10, 20, 24, 17)
    row["playoff"] = True  # later API versions add fields
    del row["excitementIndex"]
    games = build_games([row])
    assert "playoff" not in games.columns
    assert games["excitement_index"].to_list() == [None]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"homePoints": "many"}, "column 'homePoints' has 'many'"),
        ({"startDate": "last tuesday"}, "start_date 'last tuesday' is not an ISO 8601 timestamp"),
    ],
)
def test_bad_game_values_name_the_column_and_value(change, message):
    with pytest.raises(TransformError, match=message):
        build_games([{**game(1, 10, 20, 24, 17), **change}])


def test_lines_one_row_per_game_and_provider():
    rows = [
        {"id": 1, "season": 2023, "week": 1, "seasonType": "regular", "lines": [
            {"provider": "consensus", "spread": -7, "formattedSpread": "A -7", "spreadOpen": None,
             "overUnder": 50.5, "overUnderOpen": None, "homeMoneyline": -280, "awayMoneyline": 230},
            {"provider": "Bovada", "spread": -6.5, "formattedSpread": "A -6.5", "spreadOpen": -7,
             "overUnder": None, "overUnderOpen": None, "homeMoneyline": None, "awayMoneyline": None},
        ]},
        {"id": 2, "season": 2023, "week": 1, "seasonType": "regular", "lines": []},
    ]
    lines = build_lines(rows)
    assert lines.select("game_id", "provider", "spread", "over_under", "home_moneyline").rows() == [
        (1, "Bovada", -6.5, None, None),
        (1, "consensus", -7.0, 50.5, -280),
    ]


def test_season_stats_map_school_names_to_ids_through_that_seasons_fbs_list():
    fbs = build_team_seasons([
        {"id": 130, "school": "Michigan", "conference": "Big Ten"},
        {"id": 264, "school": "Washington", "conference": "Pac-12"},
    ], 2023)
    rows = [
        {"season": 2023, "team": "Michigan", "conference": "Big Ten", "statName": "firstDowns", "statValue": 300},
        {"season": 2023, "team": "Washington", "conference": "Pac-12", "statName": "passingTDs", "statValue": 36.0},
        {"season": 2023, "team": "Nowhere State", "conference": "X", "statName": "firstDowns", "statValue": 1},
    ]
    stats, unmatched = build_team_season_stats(rows, 2023, fbs)
    assert stats.select("team_id", "stat_name", "stat_value").rows() == [
        (130, "first_downs", 300.0), (264, "passing_t_ds", 36.0),
    ]
    assert unmatched == ["Nowhere State"]


@pytest.mark.parametrize("given,expect", [
    ("homePoints", "home_points"), ("startTimeTBD", "start_time_tbd"),
    ("thirdDownConversions", "third_down_conversions"), ("id", "id"),
])
def test_snake_case(given, expect):
    assert snake_case(given) == expect


def test_partition_of_another_season_is_refused():
    with pytest.raises(TransformError, match="holds 1 rows of season 2022"):
        stage_partition(Partition("games", 2023), [game(1, 10, 20, 7, 3, season=2022)])


def test_real_known_result_michigan_washington():
    from gridiron.sources import SnapshotSource, bundled_snapshot_dir

    rows = SnapshotSource(bundled_snapshot_dir()).fetch(Partition("games", 2023)).payload
    staged = stage_partition(Partition("games", 2023), rows)
    final = staged.frames["games"].filter(pl.col("game_id") == 401551789).row(0, named=True)
    assert (final["home_team"], final["home_points"], final["away_team"], final["away_points"]) == (
        "Michigan", 34, "Washington", 13)
    assert final["season_type"] == "postseason"
    michigan = staged.frames["standings"].filter(pl.col("team_id") == 130).row(0, named=True)
    assert (michigan["wins"], michigan["losses"], michigan["win_pct"]) == (15, 0, 1.0)


@pytest.mark.parametrize("change,message", [
    ({"homeId": None}, "games: 1 row\\(s\\) without home_id \\(e.g. game_id 1\\)"),
    ({"season": None}, "games: 1 row\\(s\\) without season"),
])
def test_games_without_usable_teams_fail_the_partition(change, message):
    with pytest.raises(TransformError, match=message):
        build_games([{**game(1, 10, 20, 24, 17), **change}])


def test_exact_duplicate_rows_are_dropped_with_a_warning():
    row = game(1, 10, 20, 24, 17)
    staged = stage_partition(Partition("games", 2023), [row, dict(row), game(2, 10, 30, 7, 3)])
    assert staged.frames["games"]["game_id"].to_list() == [1, 2]
    assert staged.warnings == ["games/2023: dropped 1 exact duplicate row(s)"]


# A rule about the rows (a unique key, home != away) has one owner, the quality gate: staging keeps
# the rows as they came, and the gate quarantines the partition naming the check and an example row.
GATE_RULES = {
    "conflicting duplicate game ids": (
        Partition("games", 2023), [game(1, 10, 20, 24, 17), game(1, 10, 20, 24, 18)], {},
        "games.game_id: field_uniqueness fails on 2 row(s), e.g. {game_id: 1}"),
    "the home team is the away team": (
        Partition("games", 2023), [game(1, 10, 10, 24, 17), game(2, 10, 20, 7, 3)], {},
        "games: home_differs_from_away fails on 1 row(s), e.g. {game_id: 1, home_id: 10, away_id: 10}"),
    "a provider twice on one game": (
        Partition("lines", 2023), [{"id": 1, "season": 2023, "week": 1, "seasonType": "regular", "lines": [
            {"provider": "consensus", "spread": -7}, {"provider": "consensus", "spread": -6}]}], {},
        "lines: multiple_fields_uniqueness fails on 2 row(s), e.g. {game_id: 1, provider: 'consensus'}"),
    "a team id twice in the team list": (
        Partition("teams"), [{"id": 61, "school": "Georgia"}, {"id": 61, "school": "Georgia Tech"}], {},
        "teams.team_id: field_uniqueness fails on 2 row(s), e.g. {team_id: 61}"),
    "a school twice in the talent composite, with different values": (
        Partition("talent", 2018), [{"year": 2018, "team": "Army", "talent": 3.3},
                                    {"year": 2018, "team": "Army", "talent": 4.0}],
        {"teams": [{"id": 349, "school": "Army"}]},
        "team_talent: multiple_fields_uniqueness fails on 2 row(s), e.g. {season: 2018, team_id: 349}"),
}


@pytest.mark.parametrize("partition,rows,deps,reason", GATE_RULES.values(), ids=GATE_RULES.keys())
def test_rules_on_rows_are_staged_as_they_came_and_the_gate_quarantines_them(partition, rows, deps, reason):
    from gridiron.quality.gate import judge_partition

    staged = stage_partition(partition, rows, deps)  # no TransformError: staging renames, types, flattens
    verdict = judge_partition(partition.key, staged.frames, max_null_percentage=1.0)
    assert verdict.quarantined
    assert reason in verdict.reason, verdict.reason


def test_placeholder_totals_become_missing_with_a_warning():
    rows = [{"id": 1, "season": 2018, "week": 9, "seasonType": "regular", "lines": [
        {"provider": "Caesars", "spread": -1, "overUnder": -1, "overUnderOpen": None},
        {"provider": "Bovada", "spread": -7, "overUnder": 54.5, "overUnderOpen": 0},
    ]}]
    staged = stage_partition(Partition("lines", 2018), rows)
    assert staged.frames["lines"].select("provider", "over_under", "over_under_open").rows() == [
        ("Bovada", 54.5, None), ("Caesars", None, None)]
    assert staged.warnings == ["lines/2018: 2 non-positive total(s) read as missing"]


TEAMS = [{"id": 333, "school": "Alabama"}, {"id": 349, "school": "Army"}, {"id": 61, "school": "Georgia"}]


def test_talent_maps_school_names_to_ids_and_keeps_a_real_zero():
    rows = [{"year": 2023, "team": "Alabama", "talent": 1015.43}, {"year": 2023, "team": "Georgia", "talent": 977},
            {"year": 2023, "team": "Army", "talent": 0}, {"year": 2023, "team": "Nowhere State", "talent": 12.5}]
    staged = stage_partition(Partition("talent", 2023), rows, {"teams": TEAMS})
    assert staged.frames["team_talent"].rows() == [(2023, 61, "Georgia", 977.0), (2023, 333, "Alabama", 1015.43),
                                                   (2023, 349, "Army", 0.0)]
    assert staged.warnings == ["talent/2023: no team id for Nowhere State; their rows are dropped"]


def test_talent_repeated_rows_the_api_sends_are_dropped_with_a_warning():
    row = {"year": 2018, "team": "Army", "talent": 3.3}
    staged = stage_partition(Partition("talent", 2018), [row, dict(row)], {"teams": TEAMS})
    assert staged.frames["team_talent"].height == 1
    assert staged.warnings == ["talent/2018: dropped 1 exact duplicate row(s)"]


def test_talent_without_the_team_list_or_of_another_season_is_refused():
    with pytest.raises(TransformError, match="talent/2023: the team list is missing"):
        stage_partition(Partition("talent", 2023), [{"year": 2023, "team": "Army", "talent": 1.0}])
    with pytest.raises(TransformError, match="team_talent 2023: holds rows of season 2022"):
        stage_partition(Partition("talent", 2023), [{"year": 2022, "team": "Army", "talent": 1.0}], {"teams": TEAMS})


def test_box_scores_become_typed_columns_one_row_per_game_and_team():
    """Real game 401551789 (2023 title game) and the API's string formats."""
    partition = Partition("games_teams", 2023, "postseason", 1)
    staged = stage_partition(partition, real_rows(partition))
    frame = staged.frames["game_team_stats"]
    game = frame.filter(pl.col("game_id") == 401551789)
    assert game.select("team", "home_away", "points", "total_yards").rows() == [
        ("Michigan", "home", 34, 443), ("Washington", "away", 13, 301)]
    assert frame.select("season", "season_type", "week").unique().rows() == [(2023, "postseason", 1)]
    row = {"id": 1, "teams": [
        {"teamId": 10, "team": "A", "conference": "X", "homeAway": "home", "points": 21, "stats": [
            {"category": "thirdDownEff", "stat": "6-14"}, {"category": "possessionTime", "stat": "36:53"},
            {"category": "sacks", "stat": "2.5"}, {"category": "yardsPerPass", "stat": ".0"},
            {"category": "fourthDownEff", "stat": "1--1"}, {"category": "newThing", "stat": "3"}]},
        {"teamId": 20, "team": "B", "conference": "Y", "homeAway": "away", "points": 7, "stats": []}]}
    staged = stage_partition(Partition("games_teams", 2023, "regular", 3), [row])
    a = staged.frames["game_team_stats"].row(0, named=True)
    assert (a["third_down_conversions"], a["third_down_attempts"], a["possession_seconds"], a["sacks"],
            a["yards_per_pass"]) == (6, 14, 2213, 2.5, 0.0)
    assert a["fourth_down_conversions"] is None and a["fourth_down_attempts"] is None  # "1--1" is impossible
    assert staged.frames["game_team_stats"].row(1, named=True)["total_yards"] is None  # left out: null
    assert any("newThing" in w for w in staged.warnings)
    assert any("1 impossible made-attempts pair(s) read as missing (game 1 A fourthDownEff '1--1')" in w
               for w in staged.warnings)
    bad = {**row, "teams": [{**row["teams"][0], "stats": [{"category": "totalYards", "stat": "lots"}]}]}
    with pytest.raises(TransformError, match="game 1, A: totalYards is 'lots', not a whole number"):
        stage_partition(Partition("games_teams", 2023, "regular", 3), [bad])
    # the parser's shortcut for plain digits agrees with its patterns on what is not plain
    odd = {**row, "teams": [{**row["teams"][0], "stats": [
        {"category": "totalYards", "stat": " -3 "}, {"category": "totalPenaltiesYards", "stat": "5-45"},
        {"category": "thirdDownEff", "stat": "6-5"}, {"category": "firstDowns", "stat": "\uff17"}]}]}
    b = stage_partition(Partition("games_teams", 2023, "regular", 3), [odd]).frames["game_team_stats"].row(0, named=True)
    assert (b["total_yards"], b["penalties"], b["penalty_yards"], b["third_down_attempts"], b["first_downs"]) == (
        -3, 5, 45, None, 7)


def test_a_box_score_side_without_an_id_or_a_side_or_given_twice_is_refused_by_name():
    def side(team_id, home_away, team="A", yards="400"):
        return {"teamId": team_id, "team": team, "conference": "X", "homeAway": home_away, "points": 7,
                "stats": [{"category": "totalYards", "stat": yards}]}
    partition = Partition("games_teams", 2023, "regular", 3)
    with pytest.raises(TransformError, match="game 2 has a team 'B' with id 20 and homeAway 'neutral'"):
        stage_partition(partition, [{"id": 1, "teams": [side(10, "home"), side(None, "away", "C")]},
                                    {"id": 2, "teams": [side(10, "home"), side(20, "neutral", "B")]}][1:])
    with pytest.raises(TransformError, match="game 1 has a team 'C' with id None"):
        stage_partition(partition, [{"id": 1, "teams": [side(10, "home"), side(None, "away", "C")]},
                                    {"id": 2, "teams": [side(10, "home"), side(20, "neutral", "B")]}])
    # the first game (in the payload's order) with a team twice is named, whichever repeat comes first
    with pytest.raises(TransformError, match="game 1 has A more than once with different values"):
        stage_partition(partition, [{"id": 1, "teams": [side(10, "home"), side(20, "away", "B")]},
                                    {"id": 2, "teams": [side(30, "home", "C"), side(30, "away", "C")]},
                                    {"id": 1, "teams": [side(10, "home", yards="401")]}])
    # a side with no homeAway is no transform error: the quality gate's schema judges it
    frame = stage_partition(partition, [{"id": 1, "teams": [side(10, "home"), side(20, None, "B")]}]).frames
    assert set(frame["game_team_stats"]["home_away"].to_list()) == {"home", None}


def test_exact_duplicates_are_dropped_whatever_the_key_order_and_near_duplicates_kept():
    flat = [{"team": "Ohio State", "statName": "games", "statValue": 13},
            {"statValue": 13, "statName": "games", "team": "Ohio State"},  # same row, other key order
            {"team": "Ohio State", "statName": "games", "statValue": 13.0},  # 13.0 is not 13
            {"team": "Ohio State", "statName": "games", "statValue": True}]
    kept, dropped = drop_exact_duplicates(flat)
    assert dropped == 1 and kept == [flat[0], flat[2], flat[3]]

    side = {"teamId": 1, "stats": [{"category": "totalYards", "stat": "400"}]}
    nested = [{"id": 7, "teams": [side]},
              {"teams": [dict(side)], "id": 7},  # the same game again
              {"id": 7, "teams": [{"teamId": 1, "stats": [{"category": "totalYards", "stat": "401"}]}]},
              {"id": 8, "teams": [side]},
              {"teams": [side]}, {"teams": [side]},  # no id: compared serialised
              {"id": True, "teams": [side]}]
    kept, dropped = drop_exact_duplicates(nested)
    assert dropped == 2 and kept == [nested[0], nested[2], nested[3], nested[4], nested[6]]


def _both_paths(partition, rows, dependencies=None):
    """The staged frames and warnings from the payload's bytes (the columnar reader, where it covers
    them) and from its parsed rows (the row path)."""
    from gridiron.sources import normalise

    return (stage_partition(partition, normalise(rows), dependencies),
            stage_partition(partition, rows, dependencies))


def _same(a, b) -> bool:
    return a.warnings == b.warnings and a.frames.keys() == b.frames.keys() and all(
        a.frames[t].schema == b.frames[t].schema and a.frames[t].equals(b.frames[t]) for t in a.frames)


@pytest.mark.parametrize("season", [2014, 2019, 2023])
def test_the_columnar_reader_and_the_row_path_stage_real_seasons_identically(season):
    """Every partition of a real season, weeks included, frame for frame and warning for warning.
    (All ten seasons, 229 partitions, agree the same way; three keep the suite short.)"""
    from datetime import datetime

    from gridiron.game_weeks import game_calendar, game_weeks_of, plan_weeks
    from gridiron.planning import dependencies_of
    from gridiron.sources import SnapshotSource
    from gridiron.transforms.ingest import read_columnar
    from tests.helpers import BUNDLED

    source = SnapshotSource(BUNDLED)
    partitions = [Partition(e, season) for e in ("games", "lines", "teams_fbs", "stats_season", "talent")
                  if season in source.seasons_available(e)] + [Partition("teams"), Partition("conferences")]
    payloads = {p.key: source.fetch(p).payload for p in partitions}
    weeks, _ = plan_weeks(game_weeks_of(game_calendar(payloads[f"games/{season}"])), source.seasons_available,
                          now=datetime.now(UTC))
    payloads.update({p.key: source.fetch(p).payload for p in weeks})
    columnar, empty = 0, 0
    for partition in partitions + weeks:
        deps = {d.key: payloads[d.key] for d in dependencies_of(partition) if d.key in payloads}
        from_bytes, from_rows = _both_paths(partition, payloads[partition.key], deps)
        assert _same(from_bytes, from_rows), partition.key
        from gridiron.sources import normalise
        columnar += read_columnar(partition, normalise(payloads[partition.key])) is not None
        empty += partition.week is not None and not payloads[partition.key]  # an empty week: the row path
    # games, lines, stats (from 2018) and every week with box scores
    assert columnar == 2 + (season >= 2018) + len(weeks) - empty


def test_payloads_the_columnar_reader_leaves_to_the_row_path_say_the_same():
    """Exact duplicates, a number sent as a string, an added field, a missing one, a bad value, and
    box scores in odd shapes: from bytes they are staged, warned and refused as from rows."""
    row = game(1, 10, 20, 24, 17)
    cases = [
        (Partition("games", 2023), [row, dict(row), game(2, 10, 30, 7, 3)]),
        (Partition("games", 2023), [{**row, "homePoints": "24"}, game(2, 10, 30, 7, 3)]),
        (Partition("games", 2023), [{**row, "playoff": True}, {k: v for k, v in game(2, 10, 30, 7, 3).items()
                                                                if k != "excitementIndex"}]),
        (Partition("lines", 2023), [{"id": 1, "season": 2023, "week": 1, "seasonType": "regular", "lines": [
            {"provider": "consensus", "spread": -7, "overUnder": -1}, {"provider": "Bovada", "spread": -6.5}]},
            {"id": 2, "season": 2023, "week": 1, "seasonType": "regular", "lines": []},
            {"id": 3, "season": 2023, "week": 1, "seasonType": "regular", "lines": None}]),
        (Partition("games_teams", 2023, "regular", 3), [
            {"id": 1, "teams": [{"teamId": 10, "team": "A", "conference": "X", "homeAway": "home", "points": 21,
                                 "stats": [{"category": "totalYards", "stat": 400}, {"category": "newThing", "stat": "3"},
                                           {"category": "firstDowns", "stat": "\uff17"}]},
                                {"teamId": 20, "team": "B", "conference": "Y", "homeAway": "away", "points": 7,
                                 "stats": []}]},
            {"id": 2, "teams": []}]),
    ]
    for partition, rows in cases:
        from_bytes, from_rows = _both_paths(partition, rows)
        assert _same(from_bytes, from_rows), partition.key
        assert from_bytes.warnings == from_rows.warnings
    with pytest.raises(TransformError, match="column 'homePoints' has 'many'"):
        _both_paths(Partition("games", 2023), [{**row, "homePoints": "many"}])
    with pytest.raises(TransformError, match="game 1 has teams 'oops', expected a list"):
        _both_paths(Partition("games_teams", 2023, "regular", 3), [{"id": 1, "teams": "oops"}])
