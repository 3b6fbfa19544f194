"""Elo ratings for college football, one game at a time. Pure: state in, state out.

- Expected result: 1 / (1 + 10 ** (-(home - away + hfa) / 400)), `hfa` on true home games only.
- Update: K x margin-of-victory multiplier x (result - expected). The multiplier
  ln(|margin| + 1) x 2.2 / (0.001 x winner's rating edge + 2.2) grows with the margin but less when
  the favourite wins big (so ratings do not run away), as in the published NFL/CFB Elo models.
- New teams start at their division's mean (FBS above FCS above Division II/III above the rest);
  between seasons every rating moves `regression` of the way back to its division's mean (or, with
  `regress_to="conference"`, its conference's mean last season: no better on 2015-2018, so not the default).
- A rating point difference of 400 is 10:1 odds; `points_per_elo` turns a difference into a
  predicted margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DIVISION_MEANS = {"fbs": 1500.0, "fcs": 1200.0, "ii": 1000.0, "iii": 900.0}
OTHER_MEAN = 850.0  # non-NCAA opponents


@dataclass(frozen=True)
class EloSettings:
    """Elo's K factor, home-field edge (rating points), regression between seasons and what it regresses to."""

    k: float = 25.0
    hfa: float = 55.0
    regression: float = 0.33
    points_per_elo: float = 1 / 25  # 25 rating points ~ one point of margin
    regress_to: str = "division"  # or "conference": the mean of the team's conference last season


@dataclass
class EloState:
    """The running Elo ratings, each team's division and last conference, and the season they are at."""

    ratings: dict[int, float] = field(default_factory=dict)
    divisions: dict[int, str | None] = field(default_factory=dict)
    conferences: dict[int, str] = field(default_factory=dict)  # the conference a team last played in
    season: int | None = None


def division_mean(division: str | None) -> float:
    """The rating a team new to the data starts from, by its division."""
    return DIVISION_MEANS.get(division or "", OTHER_MEAN)


def expected_home(home: float, away: float, hfa: float) -> float:
    """The home side's expected score (win probability) from two ratings and the home edge."""
    return 1.0 / (1.0 + 10 ** (-(home - away + hfa) / 400.0))


def mov_multiplier(margin: float, winner_edge: float) -> float:
    """How much a margin of victory scales an update, damped when the favourite wins."""
    return math.log(abs(margin) + 1.0) * 2.2 / (0.001 * winner_edge + 2.2)


def rating(state: EloState, team: int, division: str | None) -> float:
    """A team's rating, starting it at its division's mean the first time it is seen."""
    if team not in state.ratings:
        state.ratings[team] = division_mean(division)
    if division:
        state.divisions[team] = division
    return state.ratings[team]


def start_season(state: EloState, season: int, settings: EloSettings) -> None:
    """Move every rating `regression` of the way back to its division's mean, or with
    `regress_to="conference"` to its conference's mean rating (conferences of at least four rated
    teams; the division's otherwise), once per season."""
    if state.season is not None and season > state.season:
        conference_means: dict[str, float] = {}
        if settings.regress_to == "conference":
            members: dict[str, list[float]] = {}
            for team, conference in state.conferences.items():
                if team in state.ratings:
                    members.setdefault(conference, []).append(state.ratings[team])
            conference_means = {c: sum(r) / len(r) for c, r in members.items() if len(r) >= 4}
        for team, value in state.ratings.items():
            mean = conference_means.get(state.conferences.get(team, ""), division_mean(state.divisions.get(team)))
            state.ratings[team] = value + settings.regression * (mean - value)
    state.season = season if state.season is None else max(state.season, season)


def pregame(state: EloState, home: int, away: int, home_division: str | None, away_division: str | None,
            neutral: bool, settings: EloSettings) -> tuple[float, float, float]:
    """(home rating, away rating, home win probability) before the game."""
    home_rating = rating(state, home, home_division)
    away_rating = rating(state, away, away_division)
    hfa = 0.0 if neutral else settings.hfa
    return home_rating, away_rating, expected_home(home_rating, away_rating, hfa)


def update(state: EloState, home: int, away: int, home_points: int, away_points: int, neutral: bool,
           settings: EloSettings, home_division: str | None = None, away_division: str | None = None) -> float:
    """Apply one result; returns the rating points the home team gained (the away team lost them)."""
    home_rating, away_rating, expected = pregame(state, home, away, home_division, away_division, neutral, settings)
    margin = home_points - away_points
    result = 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5
    hfa = 0.0 if neutral else settings.hfa
    edge = (home_rating + hfa - away_rating) if margin > 0 else (away_rating - home_rating - hfa)
    multiplier = mov_multiplier(margin, edge) if margin else 1.0
    shift = settings.k * multiplier * (result - expected)
    state.ratings[home] = home_rating + shift
    state.ratings[away] = away_rating - shift
    return shift
