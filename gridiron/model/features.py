"""`game_features`: one row per game, built only from what was known before kickoff.

Games are grouped into weekly *slates* (the calendar week of kickoff, Monday to Sunday in US time).
Every feature of a slate's games comes from games that finished before the slate began: results
inside the slate or after it never reach it, so there is no leakage by construction. Within the
loop, after a slate's features are taken, its results update the running state.

Features per game (home minus away where it is a difference):
- Elo: pre-game ratings, the Elo home win probability and point spread (see `elo.py`);
- opponent-adjusted ratings: a ridge fit of margins on team (+1 home, -1 away), division and home
  field columns over earlier games, weighted by recency (half-life in days), margins capped;
- form (mean margin of the last games), rest days, games played this season;
- context: neutral site, conference game, postseason, FBS on each side;
- efficiency (`eff_diff`): offense and defense yards per play from the box scores of earlier games,
  opponent-adjusted (a ridge fit of each side's yards per play on its offense, the other side's
  defense and home field, with a shorter recency half-life than the ratings), as the expected
  yards-per-play edge of the home side; `has_box` 0 (and `eff_diff` 0) before both teams have a box
  score in the window, or when no box scores are passed. On 2015-2018 it took MAE -0.06 and
  straight up +0.6 pp (`bench/model_levers.py`);
- preseason prior (`prior_margin`, `season_margin`, `prior_early`; only with `preseason_prior`):
  each team's prior from the recency-weighted rating of the last seasons, last season's own
  rating and talent (weights fitted on earlier seasons' margins) and in-season ratings shrunk
  toward it; no better on 2015-2018 than the talent columns, so not built by default;
- talent: the 247Sports composite of each side for the season (published before it; last season's
  where the season's is missing, the season's low end for a team it does not list), as a
  difference in hundreds of points and that difference weighted toward the first games of a season
  (`talent_early`), when the results say least. No composite for a season (2014): zero, flagged.

`elo_prob` and `rating_diff` nearly duplicate `elo_diff` and `rating_margin`, but dropping them
made 2015-2018 slightly worse (Brier +0.0004; `bench/model_levers.py`), so the model keeps them.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from gridiron.model import elo

DIVISIONS = ("fbs", "fcs", "ii", "iii", "other")
FEATURES = (
    "elo_diff", "elo_prob", "rating_margin", "rating_diff", "form_diff", "rest_diff",
    "home_rest", "away_rest", "is_neutral", "is_conference_game", "is_postseason",
    "home_is_fbs", "away_is_fbs", "home_games", "away_games", "talent_diff", "talent_early", "eff_diff", "has_box",
)

BOX_COLUMNS = ("game_id", "team_id", "total_yards", "rushing_attempts", "pass_attempts")  # of `game_team_stats`


@dataclass(frozen=True)
class FeatureSettings:
    elo: elo.EloSettings = field(default_factory=elo.EloSettings)
    ridge_alpha: float = 0.5
    half_life_days: float = 150.0  # tuned on 2016-2018 only (see BENCHMARKS.md)
    lookback_days: float = 800.0
    margin_cap: float | None = None  # points; None: margins as they were (a cap of 35 did worse)
    talent_decay_games: float = 3.0  # talent_early = talent_diff x exp(-(home + away games) / (2 x this))
    form_games: int = 3
    max_rest_days: int = 21
    efficiency_alpha: float = 0.5  # ridge penalty of the yards-per-play fit; 20 shrank it to nothing
    efficiency_half_life_days: float | None = 80.0  # yards per play go stale faster than margins; None: the ratings'
    # the preseason prior (`prior_margin`, `season_margin`, `prior_early`): built only when asked, it
    # did not help on 2015-2018 (bench/model_levers.py); worth `prior_games` games of the season's results
    preseason_prior: bool = False
    prior_games: float = 3.0

    @property
    def margin_limit(self) -> float:
        """The cap as a number (infinite when there is none)."""
        return self.margin_cap if self.margin_cap is not None else float("inf")


def _division(value: str | None) -> str:
    return value if value in DIVISIONS else "other"


def add_slates(games: pl.DataFrame) -> pl.DataFrame:
    """Slate = the Monday-to-Sunday week of kickoff in US time (UTC-6 puts late Saturday night
    games on Saturday); `slate_start` is that Monday, `slate` its order."""
    local = pl.col("start_date").dt.replace_time_zone(None) - pl.duration(hours=6)
    with_start = games.filter(pl.col("start_date").is_not_null()).with_columns(
        slate_start=(local.dt.truncate("1w")).dt.date()
    )
    order = with_start.select("slate_start").unique().sort("slate_start").with_row_index("slate")
    return with_start.join(order, on="slate_start").with_columns(pl.col("slate").cast(pl.Int32))


def _team_columns(first: np.ndarray, second: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """{team: column} over the teams of both sides, and each side's column per row."""
    index = {team: i for i, team in enumerate(np.unique(np.concatenate([first, second])))}
    return (index, np.fromiter((index[x] for x in first), int, len(first)),
            np.fromiter((index[x] for x in second), int, len(second)))


def fit_ratings(history: dict[str, np.ndarray], as_of_days: float, settings: FeatureSettings) -> tuple[dict[int, float], float]:
    """Ridge ratings from earlier games: {team: rating in points}, and the home-field edge."""
    from scipy import sparse  # here, not at import: a run that trains nothing never loads them
    from sklearn.linear_model import Ridge

    age = as_of_days - history["day"]
    keep = (age > 0) & (age <= settings.lookback_days)
    if keep.sum() < 50:
        return {}, 2.5
    home, away = history["home"][keep], history["away"][keep]
    margin = np.clip(history["margin"][keep], -settings.margin_limit, settings.margin_limit)
    weights = 0.5 ** (age[keep] / settings.half_life_days)
    index, hcol, acol = _team_columns(home, away)
    n, t, d = len(home), len(index), len(DIVISIONS)
    rows = np.repeat(np.arange(n), 5)
    cols = np.column_stack([hcol, acol, t + history["home_div"][keep], t + history["away_div"][keep],
                            np.full(n, t + d)]).ravel()
    values = np.column_stack([np.ones(n), -np.ones(n), np.ones(n), -np.ones(n),
                              (~history["neutral"][keep]).astype(float)]).ravel()
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(n, t + d + 1))
    model = Ridge(alpha=settings.ridge_alpha, fit_intercept=False).fit(matrix, margin, sample_weight=weights)
    coef = model.coef_
    team_division = {}
    for team, div in zip(np.concatenate([home, away]), np.concatenate([history["home_div"][keep], history["away_div"][keep]])):
        team_division[team] = div
    ratings = {int(team): float(coef[i] + coef[t + team_division[team]]) for team, i in index.items()}
    return ratings, float(coef[t + d])


def fit_efficiency(box: dict[str, np.ndarray], as_of_days: float, settings: FeatureSettings) -> tuple[dict[int, float], dict[int, float], float]:
    """Opponent-adjusted yards per play from earlier box scores: ({team: offense}, {team: defense},
    home edge), offense and defense as yards per play above an average side (defense: allowed less)."""
    from scipy import sparse
    from sklearn.linear_model import Ridge

    age = as_of_days - box["day"]
    keep = (age > 0) & (age <= settings.lookback_days)
    if keep.sum() < 100:
        return {}, {}, 0.0
    offense, defense = box["offense"][keep], box["defense"][keep]
    index, ocol, dcol = _team_columns(offense, defense)
    n, t = len(offense), len(index)
    rows = np.repeat(np.arange(n), 3)
    cols = np.column_stack([ocol, t + dcol, np.full(n, 2 * t)]).ravel()
    values = np.column_stack([np.ones(n), -np.ones(n), box["home_sign"][keep]]).ravel()
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(n, 2 * t + 1))
    ypp = box["ypp"][keep]
    half_life = settings.efficiency_half_life_days or settings.half_life_days
    weights = 0.5 ** (age[keep] / half_life) * box["plays"][keep] / 65.0
    model = Ridge(alpha=settings.efficiency_alpha, fit_intercept=True).fit(matrix, ypp, sample_weight=weights)
    coef = model.coef_
    return ({int(team): float(coef[i]) for team, i in index.items()},
            {int(team): float(coef[t + i]) for team, i in index.items()}, float(coef[2 * t]))


@dataclass(frozen=True)
class TalentTable:
    """The talent composites as the features read them: a team's for the season, else the season
    before's, else the season's 5th percentile (a team the composite does not list is FCS or
    below); None in a season without a composite."""

    known: dict[tuple[int, int], float]
    low: dict[int, float]

    @classmethod
    def of_frame(cls, talent: pl.DataFrame | None) -> TalentTable:
        if talent is None or talent.is_empty():
            return cls({}, {})
        rows = talent.select(pl.col("season").cast(pl.Int64), pl.col("team_id").cast(pl.Int64),
                             pl.col("talent").cast(pl.Float64)).drop_nulls("talent")
        low = rows.group_by("season").agg(pl.col("talent").quantile(0.05))
        return cls({(s, t): v for s, t, v in rows.drop_nulls().iter_rows()}, dict(low.iter_rows()))

    def value(self, season: int, team: int) -> float | None:
        if season not in self.low:
            return None
        return self.known.get((season, team), self.known.get((season - 1, team), self.low[season]))


def fit_season_ratings(history: dict[str, np.ndarray], season: int, as_of_days: float,
                       prior: dict[int, float], prior_hfa: float, alpha: float) -> tuple[dict[int, float], float]:
    """Ratings from the season's own earlier games, each team's shrunk toward its preseason prior
    (a ridge on the difference from the prior: `alpha` games' worth), and the home edge."""
    from scipy import sparse
    from sklearn.linear_model import Ridge

    keep = (history["season"] == season) & (history["day"] < as_of_days) if len(history["day"]) else np.array([], bool)
    if keep.sum() < 20:
        return dict(prior), prior_hfa
    home, away = history["home"][keep], history["away"][keep]
    home_field = (~history["neutral"][keep]).astype(float)
    base = np.array([prior.get(h, 0.0) - prior.get(a, 0.0) for h, a in zip(home, away)]) + prior_hfa * home_field
    index, hcol, acol = _team_columns(home, away)
    n, t = len(home), len(index)
    rows = np.repeat(np.arange(n), 3)
    cols = np.column_stack([hcol, acol, np.full(n, t)]).ravel()
    values = np.column_stack([np.ones(n), -np.ones(n), 10.0 * home_field]).ravel()  # x10: the edge barely penalised
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(n, t + 1))
    coef = Ridge(alpha=alpha, fit_intercept=False).fit(matrix, history["margin"][keep] - base).coef_
    ratings = dict(prior)
    for team, i in index.items():
        ratings[int(team)] = prior.get(int(team), 0.0) + float(coef[i])
    return ratings, prior_hfa + 10.0 * float(coef[t])


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
        return DEFAULT_PRIOR_WEIGHTS, 2.5
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
        self.hfa, self.season = 2.5, None

    @classmethod
    def of_schedule(cls, frame: pl.DataFrame, talent: pl.DataFrame | None, prior_games: float) -> PreseasonPrior:
        """Every season's teams and each team's division, from the schedule (known before kickoff)."""
        division_index = {d: i for i, d in enumerate(DIVISIONS)}
        season_teams: dict[int, set[int]] = defaultdict(set)
        team_division: dict[int, int] = {}
        for season, home, away, hclass, aclass in frame.select(
                "season", "home_id", "away_id", "home_classification", "away_classification").iter_rows():
            season_teams[season].update((home, away))
            team_division[home] = division_index[_division(hclass)]
            team_division[away] = division_index[_division(aclass)]
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


def efficiency_edge(offense: dict[int, float], defense: dict[int, float], home_edge: float, home: int, away: int,
                    neutral: bool) -> float:
    """The home side's expected yards-per-play edge: its yards per play against this defense
    (offense - the defense's rating) minus the away side's against its own, plus twice the home
    edge of one side on a true home game."""
    return ((offense[home] - defense[away]) - (offense[away] - defense[home])
            + (0.0 if neutral else 2 * home_edge))


def box_sides(box: pl.DataFrame | None) -> dict[int, list[tuple[int, float, float]]]:
    """game id -> [(team id, yards, plays)] of each side with a box score (plays: rushes + passes)."""
    if box is None or box.is_empty():
        return {}
    usable = box.select(
        "game_id", "team_id", pl.col("total_yards").cast(pl.Float64),
        (pl.col("rushing_attempts") + pl.col("pass_attempts")).cast(pl.Float64).alias("plays"),
    ).drop_nulls().filter(pl.col("plays") >= 20)
    sides: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for game_id, team_id, yards, plays in usable.iter_rows():
        sides[game_id].append((team_id, yards, plays))
    return sides


def add_talent(features: pl.DataFrame, talent: pl.DataFrame | None, decay_games: float = 3.0) -> pl.DataFrame:
    """The talent columns: each side's composite for the game's season (known before it), else the
    team's composite of the season before, else the season's 5th percentile (a team the composite
    does not list is FCS or below); all zero, with `has_talent` 0, in a season without a composite."""
    table = TalentTable.of_frame(talent)
    values = {side: [table.value(season, team) for season, team in features.select("season", f"{side}_id").iter_rows()]
              for side in ("home", "away")}
    early = (-(pl.col("home_games") + pl.col("away_games")).cast(pl.Float64) / (2 * decay_games)).exp()
    return features.with_columns(
        *(pl.Series(f"{side}_talent", [0.0 if v is None else v for v in values[side]], pl.Float64)
          for side in ("home", "away")),
        has_talent=features["season"].is_in(list(table.low)).cast(pl.Float64),
    ).with_columns(
        talent_diff=(pl.col("home_talent") - pl.col("away_talent")) / 100.0,
    ).with_columns(talent_early=pl.col("talent_diff") * early)


class _Columns:
    """The columns of the games seen so far, appended row by row and read at every slate as arrays
    without a copy (views of the filled part; the capacity doubles as it fills). Converting growing
    lists at each of a decade's ~1,500 slates cost more than the slates' fits."""

    def __init__(self, **dtypes: type):
        self._data = {name: np.empty(1024, dtype) for name, dtype in dtypes.items()}
        self.size = 0

    def append(self, **values) -> None:
        if self.size == len(next(iter(self._data.values()))):
            self._data = {name: np.concatenate([a, np.empty_like(a)]) for name, a in self._data.items()}
        for name, value in values.items():
            self._data[name][self.size] = value
        self.size += 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: a[:self.size] for name, a in self._data.items()}


class Checkpoints(Protocol):
    """Where the walk keeps its state at each season's start (`build_game_features`); `put` keeps
    the value as it is when called (it serialises it then)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


_CHECKPOINT_FORMAT = 2  # of what a checkpoint holds: a change makes every old one a miss


def _digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _rows_digest(frame: pl.DataFrame | None) -> str:
    if frame is None or frame.width == 0:
        return "none"
    return _digest(str(frame.schema), hashlib.sha256(frame.hash_rows(seed=7).to_numpy().tobytes()).hexdigest())


def season_start_keys(games: pl.DataFrame, talent: pl.DataFrame | None, box: pl.DataFrame | None,
                      settings: FeatureSettings) -> dict[int, str]:
    """The key of the walk's state at each season's first slate: a digest of all the walk has read
    by then (the settings, the day count's epoch, the talent composites, every team's division, and
    each earlier season's games and box scores), chained season by season, so a changed game
    changes the keys of the seasons after its own and no others."""
    return _season_start_keys(add_slates(games).sort("start_date", "game_id"), talent, box, settings)


def _season_start_keys(frame: pl.DataFrame, talent: pl.DataFrame | None, box: pl.DataFrame | None,
                       settings: FeatureSettings) -> dict[int, str]:
    """`season_start_keys` of the games with their slates, in the walk's order."""
    divisions = frame.select("home_id", "away_id", "home_classification", "away_classification")
    key = _digest(_CHECKPOINT_FORMAT, repr(settings), str(frame["start_date"].min()), pl.__version__, _rows_digest(talent),
                  _rows_digest(divisions.unique().sort(pl.all())))
    keys: dict[int, str] = {}
    for season in frame["season"].unique(maintain_order=True).to_list():
        keys[season] = key
        games = frame.filter(pl.col("season") == season)
        boxes = None if box is None or "game_id" not in box.columns else box.filter(
            pl.col("game_id").is_in(games["game_id"].implode()))
        key = _digest(key, season, _rows_digest(games), _rows_digest(boxes))
    return keys


def _height(columns: dict[str, list]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _append(columns: dict[str, list], row: dict) -> None:
    """One game's row onto the walk's columns (the first row names them, in its order)."""
    if not columns:
        columns.update((column, []) for column in row)
    for column, value in row.items():
        columns[column].append(value)


def build_game_features(games: pl.DataFrame, settings: FeatureSettings | None = None,
                        talent: pl.DataFrame | None = None, box: pl.DataFrame | None = None,
                        checkpoints: Checkpoints | None = None) -> pl.DataFrame:
    """One row per game with a kickoff time (played or not), features from earlier games only (and
    the talent composites of its season, published before it). `box`: `game_team_stats` rows.

    `checkpoints`: the walk's state is kept there at each season's start, under a key of all it has
    read by then (`season_start_keys`); a later build resumes from the latest season whose key it
    finds with every earlier season's rows, so one changed game costs the walk from its season on,
    and the frame is the one a full walk gives."""
    settings = settings or FeatureSettings()
    frame = add_slates(games).sort("start_date", "game_id")
    keys = _season_start_keys(frame, talent, box, settings) if checkpoints is not None and frame.height else {}
    epoch = frame["start_date"].min()
    frame = frame.with_columns(day=((pl.col("start_date") - epoch).dt.total_seconds() / 86400.0))
    division_index = {d: i for i, d in enumerate(DIVISIONS)}

    state = elo.EloState()
    history = _Columns(home=np.int64, away=np.int64, margin=np.float64, day=np.float64, neutral=np.bool_,
                       home_div=np.int64, away_div=np.int64, season=np.int64)
    last_played: dict[int, float] = {}
    recent: dict[int, deque] = defaultdict(lambda: deque(maxlen=settings.form_games))
    season_games: dict[tuple[int, int], int] = defaultdict(int)
    sides = box_sides(box)
    box_history = _Columns(offense=np.int64, defense=np.int64, ypp=np.float64, plays=np.float64, day=np.float64,
                           home_sign=np.float64)
    out: dict[str, list] = {}  # column -> values, a game at a time (rows as dicts cost ~3x the memory)
    priors = PreseasonPrior.of_schedule(frame, talent, settings.prior_games) if settings.preseason_prior else None

    seasons = list(keys)
    resume_at, kept = None, []
    for index, season in enumerate(seasons[1:], start=1):  # the first season starts from nothing
        saved = checkpoints.get(keys[season])
        if saved is None:
            break
        kept.append(saved)
        resume_at = seasons[index]
    if resume_at is not None:
        last = kept[-1]
        out = {column: [value for saved in kept for value in saved["rows"][column]] for column in kept[0]["rows"]}
        state, history, box_history = last["elo"], last["history"], last["box_history"]
        last_played.update(last["last_played"])
        for team, values in last["recent"].items():
            recent[team].extend(values)
        season_games.update(last["season_games"])
        if priors is not None:
            priors.__dict__.update(last["priors"])
        frame = frame.filter(pl.col("slate") >= last["slate"])  # the slates the saved walk had not reached
    checkpointed, season_rows_from = {resume_at}, _height(out)

    for _, slate in frame.group_by("slate", maintain_order=True):
        slate_day = float(slate["day"].min())
        if keys and (starting := slate["season"][0]) not in checkpointed:
            checkpointed.add(starting)
            if starting != seasons[0]:
                checkpoints.put(keys[starting], {
                    "slate": slate["slate"][0], "rows": {c: v[season_rows_from:] for c, v in out.items()}, "elo": state, "history": history, "box_history": box_history,
                    "last_played": last_played, "recent": {t: list(d) for t, d in recent.items()},
                    "season_games": dict(season_games),
                    "priors": None if priors is None else {k: v for k, v in priors.__dict__.items() if k in _PRIOR_STATE},
                })
            season_rows_from = _height(out)
        arrays = history.arrays()
        ratings, rating_hfa = fit_ratings(arrays, slate_day, settings) if history.size else ({}, 2.5)
        offense, defense, eff_hfa = fit_efficiency(
            box_history.arrays(), slate_day, settings) if box_history.size else ({}, {}, 0.0)
        rows = slate.to_dicts()
        season = rows[0]["season"]
        elo.start_season(state, season, settings.elo)
        if priors is not None:
            prior, prior_hfa = priors.start_season(arrays, season, ratings)
            shrunk, shrunk_hfa = fit_season_ratings(arrays, season, slate_day, prior, prior_hfa, settings.prior_games)
        for row in rows:
            home, away = row["home_id"], row["away_id"]
            hdiv, adiv = _division(row["home_classification"]), _division(row["away_classification"])
            neutral = bool(row["is_neutral_site"])
            h_elo, a_elo, elo_prob = elo.pregame(state, home, away, row["home_classification"],
                                                 row["away_classification"], neutral, settings.elo)
            hfa = 0.0 if neutral else settings.elo.hfa
            h_rating = ratings.get(home, 0.0)
            a_rating = ratings.get(away, 0.0)
            rest = [min(settings.max_rest_days, slate_day - last_played[t]) if t in last_played else settings.max_rest_days
                    for t in (home, away)]
            form = [float(np.mean(recent[t])) if recent[t] else 0.0 for t in (home, away)]
            games_played = season_games[(home, season)] + season_games[(away, season)]
            has_box = home in offense and away in offense
            eff_diff = efficiency_edge(offense, defense, eff_hfa, home, away, neutral) if has_box else 0.0
            has_result = bool(row["has_result"])
            margin = row["home_points"] - row["away_points"] if has_result else None
            _append(out, {
                "game_id": row["game_id"], "season": season, "week": row["week"],
                "season_type": row["season_type"], "start_date": row["start_date"],
                "slate": row["slate"], "slate_start": row["slate_start"],
                "home_id": home, "away_id": away,
                "is_fbs_game": hdiv == "fbs" and adiv == "fbs",
                "home_elo": h_elo, "away_elo": a_elo,
                "elo_diff": (h_elo - a_elo + hfa) * settings.elo.points_per_elo, "elo_prob": elo_prob,
                "home_rating": h_rating, "away_rating": a_rating, "rating_diff": h_rating - a_rating,
                "rating_margin": h_rating - a_rating + (0.0 if neutral else rating_hfa),
                "form_diff": form[0] - form[1], "home_rest": rest[0], "away_rest": rest[1],
                "rest_diff": rest[0] - rest[1],
                "home_games": season_games[(home, season)], "away_games": season_games[(away, season)],
                "is_neutral": float(neutral), "is_conference_game": float(bool(row["is_conference_game"])),
                "is_postseason": float("postseason" in (row["season_type"] or "")),
                "home_is_fbs": float(hdiv == "fbs"), "away_is_fbs": float(adiv == "fbs"),
                "eff_diff": eff_diff, "has_box": float(has_box),
                **({} if priors is None else prior_columns(prior, prior_hfa, shrunk, shrunk_hfa, home, away, neutral,
                                                           games_played, settings.talent_decay_games)),
                "has_result": has_result, "margin": margin,
                "home_win": None if margin is None else float(margin > 0) if margin != 0 else 0.5,
            })
        # the slate is over: its results update the state the next slate sees
        for row in rows:
            if not row["has_result"]:
                continue
            home, away = row["home_id"], row["away_id"]
            margin = row["home_points"] - row["away_points"]
            elo.update(state, home, away, row["home_points"], row["away_points"], bool(row["is_neutral_site"]),
                       settings.elo, row["home_classification"], row["away_classification"])
            for team, conference in ((home, row.get("home_conference")), (away, row.get("away_conference"))):
                if conference:
                    state.conferences[team] = conference
            history.append(home=home, away=away, margin=float(margin), day=float(row["day"]),
                           neutral=bool(row["is_neutral_site"]),
                           home_div=division_index[_division(row["home_classification"])],
                           away_div=division_index[_division(row["away_classification"])], season=int(row["season"]))
            game_sides = sides.get(row["game_id"], [])
            if len(game_sides) == 2:
                neutral = bool(row["is_neutral_site"])
                for (team, yards, plays), (other, _, _) in (game_sides, game_sides[::-1]):
                    box_history.append(offense=team, defense=other, ypp=yards / plays, plays=plays,
                                       day=float(row["day"]),
                                       home_sign=0.0 if neutral else 1.0 if team == home else -1.0)
            for team, signed in ((home, margin), (away, -margin)):
                last_played[team] = float(row["day"])
                recent[team].append(max(-settings.margin_limit, min(settings.margin_limit, signed)))
                season_games[(team, row["season"])] += 1
    frame = pl.DataFrame(out, strict=False).with_columns(
        pl.col("margin").cast(pl.Float64), pl.col("home_win").cast(pl.Float64)
    )
    return add_talent(frame, talent, settings.talent_decay_games)
