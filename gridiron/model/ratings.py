"""Team ratings fitted on earlier games: ridge fits of margins (opponent-adjusted ratings and the
home edge), of yards per play (offense and defense efficiency), and of a season's own games shrunk
toward a preseason prior. Pure functions over numpy arrays of the walk's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gridiron.model.features import FeatureSettings

DIVISIONS = ("fbs", "fcs", "ii", "iii", "other")
HOME_EDGE = 2.5  # points: the home-field edge a fit starts from, and keeps while too few games say otherwise


def _division(value: str | None) -> str:
    return value if value in DIVISIONS else "other"


_DIVISION_INDEX = {division: index for index, division in enumerate(DIVISIONS)}


def division_index(classification: str | None) -> int:
    """The column of a classification's division in the rating fit (unlisted ones are "other")."""
    return _DIVISION_INDEX[_division(classification)]



def ridge_coefficients(columns: list[np.ndarray], values: list[np.ndarray], width: int, target: np.ndarray, *,
                       alpha: float, intercept: bool = False, weights: np.ndarray | None = None) -> np.ndarray:
    """A ridge fit's coefficients over a sparse design of `width` columns: row i holds `values[k][i]`
    in column `columns[k][i]` for each k. It minimises sum(w * (y - Xb - c)^2) + alpha * |b|^2 (`c`, the
    unpenalised intercept, only with `intercept`), as scikit-learn's Ridge does, but solved exactly
    from the normal equations: an iterative solver's stopping point moved the ratings in the sixth
    digit from one scipy release to the next (scipy is imported here, at the first fit)."""
    from scipy import sparse  # here, not at import: a run that trains nothing never loads them
    from scipy.sparse import linalg

    n = len(target)
    rows = np.repeat(np.arange(n), len(columns))
    matrix = sparse.csr_matrix((np.column_stack(values).ravel(), (rows, np.column_stack(columns).ravel())),
                               shape=(n, width))
    if intercept:
        matrix = sparse.hstack([matrix, np.ones((n, 1))], format="csr")
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    penalty = np.full(matrix.shape[1], float(alpha))
    penalty[width:] = 0.0
    gram = (matrix.T @ matrix.multiply(w[:, None]).tocsr() + sparse.diags(penalty)).tocsc()
    # a sparse direct solve: exact, and on one thread (a dense BLAS solve contends for the cores)
    return linalg.spsolve(gram, matrix.T @ (w * target))[:width]


def _team_columns(first: np.ndarray, second: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """{team: column} over the teams of both sides, and each side's column per row."""
    index = {team: i for i, team in enumerate(np.unique(np.concatenate([first, second])))}
    return (index, np.fromiter((index[x] for x in first), int, len(first)),
            np.fromiter((index[x] for x in second), int, len(second)))


def fit_ratings(history: dict[str, np.ndarray], as_of_days: float, settings: FeatureSettings) -> tuple[dict[int, float], float]:
    """Ridge ratings from earlier games: {team: rating in points}, and the home-field edge."""
    age = as_of_days - history["day"]
    keep = (age > 0) & (age <= settings.lookback_days)
    if keep.sum() < 50:
        return {}, HOME_EDGE
    home, away = history["home"][keep], history["away"][keep]
    margin = np.clip(history["margin"][keep], -settings.margin_limit, settings.margin_limit)
    weights = 0.5 ** (age[keep] / settings.half_life_days)
    index, hcol, acol = _team_columns(home, away)
    n, t, d = len(home), len(index), len(DIVISIONS)
    coef = ridge_coefficients(
        [hcol, acol, t + history["home_div"][keep], t + history["away_div"][keep], np.full(n, t + d)],
        [np.ones(n), -np.ones(n), np.ones(n), -np.ones(n), (~history["neutral"][keep]).astype(float)],
        t + d + 1, margin, alpha=settings.ridge_alpha, weights=weights)
    team_division = {}
    for team, div in zip(np.concatenate([home, away]), np.concatenate([history["home_div"][keep], history["away_div"][keep]])):
        team_division[team] = div
    ratings = {int(team): float(coef[i] + coef[t + team_division[team]]) for team, i in index.items()}
    return ratings, float(coef[t + d])


def fit_efficiency(box: dict[str, np.ndarray], as_of_days: float, settings: FeatureSettings) -> tuple[dict[int, float], dict[int, float], float]:
    """Opponent-adjusted yards per play from earlier box scores: ({team: offense}, {team: defense},
    home edge), offense and defense as yards per play above an average side (defense: allowed less)."""
    age = as_of_days - box["day"]
    keep = (age > 0) & (age <= settings.lookback_days)
    if keep.sum() < 100:
        return {}, {}, 0.0
    offense, defense = box["offense"][keep], box["defense"][keep]
    index, ocol, dcol = _team_columns(offense, defense)
    n, t = len(offense), len(index)
    half_life = settings.efficiency_half_life_days or settings.half_life_days
    weights = 0.5 ** (age[keep] / half_life) * box["plays"][keep] / 65.0
    coef = ridge_coefficients([ocol, t + dcol, np.full(n, 2 * t)], [np.ones(n), -np.ones(n), box["home_sign"][keep]],
                              2 * t + 1, box["ypp"][keep], alpha=settings.efficiency_alpha, intercept=True,
                              weights=weights)
    return ({int(team): float(coef[i]) for team, i in index.items()},
            {int(team): float(coef[t + i]) for team, i in index.items()}, float(coef[2 * t]))


def fit_season_ratings(history: dict[str, np.ndarray], season: int, as_of_days: float,
                       prior: dict[int, float], prior_hfa: float, alpha: float) -> tuple[dict[int, float], float]:
    """Ratings from the season's own earlier games, each team's shrunk toward its preseason prior
    (a ridge on the difference from the prior: `alpha` games' worth), and the home edge."""
    keep = (history["season"] == season) & (history["day"] < as_of_days) if len(history["day"]) else np.array([], bool)
    if keep.sum() < 20:
        return dict(prior), prior_hfa
    home, away = history["home"][keep], history["away"][keep]
    home_field = (~history["neutral"][keep]).astype(float)
    base = np.array([prior.get(h, 0.0) - prior.get(a, 0.0) for h, a in zip(home, away)]) + prior_hfa * home_field
    index, hcol, acol = _team_columns(home, away)
    n, t = len(home), len(index)
    coef = ridge_coefficients([hcol, acol, np.full(n, t)],
                              [np.ones(n), -np.ones(n), 10.0 * home_field],  # x10: the edge barely penalised
                              t + 1, history["margin"][keep] - base, alpha=alpha)
    ratings = dict(prior)
    for team, i in index.items():
        ratings[int(team)] = prior.get(int(team), 0.0) + float(coef[i])
    return ratings, prior_hfa + 10.0 * float(coef[t])



def efficiency_edge(offense: dict[int, float], defense: dict[int, float], home_edge: float, home: int, away: int,
                    neutral: bool) -> float:
    """The home side's expected yards-per-play edge: its yards per play against this defense
    (offense - the defense's rating) minus the away side's against its own, plus twice the home
    edge of one side on a true home game."""
    return ((offense[home] - defense[away]) - (offense[away] - defense[home])
            + (0.0 if neutral else 2 * home_edge))
