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
  score in the window, or when no box scores are passed (its effect on the tuning seasons:
  BENCHMARKS.md, "Prediction v2: each lever");
- preseason prior (`prior_margin`, `season_margin`, `prior_early`; only with `preseason_prior`):
  each team's prior from the recency-weighted rating of the last seasons, last season's own
  rating and talent (weights fitted on earlier seasons' margins) and in-season ratings shrunk
  toward it; no better on 2015-2018 than the talent columns, so not built by default;
- talent: the 247Sports composite of each side for the season (published before it; last season's
  where the season's is missing, the season's low end for a team it does not list), as a
  difference in hundreds of points and that difference weighted toward the first games of a season
  (`talent_early`), when the results say least. No composite for a season (2014): zero, flagged.

`elo_prob` and `rating_diff` nearly duplicate `elo_diff` and `rating_margin`, but dropping them
made the tuning seasons slightly worse (BENCHMARKS.md, "Prediction v2: each lever"), so the model
keeps them. The fits live in `ratings` (ridge ratings, efficiency) and `prior` (the preseason
prior, talent); this module holds the settings and the walk.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from gridiron.model import elo
from gridiron.model.prior import PreseasonPrior, TalentTable, prior_columns
from gridiron.model.ratings import (
    HOME_EDGE,
    _division,
    division_index,
    efficiency_edge,
    fit_efficiency,
    fit_ratings,
    fit_season_ratings,
)

FEATURES = (
    "elo_diff", "elo_prob", "rating_margin", "rating_diff", "form_diff", "rest_diff",
    "home_rest", "away_rest", "is_neutral", "is_conference_game", "is_postseason",
    "home_is_fbs", "away_is_fbs", "home_games", "away_games", "talent_diff", "talent_early", "eff_diff", "has_box",
)

BOX_COLUMNS = ("game_id", "team_id", "total_yards", "rushing_attempts", "pass_attempts")  # of `game_team_stats`


@dataclass(frozen=True)
class FeatureSettings:
    """The walk's settings: Elo, the ridge ratings, form, rest, efficiency, talent and the preseason prior."""

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


def add_slates(games: pl.DataFrame) -> pl.DataFrame:
    """Slate = the Monday-to-Sunday week of kickoff in US time (UTC-6 puts late Saturday night
    games on Saturday); `slate_start` is that Monday, `slate` its order."""
    local = pl.col("start_date").dt.replace_time_zone(None) - pl.duration(hours=6)
    with_start = games.filter(pl.col("start_date").is_not_null()).with_columns(
        slate_start=(local.dt.truncate("1w")).dt.date()
    )
    order = with_start.select("slate_start").unique().sort("slate_start").with_row_index("slate")
    return with_start.join(order, on="slate_start").with_columns(pl.col("slate").cast(pl.Int32))


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
        """Add one row (a value per column), growing the arrays by doubling when full."""
        if self.size == len(next(iter(self._data.values()))):
            self._data = {name: np.concatenate([a, np.empty_like(a)]) for name, a in self._data.items()}
        for name, value in values.items():
            self._data[name][self.size] = value
        self.size += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns of the rows added so far."""
        return {name: a[:self.size] for name, a in self._data.items()}


class Checkpoints(Protocol):
    """Where the walk keeps its state at each season's start (`build_game_features`); `put` keeps
    the value as it is when called (it serialises it then)."""

    def get(self, key: str) -> Any | None:
        """The value kept under `key` (None: a miss)."""

    def put(self, key: str, value: Any) -> None:
        """Keep `value` under `key`, as it is now."""


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


@dataclass
class WalkState:
    """What the walk carries from slate to slate: the Elo ratings, the games and box scores played
    so far, each team's last game, recent margins and games this season, and the preseason prior.
    `save` is what a season's checkpoint holds (with the season's rows); `restore` takes it back."""

    form_games: int
    priors: PreseasonPrior | None = None
    elo: elo.EloState = field(default_factory=elo.EloState)
    history: _Columns = field(default_factory=lambda: _Columns(
        home=np.int64, away=np.int64, margin=np.float64, day=np.float64, neutral=np.bool_,
        home_div=np.int64, away_div=np.int64, season=np.int64))
    box_history: _Columns = field(default_factory=lambda: _Columns(
        offense=np.int64, defense=np.int64, ypp=np.float64, plays=np.float64, day=np.float64, home_sign=np.float64))
    last_played: dict[int, float] = field(default_factory=dict)
    season_games: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[int, deque] = field(init=False)

    def __post_init__(self) -> None:
        self.recent = defaultdict(lambda: deque(maxlen=self.form_games))

    def save(self, slate: int, rows: dict[str, list]) -> dict:
        """A checkpoint at the start of `slate`: the state, and the rows of the season just walked."""
        return {"slate": slate, "rows": rows, "elo": self.elo, "history": self.history,
                "box_history": self.box_history, "last_played": self.last_played,
                "recent": {t: list(d) for t, d in self.recent.items()}, "season_games": dict(self.season_games),
                "priors": None if self.priors is None else self.priors.save()}

    def restore(self, saved: dict) -> None:
        """Take back the state a checkpoint saved (its rows are the caller's)."""
        self.elo, self.history, self.box_history = saved["elo"], saved["history"], saved["box_history"]
        self.last_played.update(saved["last_played"])
        for team, values in saved["recent"].items():
            self.recent[team].extend(values)
        self.season_games.update(saved["season_games"])
        if self.priors is not None:
            self.priors.restore(saved["priors"])

    def learn(self, rows: list[dict], sides: dict[int, list[tuple[int, float, float]]], settings: FeatureSettings) -> None:
        """A slate is over: its results update the state the next slate sees."""
        for row in rows:
            if not row["has_result"]:
                continue
            home, away = row["home_id"], row["away_id"]
            margin = row["home_points"] - row["away_points"]
            elo.update(self.elo, home, away, row["home_points"], row["away_points"], bool(row["is_neutral_site"]),
                       settings.elo, row["home_classification"], row["away_classification"])
            for team, conference in ((home, row.get("home_conference")), (away, row.get("away_conference"))):
                if conference:
                    self.elo.conferences[team] = conference
            self.history.append(home=home, away=away, margin=float(margin), day=float(row["day"]),
                                neutral=bool(row["is_neutral_site"]),
                                home_div=division_index(row["home_classification"]),
                                away_div=division_index(row["away_classification"]),
                                season=int(row["season"]))
            game_sides = sides.get(row["game_id"], [])
            if len(game_sides) == 2:
                neutral = bool(row["is_neutral_site"])
                for (team, yards, plays), (other, _, _) in (game_sides, game_sides[::-1]):
                    self.box_history.append(offense=team, defense=other, ypp=yards / plays, plays=plays,
                                            day=float(row["day"]),
                                            home_sign=0.0 if neutral else 1.0 if team == home else -1.0)
            for team, signed in ((home, margin), (away, -margin)):
                self.last_played[team] = float(row["day"])
                self.recent[team].append(max(-settings.margin_limit, min(settings.margin_limit, signed)))
                self.season_games[(team, row["season"])] += 1


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
    walk = WalkState(settings.form_games, PreseasonPrior.of_schedule(frame, talent, settings.prior_games)
                     if settings.preseason_prior else None)
    sides = box_sides(box)
    out: dict[str, list] = {}  # column -> values, a game at a time (rows as dicts cost ~3x the memory)

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
        walk.restore(last)
        frame = frame.filter(pl.col("slate") >= last["slate"])  # the slates the saved walk had not reached
    checkpointed, season_rows_from = {resume_at}, _height(out)
    state, last_played, recent, season_games, priors = (walk.elo, walk.last_played, walk.recent,
                                                        walk.season_games, walk.priors)  # as restored

    for _, slate in frame.group_by("slate", maintain_order=True):
        slate_day = float(slate["day"].min())
        if keys and (starting := slate["season"][0]) not in checkpointed:
            checkpointed.add(starting)
            if starting != seasons[0]:
                checkpoints.put(keys[starting], walk.save(slate["slate"][0],
                                                          {c: v[season_rows_from:] for c, v in out.items()}))
            season_rows_from = _height(out)
        arrays = walk.history.arrays()
        ratings, rating_hfa = fit_ratings(arrays, slate_day, settings) if walk.history.size else ({}, HOME_EDGE)
        offense, defense, eff_hfa = fit_efficiency(
            walk.box_history.arrays(), slate_day, settings) if walk.box_history.size else ({}, {}, 0.0)
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
        walk.learn(rows, sides, settings)
    frame = pl.DataFrame(out, strict=False).with_columns(
        pl.col("margin").cast(pl.Float64), pl.col("home_win").cast(pl.Float64)
    )
    return add_talent(frame, talent, settings.talent_decay_games)
