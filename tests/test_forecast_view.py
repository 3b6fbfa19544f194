"""What a fan reads of the forecasts: upcoming after now, next week, the pick, the line and the
ledger's weeks (pure functions over small inline frames)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from gridiron.forecast_view import how_we_did, next_week, pick_rows, still_upcoming

NOW = datetime(2023, 10, 19, 12, tzinfo=UTC)


def games(*rows: dict) -> pl.DataFrame:
    base = {"game_id": 1, "season": 2023, "season_type": "regular", "week": 8, "start_date": NOW,
            "home_team": "Michigan", "away_team": "Michigan State", "is_neutral_site": False,
            "predicted_margin": 7.5, "home_win_prob": 0.7, "basis_games": 30, "is_low_confidence": False,
            "model_version": "m-1", "generated_at": NOW - timedelta(days=1), "spread": None}
    return pl.DataFrame([{**base, **row} for row in rows])


def test_only_games_kicking_off_after_now_are_upcoming_and_next_week_is_the_soonest_games_week():
    frame = games(
        {"game_id": 1, "start_date": NOW - timedelta(hours=1)},  # kicked off since the forecast: not upcoming
        {"game_id": 2, "start_date": NOW + timedelta(days=9), "week": 9},
        {"game_id": 3, "start_date": NOW + timedelta(days=2)},
        {"game_id": 4, "start_date": NOW + timedelta(days=3)},
    )
    ahead = still_upcoming(frame, NOW)
    assert ahead["game_id"].to_list() == [3, 4, 2]
    assert next_week(ahead)["game_id"].to_list() == [3, 4]
    assert still_upcoming(frame.clear(), NOW).is_empty() and next_week(frame.clear()).is_empty()


def test_the_pick_names_the_favoured_side_with_its_own_probability_and_the_line_in_the_readers_timezone():
    frame = games(
        {"game_id": 1, "predicted_margin": -4.26, "home_win_prob": 0.38, "spread": 3.5,
         "start_date": datetime(2023, 10, 21, 16, tzinfo=UTC)},
        {"game_id": 2, "predicted_margin": 10.0, "home_win_prob": 0.81, "spread": -13.5, "is_neutral_site": True},
        {"game_id": 3, "spread": 0.0, "basis_games": 2, "is_low_confidence": True},
    )
    away, neutral, thin = pick_rows(frame, "America/Detroit")
    assert away == {"kickoff": "Sat 2023-10-21 12:00 EDT", "week": "2023 week 8",
                    "game": "Michigan State at Michigan", "pick": "Michigan State by 4.3",
                    "win probability": "62%", "line": "Michigan State -3.5", "confidence": ""}
    assert neutral["game"] == "Michigan State v Michigan" and neutral["line"] == "Michigan -13.5"
    assert neutral["pick"] == "Michigan by 10.0" and neutral["win probability"] == "81%"
    assert thin["line"] == "pick'em" and thin["confidence"] == "low: 2 game(s) on record"
    bowl = pick_rows(games({"season_type": "postseason", "spread": None}), "UTC")[0]
    assert bowl["week"] == "2023 postseason" and bowl["line"] == "-" and bowl["kickoff"].endswith(" UTC")


def test_how_we_did_formats_each_week_of_the_ledger():
    ledger = pl.DataFrame([
        {"season": 2023, "season_type": "regular", "week": 8, "games": 52, "su_accuracy": 0.75, "mae": 11.94,
         "brier": 0.1712, "line_games": 40, "su_on_line_games": 0.725, "line_su_accuracy": 0.75},
        {"season": 2023, "season_type": "regular", "week": 7, "games": 1, "su_accuracy": None, "mae": 0.0,
         "brier": None, "line_games": 0, "su_on_line_games": None, "line_su_accuracy": None},
    ])
    week8, tie = how_we_did(ledger)
    assert week8 == {"week": "2023 week 8", "games": 52, "straight up": "75.0%", "MAE": "11.9", "Brier": "0.171",
                     "games with a line": 40, "we, on those": "72.5%", "the line": "75.0%"}
    assert tie["straight up"] == tie["Brier"] == tie["the line"] == "-"  # a tie has no side to pick
