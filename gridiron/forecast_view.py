"""What a fan reads of the forecasts: the games still to kick off with the pick, the margin, the
probability and the line, and how past weeks went. Pure functions over the frames the dashboard
and `gridiron status` read (`storage.operations`: `upcoming` and `weekly_ledger`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

WEEK = ("season", "season_type", "week")


def still_upcoming(predictions: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The forecasts whose game kicks off after `now`, soonest first (a game that kicked off since
    the forecast was made is no longer upcoming, whatever the last run said)."""
    if predictions.is_empty():
        return predictions
    return predictions.filter(pl.col("start_date") > now).sort("start_date", "game_id")


def next_week(upcoming: pl.DataFrame) -> pl.DataFrame:
    """The games of the first week among `upcoming` (season, season type and week of its soonest game)."""
    if upcoming.is_empty():
        return upcoming
    first = upcoming.sort("start_date", "game_id").row(0, named=True)
    return upcoming.filter(*(pl.col(column) == first[column] for column in WEEK))


def week_label(row: dict) -> str:
    """"2023 week 8" for a regular-season week, "2023 postseason" for the bowls."""
    return f"{row['season']} " + (f"week {row['week']}" if row["season_type"] == "regular" else row["season_type"])


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _side(margin: float, home: str, away: str) -> tuple[str, float]:
    return (home, margin) if margin >= 0 else (away, -margin)


def pick_rows(upcoming: pl.DataFrame, timezone: str | None = None) -> list[dict]:
    """One row per game as a reader wants it: the kickoff in `timezone` (the machine's when None),
    the week, the game, the pick with its margin and probability, the closing line when there is
    one, and a note when the ratings know little of a side."""
    zone = ZoneInfo(timezone) if timezone else None
    rows = []
    for game in upcoming.iter_rows(named=True):
        home, away = game["home_team"], game["away_team"]
        pick, by = _side(game["predicted_margin"], home, away)
        probability = game["home_win_prob"] if pick == home else 1 - game["home_win_prob"]
        spread = game.get("spread")
        if spread is None:
            line = "-"
        elif spread == 0:
            line = "pick'em"
        else:
            favourite = home if spread < 0 else away
            line = f"{favourite} -{abs(spread):g}"
        kickoff = game["start_date"].astimezone(zone)
        basis = game.get("basis_games")
        rows.append({
            "kickoff": f"{kickoff:%a %Y-%m-%d %H:%M %Z}",
            "week": week_label(game),
            "game": f"{away} {'v' if game.get('is_neutral_site') else 'at'} {home}",
            "pick": f"{pick} by {by:.1f}",
            "win probability": f"{100 * probability:.0f}%",
            "line": line,
            "confidence": f"low: {basis} game(s) on record" if game.get("is_low_confidence") else "",
        })
    return rows


def how_we_did(ledger: pl.DataFrame) -> list[dict]:
    """One row per past week of the ledger (the last forecast made before each kickoff), newest first:
    games, straight up, MAE and Brier, beside the closing line on the same games where it exists."""
    rows = []
    for week in ledger.iter_rows(named=True):
        rows.append({
            "week": week_label(week), "games": week["games"], "straight up": _share(week["su_accuracy"]),
            "MAE": f"{week['mae']:.1f}", "Brier": "-" if week["brier"] is None else f"{week['brier']:.3f}",
            "games with a line": week["line_games"],
            "we, on those": _share(week["su_on_line_games"]), "the line": _share(week["line_su_accuracy"]),
        })
    return rows
