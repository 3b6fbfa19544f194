"""Partition planning: what exists, what is fetched under the quota, what changed."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from gridiron.endpoints import ENDPOINTS
from gridiron.game_weeks import current_season, game_weeks_of, is_season_complete, kickoff_settles, plan_weeks
from gridiron.planning import (
    CollectedPartition,
    ManifestEntry,
    allowed_age_days,
    dependencies_of,
    mark_changes,
    plan_fetches,
    plan_partitions,
    shrink_problem,
)
from gridiron.sources import Partition

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


def keys(partitions):
    return [p.key for p in partitions]


@pytest.mark.parametrize("today,season", [
    (date(2026, 11, 27), 2026), (date(2027, 1, 10), 2026), (date(2027, 8, 1), 2027),
])
def test_current_season(today, season):
    assert current_season(today) == season


def test_a_season_is_complete_after_its_postseason():
    assert not is_season_complete(2026, date(2027, 1, 20))
    assert is_season_complete(2026, date(2027, 2, 1))


def test_plan_covers_configured_seasons_the_source_has():
    available = {"games": {2022, 2023}, "lines": {2023}, "teams_fbs": set(), "stats_season": {2019},
                 "talent": {2022}}
    partitions = plan_partitions([2022, 2023], available.get)
    assert keys(partitions) == ["games/2022", "games/2023", "lines/2023", "talent/2022", "teams", "conferences"]


def test_api_plans_every_configured_season():
    partitions = plan_partitions([2024], lambda endpoint: None)
    assert keys(partitions) == [
        "games/2024", "lines/2024", "teams_fbs/2024", "stats_season/2024", "talent/2024", "teams", "conferences"]


def test_the_api_is_not_asked_for_a_season_before_an_endpoints_first():
    """The talent composite begins with 2015 (the endpoint registry): asking for 2014 would spend a
    call on an empty answer, and a backfill of older seasons would spend one per season."""
    assert ENDPOINTS["talent"].first_season == 2015
    assert keys(plan_partitions([2014, 2015], lambda endpoint: None)) == [
        "games/2014", "games/2015", "lines/2014", "lines/2015", "teams_fbs/2014", "teams_fbs/2015",
        "stats_season/2014", "stats_season/2015", "talent/2015", "teams", "conferences"]


def test_the_endpoint_registry_states_each_endpoints_facts_once():
    assert {name: e.tables for name, e in ENDPOINTS.items()} == {
        "games": ("games", "standings"), "lines": ("lines",), "teams_fbs": ("team_seasons",),
        "stats_season": ("team_season_stats",), "talent": ("team_talent",), "games_teams": ("game_team_stats",),
        "teams": ("teams",), "conferences": ("conferences",)}
    assert [d.key for d in dependencies_of(Partition("stats_season", 2023))] == ["teams_fbs/2023", "teams"]
    assert Partition("games_teams", 2023, "regular", 5).params == {"year": 2023, "seasonType": "regular", "week": 5}
    assert Partition.from_key("games/2023") is Partition.from_key("games/2023")  # parsed once


def test_a_free_source_is_read_in_full_when_it_has_no_version_tags():
    partitions = plan_partitions([2022, 2023], lambda e: None)
    manifest = {p.key: ManifestEntry(p.key, "x", NOW) for p in partitions}
    plan = plan_fetches(partitions, manifest, now=NOW, refresh_age=WEEK, costs_quota=False)
    assert plan.fetch == partitions and not plan.skipped


def test_a_free_source_reads_only_what_its_version_tags_say_changed():
    games, lines, stats, never = (Partition("games", 2023), Partition("lines", 2023),
                                  Partition("stats_season", 2023), Partition("talent", 2023))
    manifest = {p.key: ManifestEntry(p.key, "x", NOW, version="v1") for p in (games, lines)}
    manifest[stats.key] = ManifestEntry(stats.key, "x", NOW)  # loaded before tags were kept
    versions = {games.key: "v1", lines.key: "v2", stats.key: "v1", never.key: "v1"}
    plan = plan_fetches([games, lines, stats, never], manifest, now=NOW, refresh_age=WEEK, costs_quota=False,
                        versions=versions)
    assert plan.fetch == [lines, stats, never]
    assert plan.skipped == [(games, "unchanged at the source since it was loaded")]
    assert plan_fetches([games], manifest, now=NOW, refresh_age=WEEK, costs_quota=False, versions={}).fetch == [games]
    assert plan_fetches([games], manifest, now=NOW, refresh_age=WEEK, costs_quota=False, versions=versions,
                        full_refresh=True).fetch == [games]


def test_recently_fetched_complete_seasons_are_not_fetched_again():
    partitions = plan_partitions([2024, 2025, 2026], lambda e: None)
    manifest = {
        p.key: ManifestEntry(p.key, "x", NOW - timedelta(days=2)) for p in partitions
    }
    manifest["games/2024"] = ManifestEntry("games/2024", "x", NOW - timedelta(days=30))
    plan = plan_fetches(partitions, manifest, now=NOW, refresh_age=WEEK, costs_quota=True)
    fetched = keys(plan.fetch)
    # the season in progress first, then the stale one; fresh complete seasons are skipped
    assert fetched[:5] == ["games/2026", "lines/2026", "teams_fbs/2026", "stats_season/2026", "talent/2026"]
    assert fetched[5:] == ["games/2024"]
    reasons = {p.key: r for p, r in plan.skipped}
    assert sorted(reasons) == sorted(
        ["games/2025", "lines/2025", "teams_fbs/2025", "stats_season/2025", "talent/2025", "lines/2024",
         "teams_fbs/2024", "stats_season/2024", "talent/2024", "teams", "conferences"])
    assert reasons["games/2025"] == "complete season, fetched 2.0 days ago (refresh age 7 days)"
    assert reasons["teams"] == "reference list, fetched 2.0 days ago (refresh age 7 days)"


def test_budget_fetches_what_matters_first():
    partitions = plan_partitions([2023, 2024, 2025, 2026], lambda e: None)
    plan = plan_fetches(partitions, {}, now=NOW, refresh_age=WEEK, costs_quota=True, calls_budget=9)
    # the season in progress, then the reference lists every game joins to, then newest seasons
    assert keys(plan.fetch) == [
        "games/2026", "lines/2026", "teams_fbs/2026", "stats_season/2026", "talent/2026", "teams", "conferences",
        "games/2025", "lines/2025"]
    assert len(plan.skipped) == len(partitions) - 9
    assert all("over the API call budget (9 calls" in reason for _, reason in plan.skipped)


def test_full_refresh_fetches_everything_even_when_fresh():
    partitions = plan_partitions([2023], lambda e: None)
    manifest = {p.key: ManifestEntry(p.key, "x", NOW) for p in partitions}
    plan = plan_fetches(partitions, manifest, now=NOW, refresh_age=WEEK, costs_quota=True, full_refresh=True)
    assert sorted(keys(plan.fetch)) == sorted(keys(partitions))


def _collected(key, digest):
    return CollectedPartition(key=key, checksum=digest, rows=1, fetched_at=NOW, source="snapshot")


def test_changes_follow_checksums_dependencies_and_fingerprints():
    fingerprints = {"games": "g1", "teams_fbs": "f1", "stats_season": "s1"}
    first = mark_changes(
        [_collected("games/2023", "a"), _collected("teams_fbs/2023", "b"), _collected("stats_season/2023", "c")],
        {}, fingerprints)
    assert all(p.is_changed for p in first)
    manifest = {p.key: ManifestEntry(p.key, p.checksum, NOW, p.signature) for p in first}

    same = mark_changes([_collected(p.key, p.checksum) for p in first], manifest, fingerprints)
    assert not any(p.is_changed for p in same)

    # a new team list for the season changes the stats partition that maps names through it
    new_fbs = mark_changes(
        [_collected("games/2023", "a"), _collected("teams_fbs/2023", "B"), _collected("stats_season/2023", "c")],
        manifest, fingerprints)
    assert [p.key for p in new_fbs if p.is_changed] == ["teams_fbs/2023", "stats_season/2023"]

    new_code = mark_changes([_collected("games/2023", "a")], manifest, {**fingerprints, "games": "g2"})
    assert new_code[0].is_changed


def test_partition_keys_round_trip_and_reject_nonsense():
    assert Partition.from_key("games/2023") == Partition("games", 2023)
    assert Partition.from_key("teams").params == {}
    assert Partition("games", 2023).params == {"year": 2023, "seasonType": "both"}
    with pytest.raises(ValueError, match="unknown endpoint"):
        Partition("plays", 2023)
    with pytest.raises(ValueError, match="needs season"):
        Partition("games")


@pytest.mark.parametrize("rows,loaded,fraction,refused", [
    (0, 3734, 0.5, True), (1800, 3734, 0.5, True), (1900, 3734, 0.5, False),
    (0, 0, 0.5, False), (0, 3734, 1.0, False), (5000, 3734, 0.5, False),
])
def test_a_partition_that_lost_too_many_rows_is_refused(rows, loaded, fraction, refused):
    entry = ManifestEntry("games/2023", "x", NOW, "sig", rows=loaded)
    fetched = CollectedPartition(key="games/2023", checksum="y", rows=rows, fetched_at=NOW, source="api")
    problem = shrink_problem(fetched, entry, fraction)
    assert (problem is not None) == refused
    if refused:
        assert f"returned {rows} rows where {loaded} are loaded" in problem


def test_season_stats_depend_on_that_seasons_fbs_list_and_the_team_list():
    from gridiron.planning import dependencies_of, payloads_needed

    assert keys(dependencies_of(Partition("stats_season", 2023))) == ["teams_fbs/2023", "teams"]
    changed = replace(_collected("stats_season/2023", "a"), is_changed=True)
    assert payloads_needed([changed, _collected("games/2023", "b")]) == {"stats_season/2023", "teams_fbs/2023", "teams"}


def kickoff(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def test_weekly_partitions_follow_the_games_and_only_unsettled_weeks_are_fetched_again():
    """A weekly run in season: the settled weeks stay, the week just played is fetched (and the one
    still settling), a week not yet kicked off is not planned at all."""
    calendar = [
        (2026, "regular", 11, kickoff(16), True), (2026, "regular", 11, kickoff(15.5), True),
        (2026, "regular", 12, kickoff(9), True),
        (2026, "regular", 13, kickoff(1.5), True), (2026, "regular", 13, kickoff(1), False),
        (2026, "regular", 14, kickoff(-6), False),
        (2025, "postseason", 1, kickoff(330), True),
    ]
    weeks, settles = plan_weeks(game_weeks_of(calendar), lambda endpoint: None, now=NOW)
    assert keys(weeks) == ["games_teams/2025/postseason/1", "games_teams/2026/regular/11",
                           "games_teams/2026/regular/12", "games_teams/2026/regular/13"]
    assert settles["games_teams/2026/regular/11"] == kickoff(15.5) + timedelta(days=2)
    # a game still to be completed: the week settles two weeks after its last kickoff, not before
    assert settles["games_teams/2026/regular/13"] == kickoff(1) + timedelta(days=14)
    manifest = {
        # fetched after it settled: done
        "games_teams/2026/regular/11": ManifestEntry("games_teams/2026/regular/11", "x", kickoff(12)),
        # fetched the day after its games, before it settled: fetched again
        "games_teams/2026/regular/12": ManifestEntry("games_teams/2026/regular/12", "x", kickoff(8)),
        "games_teams/2025/postseason/1": ManifestEntry("games_teams/2025/postseason/1", "x", kickoff(300)),
    }
    plan = plan_fetches(weeks, manifest, now=NOW, refresh_age=timedelta(days=3650), costs_quota=True,
                        settles=settles)
    assert keys(plan.fetch) == ["games_teams/2026/regular/13", "games_teams/2026/regular/12"]
    reasons = {p.key: r for p, r in plan.skipped}
    assert reasons["games_teams/2026/regular/11"].startswith("settled week, fetched 12.0 days ago")
    assert Partition.from_key("games_teams/2026/regular/13").params == {"year": 2026, "seasonType": "regular", "week": 13}


def test_weekly_partition_keys_round_trip_and_need_their_week():
    partition = Partition("games_teams", 2023, "postseason", 1)
    assert Partition.from_key(partition.key) == partition and partition.scope == (2023, "postseason", 1)
    with pytest.raises(ValueError, match="needs season type and week"):
        Partition("games_teams", 2023)
    with pytest.raises(ValueError, match="takes no season type and week"):
        Partition("games", 2023, "regular", 1)
    with pytest.raises(ValueError, match="not a partition key"):
        Partition.from_key("games_teams/2023/regular")


def test_a_backfill_is_chunked_oldest_first_and_bad_ranges_are_named():
    from gridiron.planning import season_chunks

    assert season_chunks(2014, 2023, 3) == [(2014, 2016), (2017, 2019), (2020, 2022), (2023, 2023)]
    assert season_chunks(2023, 2023, 2) == [(2023, 2023)]
    with pytest.raises(ValueError, match="--from 2024 is after --to 2023"):
        season_chunks(2024, 2023, 1)
    with pytest.raises(ValueError, match=r"--chunk must be at least 1 season \(got 0\)"):
        season_chunks(2014, 2015, 0)


def test_a_fetch_outcome_stops_the_run_holds_for_the_quota_fails_or_goes_on():
    from gridiron.planning import fetch_verdict, per_item
    from gridiron.sources.errors import AuthError, QuotaReserveReached, ServerError, SourceUnavailable

    fetched = CollectedPartition("games/2023", "c", 3000, NOW, "api")
    loaded = ManifestEntry("games/2023", "b", NOW, rows=3734)
    assert fetch_verdict(AuthError("HTTP 401: the key is refused"), loaded, 0.5) == ("stop", "HTTP 401: the key is refused")
    assert fetch_verdict(SourceUnavailable("the API does not answer"), None, 0.5)[0] == "stop"
    held = QuotaReserveReached("the calls left (50) reached the reserve (50)")
    assert fetch_verdict(held, None, 0.5) == ("held", held.message)
    assert fetch_verdict(ServerError("HTTP 503"), loaded, 0.5) == ("failed", "HTTP 503")
    assert fetch_verdict(fetched, loaded, 0.5) == ("fetched", None)  # 3000 of 3734: within half
    verdict, why = fetch_verdict(fetched, loaded, 0.1)
    assert verdict == "failed" and "returned 3000 rows where 3734 are loaded" in why
    error = ServerError("HTTP 500")
    assert per_item(["a", "b"], [1, 2]) == [1, 2] and per_item(["a", "b"], error) == [error, error]


def test_a_collected_partition_is_frozen_and_marking_changes_returns_new_ones():
    collected = _collected("games/2023", "a")
    with pytest.raises(FrozenInstanceError):
        collected.is_changed = True
    marked = mark_changes([collected], {}, {"games": "g1"})
    assert marked[0].is_changed and marked[0].signature and not collected.is_changed and collected.signature == ""


def test_in_season_the_talent_and_fbs_lists_are_fetched_once_after_kickoff_then_refreshed_like_a_complete_season():
    """The preseason talent composite and the season's FBS membership do not change once the season
    kicked off: a weekly run in season fetches them once after kickoff, not every week."""
    season = [Partition(e, 2026) for e in ("games", "lines", "teams_fbs", "stats_season", "talent")]
    weeks = game_weeks_of([(2026, "regular", 1, kickoff(88), True), (2026, "regular", 2, kickoff(80), True)])
    settles = kickoff_settles([*season, Partition("teams")], weeks)
    assert settles == {"teams_fbs/2026": kickoff(88), "talent/2026": kickoff(88)}
    assert kickoff_settles(season, []) == {}  # the season's games not known yet: in progress, fetched
    preseason = {p.key: ManifestEntry(p.key, "x", kickoff(90)) for p in season}  # fetched before kickoff
    plan = plan_fetches(season, preseason, now=NOW, refresh_age=WEEK, costs_quota=True, settles=settles)
    assert sorted(keys(plan.fetch)) == sorted(keys(season))  # once more after kickoff
    since = {p.key: ManifestEntry(p.key, "x", kickoff(8)) for p in season}  # last week's run
    plan = plan_fetches(season, since, now=NOW, refresh_age=timedelta(days=30), costs_quota=True, settles=settles)
    assert keys(plan.fetch) == ["games/2026", "lines/2026", "stats_season/2026"]
    reasons = {p.key: r for p, r in plan.skipped}
    assert reasons["talent/2026"] == "season fixed since its first kickoff, fetched 8.0 days ago (refresh age 30 days)"
    # and it is judged stale like a reference list, not like the week-old data of a season in progress
    assert allowed_age_days(Partition("talent", 2026), "weekly", 30, NOW.date()) == 37
    assert allowed_age_days(Partition("games", 2026), "weekly", 30, NOW.date()) == 10.5
    assert allowed_age_days(Partition("talent", 2024), "weekly", 30, NOW.date()) is None


def test_a_week_with_a_game_never_completed_settles_two_weeks_after_its_last_kickoff():
    """A lower-division game the API never scores (or one moved or cancelled) must not make its
    week cost a call on every run for the rest of the season."""
    calendar = [(2026, "regular", 5, kickoff(30), True), (2026, "regular", 5, kickoff(29), False)]
    weeks, settles = plan_weeks(game_weeks_of(calendar), lambda endpoint: None, now=NOW)
    assert settles == {"games_teams/2026/regular/5": kickoff(29) + timedelta(days=14)}
    fetched_before = {"games_teams/2026/regular/5": ManifestEntry("games_teams/2026/regular/5", "x", kickoff(22))}
    fetched_after = {"games_teams/2026/regular/5": ManifestEntry("games_teams/2026/regular/5", "x", kickoff(8))}
    plan = plan_fetches(weeks, fetched_before, now=NOW, refresh_age=timedelta(days=3650), costs_quota=True,
                        settles=settles)
    assert keys(plan.fetch) == ["games_teams/2026/regular/5"]  # once more, after it settled
    plan = plan_fetches(weeks, fetched_after, now=NOW, refresh_age=timedelta(days=3650), costs_quota=True,
                        settles=settles)
    assert plan.fetch == [] and plan.skipped[0][1].startswith("settled week, fetched 8.0 days ago")


def test_lines_are_asked_for_both_season_types_so_the_bowls_have_theirs():
    # the API's /lines answers the regular season only when seasonType is not given
    assert Partition("lines", 2023).params == {"year": 2023, "seasonType": "both"}
    assert Partition("games", 2023).params == {"year": 2023, "seasonType": "both"}
