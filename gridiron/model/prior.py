"""The preseason prior: each season's rating of every team before it starts, from the last seasons'
ratings and the season's 247Sports talent composite (weights fitted on earlier seasons), and the
talent table the features read. Pure, over the walk's history arrays."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from gridiron.model.ratings import DIVISIONS, HOME_EDGE, division_index, fit_season_ratings


@dataclass(frozen=True)
class TalentTable:
    """The talent composites as the features read them: a team's for the season, else the season
    before's, else the season's 5th percentile (a team the composite does not list is FCS or
    below); None in a season without a composite."""

    known: dict[tuple[int, int], float]
    low: dict[int, float]

    @classmethod
    def of_frame(cls, talent: pl.DataFrame | None) -> TalentTable:
        """The table of `team_talent` rows (empty without any)."""
        if talent is None or talent.is_empty():
            return cls({}, {})
        rows = talent.select(pl.col("season").cast(pl.Int64), pl.col("team_id").cast(pl.Int64),
                             pl.col("talent").cast(pl.Float64)).drop_nulls("talent")
        low = rows.group_by("season").agg(pl.col("talent").quantile(0.05))
        return cls({(s, t): v for s, t, v in rows.drop_nulls().iter_rows()}, dict(low.iter_rows()))

    def value(self, season: int, team: int) -> float | None:
        """A team's composite for the season, else the season before's, else the season's low end; None in a season without one."""
        if season not in self.low:
            return None
        return self.known.get((season, team), self.known.get((season - 1, team), self.low[season]))


DEFAULT_PRIOR_WEIGHTS = (0.6, 0.15, 0.0)  # last season, the one before, talent: before any season can fit them


def prior_inputs(team: int, season: int, season_end: dict[int, dict[int, float]],
                 talent: TalentTable, division_mean: dict[int, float],
                 long_ratings: dict[int, float]) -> tuple[float, float, float]:
    """(the recency-weighted rating of the last seasons, last season's own rating, talent in
    hundreds of points) of a team for `season`; a team new to the data takes its division's mean."""
    last = season_end.get(season - 1, {})
    r2 = last.get(team, division_mean.get(team, 0.0))
    r1 = long_ratings.get(team, r2)
    value = talent.value(season, team)
    return r1, r2, value / 100.0 if value is not None else 0.0


def fit_prior_weights(history: dict[str, np.ndarray], inputs: dict[int, dict[int, tuple[float, float, float]]],
                      seasons: list[int], use_talent: bool) -> tuple[tuple[float, float, float], float]:
    """How much last season's rating, the one before and talent say about a season's margins: a
    least-squares fit of the margins of `seasons` (earlier ones, whose inputs were known before
    them) on the home-minus-away inputs and home field; the defaults while fewer than 500 games."""
    keep = np.isin(history["season"], seasons) if seasons and len(history["day"]) else np.zeros(0, bool)
    if keep.sum() < 500:
        return DEFAULT_PRIOR_WEIGHTS, HOME_EDGE
    x = []
    for season, home, away, neutral in zip(history["season"][keep], history["home"][keep], history["away"][keep],
                                          history["neutral"][keep]):
        h, a = inputs[season][home], inputs[season][away]
        x.append((h[0] - a[0], h[1] - a[1], h[2] - a[2], 0.0 if neutral else 1.0))
    x = np.asarray(x)
    if not use_talent:
        x[:, 2] = 0.0
    coef = np.linalg.lstsq(x, history["margin"][keep], rcond=None)[0]
    return (float(coef[0]), float(coef[1]), float(coef[2]) if use_talent else 0.0), float(coef[3])


_PRIOR_STATE = ("season_end", "inputs", "prior", "hfa", "season")  # what a season's walk changes


class PreseasonPrior:
    """Each season's preseason rating of every team: a fit (on earlier seasons' margins) of the
    recency-weighted rating of the last seasons, last season's own rating and the season's talent
    composite. Season by season: at a season's start, the season before's own ratings are fitted
    (shrunk toward its prior), then the weights and this season's prior."""

    def __init__(self, season_teams: dict[int, set[int]], team_division: dict[int, int], talent: TalentTable,
                 prior_games: float):
        self.season_teams, self.team_division, self.talent = season_teams, team_division, talent
        self.prior_games = prior_games
        self.season_end: dict[int, dict[int, float]] = {}
        self.inputs: dict[int, dict[int, tuple[float, float, float]]] = {}
        self.prior: dict[int, float] = {}
        self.hfa, self.season = HOME_EDGE, None

    def save(self) -> dict:
        """What a season's walk changes (`_PRIOR_STATE`), for a checkpoint."""
        return {name: getattr(self, name) for name in _PRIOR_STATE}

    def restore(self, saved: dict) -> None:
        """Take back the state `save` kept (the schedule, talent and settings are the walk's own)."""
        for name in _PRIOR_STATE:
            setattr(self, name, saved[name])

    @classmethod
    def of_schedule(cls, frame: pl.DataFrame, talent: pl.DataFrame | None, prior_games: float) -> PreseasonPrior:
        """Every season's teams and each team's division, from the schedule (known before kickoff)."""
        season_teams: dict[int, set[int]] = defaultdict(set)
        team_division: dict[int, int] = {}
        for season, home, away, hclass, aclass in frame.select(
                "season", "home_id", "away_id", "home_classification", "away_classification").iter_rows():
            season_teams[season].update((home, away))
            team_division[home] = division_index(hclass)
            team_division[away] = division_index(aclass)
        return cls(season_teams, team_division, TalentTable.of_frame(talent), prior_games)

    def start_season(self, history: dict[str, np.ndarray], season: int,
                     long_ratings: dict[int, float]) -> tuple[dict[int, float], float]:
        """The season's prior ({team: points}, home edge); computed at its first slate."""
        if season == self.season:
            return self.prior, self.hfa
        if self.season is not None:
            self.season_end[self.season] = fit_season_ratings(
                history, self.season, float("inf"), self.prior, self.hfa, self.prior_games)[0]
        last = self.season_end.get(season - 1, {})
        by_division: dict[int, list[float]] = defaultdict(list)
        for team, value in last.items():
            by_division[self.team_division.get(team, len(DIVISIONS) - 1)].append(value)
        means = {d: float(np.mean(v)) for d, v in by_division.items()}
        division_mean = {team: means.get(d, 0.0) for team, d in self.team_division.items()}
        self.inputs[season] = {team: prior_inputs(team, season, self.season_end, self.talent, division_mean, long_ratings)
                               for team in self.season_teams[season] | set(last)}
        informed = [s for s in self.inputs if s < season and self.season_end.get(s - 1)]  # inputs from the season before
        weights, self.hfa = fit_prior_weights(history, self.inputs, informed, season in self.talent.low)
        self.prior = {team: weights[0] * r1 + weights[1] * r2 + weights[2] * t
                      for team, (r1, r2, t) in self.inputs[season].items()} if last else {}
        self.season = season
        return self.prior, self.hfa


def prior_columns(prior: dict[int, float], prior_hfa: float, shrunk: dict[int, float], shrunk_hfa: float,
                  home: int, away: int, neutral: bool, games_played: int, decay_games: float) -> dict[str, float]:
    """A game's prior margin, its in-season margin shrunk toward the prior, and the prior weighted
    toward the first games of a season like `talent_early`."""
    home_field = 0.0 if neutral else 1.0
    prior_margin = prior.get(home, 0.0) - prior.get(away, 0.0) + home_field * prior_hfa
    return {"prior_margin": prior_margin,
            "season_margin": shrunk.get(home, 0.0) - shrunk.get(away, 0.0) + home_field * shrunk_hfa,
            "prior_early": prior_margin * math.exp(-games_played / (2 * decay_games))}
