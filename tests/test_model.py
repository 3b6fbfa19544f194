"""The model: Elo by hand, no leakage on real data, backtests with baselines, promotion gate,
predictions, model files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from gridiron.model import elo
from gridiron.model.backtest import ModelSettings, backtest, walk_forward
from gridiron.model.features import FEATURES, FeatureSettings, build_game_features
from gridiron.model.registry import (
    CheckpointDir,
    ModelCompatibilityError,
    champion_version,
    load_model,
    promotion_decision,
)
from gridiron.model.training import TrainSettings, train
from gridiron.sources import Partition, SnapshotSource, bundled_snapshot_dir
from gridiron.transforms import build_games, build_lines

SOURCE = SnapshotSource(bundled_snapshot_dir())
NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(scope="module")
def real_games() -> pl.DataFrame:
    return pl.concat([build_games(SOURCE.fetch(Partition("games", s)).payload) for s in (2021, 2022, 2023)])


@pytest.fixture(scope="module")
def real_lines() -> pl.DataFrame:
    return build_lines(SOURCE.fetch(Partition("lines", 2023)).payload)


def test_elo_by_hand_on_three_games():
    """Worked out with the formulas, independently of the code (see the module docstring)."""
    settings = elo.EloSettings(k=20, hfa=50, regression=0.33)
    state = elo.EloState()
    assert elo.update(state, 1, 2, 28, 14, False, settings, "fbs", "fbs") == pytest.approx(22.6942, abs=1e-3)
    assert elo.update(state, 2, 3, 17, 24, True, settings, "fbs", "fbs") == pytest.approx(-19.2396, abs=1e-3)
    assert elo.update(state, 3, 1, 10, 10, False, settings, "fbs", "fbs") == pytest.approx(-1.3317, abs=1e-3)
    assert state.ratings == pytest.approx({1: 1524.0259, 2: 1458.0662, 3: 1517.9079}, abs=1e-3)
    assert sum(state.ratings.values()) == pytest.approx(4500)  # zero-sum


def test_elo_is_symmetric_on_a_neutral_site():
    state = elo.EloState(ratings={1: 1580.0, 2: 1490.0})
    _, _, p = elo.pregame(state, 1, 2, "fbs", "fbs", True, elo.EloSettings())
    _, _, q = elo.pregame(state, 2, 1, "fbs", "fbs", True, elo.EloSettings())
    assert p + q == pytest.approx(1.0) and p > 0.5


def test_regressing_to_the_conference_mean_uses_last_seasons_conference_of_four_or_more():
    settings = elo.EloSettings(regression=0.5, regress_to="conference")
    state = elo.EloState(ratings={1: 1700.0, 2: 1600.0, 3: 1500.0, 4: 1400.0, 5: 1800.0, 6: 1300.0},
                         divisions={t: "fbs" for t in range(1, 7)},
                         conferences={1: "SEC", 2: "SEC", 3: "SEC", 4: "SEC", 5: "Sun Belt", 6: "Sun Belt"})
    elo.start_season(state, 2022, settings)
    elo.start_season(state, 2023, settings)
    # the SEC's mean is 1550; the Sun Belt has two rated teams only: the FBS mean (1500) instead
    assert state.ratings == {1: 1625.0, 2: 1575.0, 3: 1525.0, 4: 1475.0, 5: 1650.0, 6: 1400.0}


def test_new_teams_start_at_their_division_mean_and_regress_between_seasons():
    settings = elo.EloSettings(regression=0.5)
    state = elo.EloState()
    elo.start_season(state, 2022, settings)
    assert elo.rating(state, 1, "fbs") == 1500 and elo.rating(state, 2, "fcs") == 1200
    state.ratings[1] = 1700.0
    elo.start_season(state, 2023, settings)
    assert state.ratings[1] == 1600.0 and state.ratings[2] == 1200.0


def test_no_leakage_results_after_a_date_change_no_earlier_feature(real_games):
    cutoff = datetime(2022, 10, 20, tzinfo=UTC)
    before = build_game_features(real_games)
    scrambled = real_games.with_columns(
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("away_points")).otherwise(pl.col("home_points")).alias("home_points"),
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("home_points") + 21).otherwise(pl.col("away_points")).alias("away_points"),
    )
    after = build_game_features(scrambled)
    columns = ["game_id", *FEATURES, "home_elo", "away_elo", "home_rating", "away_rating"]
    early = lambda frame: frame.filter(pl.col("start_date") < cutoff).select(columns).sort("game_id")  # noqa: E731
    assert early(before).height > 2000
    assert early(before).equals(early(after))
    late = lambda frame: frame.filter(pl.col("start_date") >= cutoff + pl.duration(days=8)).select(columns).sort("game_id")  # noqa: E731
    assert not late(before).equals(late(after))  # the scramble did reach later games


def test_backtest_gives_the_metrics_table_with_baselines(real_games, real_lines):
    report = backtest(build_game_features(real_games), real_lines, 2023).as_json()
    assert report["season"] == 2023 and report["games"] > 700
    assert set(report["baselines"]) >= {"home", "elo", "vegas"}
    for metrics in (report["model"], *report["baselines"].values()):
        assert 0 <= metrics["su_accuracy"] <= 1 and 0 < metrics["brier"] < 0.3 and metrics["mae"] > 5
    assert report["model"]["su_accuracy"] > report["baselines"]["home"]["su_accuracy"] + 0.05
    assert report["model"]["brier"] < report["baselines"]["home"]["brier"]
    assert 0 < report["model"]["ats"] < 1 and report["baselines"]["vegas"]["games"] < report["games"]


def test_every_backtest_row_has_a_margin_and_a_probability_that_agree(real_games):
    features = build_game_features(real_games)
    for link in ("blend", "margin"):
        rows = walk_forward(features, 2023, ModelSettings(link=link))
        assert rows.height > 700 and agrees(rows).all(), link
        near = rows.filter(pl.col("predicted_margin").abs() < 1)  # where two unreconciled fits disagreed most
        assert near.height > 0 and near["home_win_prob"].is_between(0.4, 0.6).all()
    with pytest.raises(ValueError, match="model link 'mean' is not one of blend, margin"):
        walk_forward(features, 2023, ModelSettings(link="mean"))


@pytest.mark.parametrize("challenger,champion,promoted", [
    ({"brier": 0.180, "mae": 12.8, "su_accuracy": 0.72}, None, True),
    ({"brier": 0.181, "mae": 12.9, "su_accuracy": 0.715}, {"brier": 0.180, "mae": 12.8, "su_accuracy": 0.72}, True),
    ({"brier": 0.190, "mae": 12.8, "su_accuracy": 0.72}, {"brier": 0.180, "mae": 12.8, "su_accuracy": 0.72}, False),
    ({"brier": 0.180, "mae": 12.8, "su_accuracy": 0.69}, {"brier": 0.180, "mae": 12.8, "su_accuracy": 0.72}, False),
])
def test_promotion_decision(challenger, champion, promoted):
    decided, reason = promotion_decision(challenger, champion, {"brier": 0.002, "mae": 0.15, "su_accuracy": 0.01})
    assert decided is promoted
    assert reason.startswith("worse than the champion") is (not promoted)


AS_OF = datetime(2023, 10, 15, 12, tzinfo=UTC)


def as_of(games: pl.DataFrame, moment: datetime) -> pl.DataFrame:
    """The games as the API served them at `moment`: no result for a game that kicks off later."""
    later = pl.col("start_date") > moment
    return games.with_columns(
        has_result=pl.when(later).then(False).otherwise(pl.col("has_result")),
        home_points=pl.when(later).then(None).otherwise(pl.col("home_points")),
        away_points=pl.when(later).then(None).otherwise(pl.col("away_points")),
    )


def agrees(frame: pl.DataFrame) -> pl.Series:
    """Per row: the margin's sign and the probability's side of 0.5 tell the same story."""
    return (frame["predicted_margin"] > 0) == (frame["home_win_prob"] > 0.5)


def test_training_promotes_a_good_model_refuses_a_worse_one_and_forecasts_only_games_after_the_as_of_time(
        real_games, real_lines, tmp_path):
    models = str(tmp_path / "models")
    games = as_of(real_games, AS_OF)
    first = train(games, real_lines, models, settings=TrainSettings(), signature="a" * 64, now=AS_OF)
    assert first.promoted and champion_version(models) == first.card.version
    upcoming = games.filter(~pl.col("has_result") & (pl.col("start_date") > AS_OF))
    assert sorted(first.predictions["game_id"].to_list()) == sorted(upcoming["game_id"].to_list())
    assert first.predictions.height > 300
    # lower-division games kicked off before the as-of time and never got a score: counted, not forecast
    unscored = games.filter(~pl.col("has_result")).height - upcoming.height
    assert first.unscored == unscored > 0
    assert first.predictions["home_win_prob"].is_between(0, 1, closed="none").all()
    assert agrees(first.predictions).all() and agrees(first.forecasts).all()
    assert set(first.predictions["model_version"].to_list()) == {first.card.version}

    worse = TrainSettings(model=ModelSettings(features=("is_neutral", "is_conference_game")))
    second = train(games, real_lines, models, settings=worse, signature="b" * 64, now=AS_OF.replace(hour=13))
    assert not second.promoted and "worse than the champion" in second.decision
    assert champion_version(models) == first.card.version
    assert set(second.predictions["model_version"].to_list()) == {first.card.version}  # the champion predicts
    assert second.model_run["is_promoted"].to_list() == [False]


def test_a_forecast_for_a_side_the_ratings_barely_know_is_flagged(real_games, real_lines, tmp_path):
    games = as_of(real_games, AS_OF)
    result = train(games, real_lines, str(tmp_path / "m"), settings=TrainSettings(), signature="e" * 64, now=AS_OF)
    flagged = result.predictions.join(games.select("game_id", "home_id", "away_id"), on="game_id")
    played = games.filter(pl.col("has_result"))
    record = pl.concat([played["home_id"], played["away_id"]]).value_counts(name="n")
    counts = dict(zip(record[record.columns[0]].to_list(), record["n"].to_list()))
    for row in flagged.iter_rows(named=True):
        fewer = min(counts.get(row["home_id"], 0), counts.get(row["away_id"], 0))  # every game is in the lookback
        assert row["basis_games"] == fewer and row["is_low_confidence"] is (fewer < 6), row
    assert 0 < flagged["is_low_confidence"].sum() < flagged.height / 4


def test_a_champion_written_before_forecasts_were_coherent_is_retrained(real_games, real_lines, tmp_path):
    import pickle

    models = tmp_path / "models"
    games = as_of(real_games, AS_OF)
    old = train(games, real_lines, str(models), settings=TrainSettings(), signature="f" * 64, now=AS_OF)
    path = models / old.card.version / "model.pkl"
    model = pickle.loads(path.read_bytes())
    del model.__dict__["slope"]  # as the model class pickled before it had the link's curve
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(ModelCompatibilityError, match="before margin and probability were one forecast"):
        load_model(models, old.card.version)
    worse = TrainSettings(model=ModelSettings(features=("is_neutral", "is_conference_game")))
    new = train(games, real_lines, str(models), settings=worse, signature="9" * 64, now=AS_OF.replace(hour=13))
    assert new.promoted and "could not be loaded" in new.decision and agrees(new.predictions).all()


def test_a_model_from_another_scikit_learn_is_refused_clearly(real_games, real_lines, tmp_path):
    models = tmp_path / "models"
    result = train(real_games, real_lines, str(models), settings=TrainSettings(), signature="c" * 64, now=NOW)
    card = models / result.card.version / "card.json"
    data = json.loads(card.read_text())
    data["libraries"]["scikit-learn"] = "0.24.2"
    card.write_text(json.dumps(data))
    with pytest.raises(ModelCompatibilityError, match=r"written by scikit-learn 0\.24\.2; this is .*retrain"):
        load_model(models, result.card.version)


def test_predictions_are_scoped_to_the_configured_conferences(real_games, real_lines, tmp_path):
    result = train(real_games, real_lines, str(tmp_path / "m"), settings=TrainSettings(), signature="d" * 64,
                   now=NOW, conferences=["SEC"])
    scoped = real_games.filter(pl.col("game_id").is_in(result.predictions["game_id"].implode()))
    assert scoped.height == result.predictions.height
    assert ((scoped["home_conference"] == "SEC") | (scoped["away_conference"] == "SEC")).all()


def test_the_market_feature_set_is_reported_apart_from_the_headline(real_games, real_lines):
    features = build_game_features(real_games)
    plain = backtest(features, real_lines, 2023)
    report = backtest(features, real_lines, 2023, market=True)
    assert report.model == plain.model  # the headline never sees betting lines
    assert set(report.as_json()) == {"season", "games", "model", "baselines", "market", "calibration"}
    bins = report.as_json()["calibration"]
    assert sum(b["games"] for b in bins) == report.games and all(0 <= b["observed"] <= 1 for b in bins)
    assert report.market["games"] == report.games and 0.5 < report.market["su_accuracy"] < 1


def test_talent_features_use_the_season_then_the_season_before_then_the_low_end():
    from gridiron.model.features import add_talent

    games = pl.DataFrame({"game_id": [1, 2, 3], "season": [2016, 2016, 2014], "home_id": [10, 30, 10],
                          "away_id": [20, 99, 20], "home_games": [0, 6, 0], "away_games": [0, 6, 0]})
    talent = pl.DataFrame({"season": [2016, 2016, 2016, 2015], "team_id": [10, 20, 40, 30],
                           "talent": [900.0, 500.0, 100.0, 700.0]})
    out = add_talent(games, talent, decay_games=3.0).sort("game_id")
    low = pl.Series([900.0, 500.0, 100.0]).quantile(0.05)
    assert out["home_talent"].to_list() == [900.0, 700.0, 0.0]  # 30 is not listed for 2016: its 2015 figure
    assert out["away_talent"].to_list() == [500.0, low, 0.0]  # 99 is listed nowhere: the season's low end
    assert out["talent_diff"].to_list() == pytest.approx([4.0, (700 - low) / 100, 0.0])
    assert out["talent_early"].to_list() == pytest.approx([4.0, (700 - low) / 100 * 0.1353352832, 0.0])  # e^-2
    assert out["has_talent"].to_list() == [1.0, 1.0, 0.0]  # 2014: no composite at all


def test_no_leakage_with_talent_a_later_season_composite_changes_no_earlier_feature(real_games):
    talent = pl.DataFrame({"season": [2022, 2022, 2023, 2023], "team_id": [130, 264, 130, 264],
                           "talent": [800.0, 700.0, 850.0, 700.0]})  # Michigan and Washington
    before = build_game_features(real_games, talent=talent)
    after = build_game_features(real_games, talent=talent.with_columns(  # Michigan's 2023 composite moves
        pl.when((pl.col("season") == 2023) & (pl.col("team_id") == 130)).then(1000.0).otherwise("talent").alias("talent")))
    earlier = lambda frame: frame.filter(pl.col("season") < 2023).select("game_id", *FEATURES).sort("game_id")  # noqa: E731
    assert earlier(before).equals(earlier(after))
    assert not before.filter(pl.col("season") == 2023).select(FEATURES).equals(
        after.filter(pl.col("season") == 2023).select(FEATURES))


def test_no_leakage_box_scores_and_results_after_a_date_change_no_earlier_feature(real_games):
    """Scramble every result and every box score from a date on: no feature of an earlier game moves
    (the efficiency ratings read only games finished before a game's slate)."""
    from gridiron.game_weeks import game_calendar, game_weeks_of, plan_weeks
    from gridiron.transforms import stage_partition

    cutoff = datetime(2022, 10, 20, tzinfo=UTC)
    weeks = [w for s in (2021, 2022) for w in plan_weeks(
        game_weeks_of(game_calendar(SOURCE.fetch(Partition("games", s)).payload)), SOURCE.seasons_available,
        now=datetime(2024, 1, 1, tzinfo=UTC))[0]]
    box = pl.concat([stage_partition(w, SOURCE.fetch(w).payload).frames["game_team_stats"] for w in weeks])
    games = real_games.filter(pl.col("season") <= 2022)
    before = build_game_features(games, box=box)
    late_ids = games.filter(pl.col("start_date") >= cutoff)["game_id"]
    scrambled_box = box.with_columns(
        pl.when(pl.col("game_id").is_in(late_ids.implode())).then(pl.col("total_yards") * 3).otherwise("total_yards")
        .alias("total_yards"))
    scrambled = games.with_columns(
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("away_points")).otherwise(pl.col("home_points")).alias("home_points"),
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("home_points")).otherwise(pl.col("away_points")).alias("away_points"),
    )
    after = build_game_features(scrambled, box=scrambled_box)
    columns = ["game_id", *FEATURES]
    early = lambda frame: frame.filter(pl.col("start_date") < cutoff).select(columns).sort("game_id")  # noqa: E731
    assert early(before).height > 2000 and early(before)["has_box"].sum() > 1000
    assert early(before).equals(early(after))
    late = lambda frame: frame.filter(pl.col("start_date") >= cutoff + pl.duration(days=8)).select("game_id", "eff_diff").sort("game_id")  # noqa: E731
    assert not late(before).equals(late(after))  # the scrambled box scores did reach later games
    without = build_game_features(games)  # no box scores passed: no efficiency, flagged
    assert without["eff_diff"].abs().max() == 0 and without["has_box"].max() == 0


def test_efficiency_ratings_recover_offense_defense_and_give_the_home_edge():
    """Yards per play made as 5 + offense - the opponent's defense + 0.3 at home: the fit finds each
    side, and the edge of a good offense at home against a poor defense comes out positive."""
    from gridiron.model.ratings import efficiency_edge, fit_efficiency

    rng = np.random.default_rng(3)
    off = {t: float(v) for t, v in enumerate(rng.normal(0, 1, 30))}
    dfn = {t: float(v) for t, v in enumerate(rng.normal(0, 0.8, 30))}
    rows = {k: [] for k in ("offense", "defense", "ypp", "plays", "day", "home_sign")}
    for game in range(900):
        home, away = (int(x) for x in rng.choice(30, 2, replace=False))
        for team, other, sign in ((home, away, 1.0), (away, home, -1.0)):
            rows["offense"].append(team)
            rows["defense"].append(other)
            rows["ypp"].append(5 + off[team] - dfn[other] + 0.3 * sign)
            rows["plays"].append(65.0)
            rows["day"].append(game / 10)
            rows["home_sign"].append(sign)
    offense, defense, edge = fit_efficiency({k: np.asarray(v) for k, v in rows.items()}, 100.0,
                                            FeatureSettings(efficiency_alpha=0.01))
    centre = np.mean(list(off.values()))
    assert [offense[t] for t in range(30)] == pytest.approx([off[t] - centre for t in range(30)], abs=0.02)
    assert edge == pytest.approx(0.3, abs=0.01)
    best, worst_defense = max(off, key=off.get), min(dfn, key=dfn.get)
    expected = (off[best] - dfn[worst_defense]) - (off[worst_defense] - dfn[best]) + 0.6
    assert efficiency_edge(offense, defense, edge, best, worst_defense, False) == pytest.approx(expected, abs=0.05)
    assert efficiency_edge(offense, defense, edge, best, worst_defense, True) == pytest.approx(expected - 0.6, abs=0.05)


def test_in_season_ratings_shrink_toward_the_prior_by_its_worth_in_games():
    """Twenty neutral-site games, A beat B by 14 each time, A's prior 2 points above B's: a ridge on
    the difference from the prior with penalty `alpha` moves the gap by 2n(m - d) / (2n + alpha)."""
    from gridiron.model.ratings import fit_season_ratings

    n = 20
    history = {"home": np.full(n, 1), "away": np.full(n, 2), "margin": np.full(n, 14.0),
               "day": np.arange(n, dtype=float), "neutral": np.full(n, True), "season": np.full(n, 2023)}
    prior = {1: 1.0, 2: -1.0, 3: 5.0}
    ratings, hfa = fit_season_ratings(history, 2023, 100.0, prior, 2.5, alpha=3.0)
    assert ratings[1] - ratings[2] == pytest.approx(2 + 2 * n * 12 / (2 * n + 3))
    assert ratings[3] == 5.0 and hfa == pytest.approx(2.5)  # no games: the prior; no home games: the edge stays
    early, _ = fit_season_ratings(history, 2023, 5.0, prior, 2.5, alpha=3.0)  # before 20 games: the prior alone
    assert early == prior
    assert fit_season_ratings(history, 2024, 100.0, {}, 2.5, alpha=3.0)[0] == {}  # another season's games: none


def test_prior_weights_are_fitted_on_earlier_seasons_margins():
    from gridiron.model.prior import DEFAULT_PRIOR_WEIGHTS, fit_prior_weights

    rng = np.random.default_rng(7)
    teams = np.arange(40)
    inputs = {2022: {int(t): (float(rng.normal(0, 10)), float(rng.normal(0, 10)), float(rng.normal(0, 2))) for t in teams}}
    home, away = rng.choice(teams, 600), rng.choice(teams, 600)
    neutral = rng.random(600) < 0.2
    x = np.array([[inputs[2022][h][k] - inputs[2022][a][k] for k in range(3)] for h, a in zip(home, away)])
    margin = x @ np.array([0.7, 0.2, 1.5]) + 3.0 * ~neutral
    history = {"home": home, "away": away, "margin": margin, "neutral": neutral, "day": np.arange(600.0),
               "season": np.full(600, 2022)}
    weights, hfa = fit_prior_weights(history, inputs, [2022], use_talent=True)
    assert weights == pytest.approx((0.7, 0.2, 1.5)) and hfa == pytest.approx(3.0)
    assert fit_prior_weights(history, inputs, [2022], use_talent=False)[0][2] == 0.0  # a season without a composite
    assert fit_prior_weights(history, inputs, [], use_talent=True) == (DEFAULT_PRIOR_WEIGHTS, 2.5)  # nothing to fit


def test_no_leakage_with_the_preseason_prior(real_games):
    """The prior and the in-season ratings shrunk toward it read only earlier games: scrambling every
    result from a date on moves none of them before it."""
    settings = FeatureSettings(preseason_prior=True)
    talent = pl.DataFrame({"season": [2022, 2022, 2023, 2023], "team_id": [130, 264, 130, 264],
                           "talent": [800.0, 700.0, 850.0, 700.0]})
    cutoff = datetime(2022, 10, 20, tzinfo=UTC)
    before = build_game_features(real_games, settings, talent)
    scrambled = real_games.with_columns(
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("away_points")).otherwise(pl.col("home_points")).alias("home_points"),
        pl.when(pl.col("start_date") >= cutoff).then(pl.col("home_points") + 21).otherwise(pl.col("away_points")).alias("away_points"),
    )
    after = build_game_features(scrambled, settings, talent)
    columns = ["game_id", "prior_margin", "season_margin", "prior_early"]
    early = lambda frame: frame.filter(pl.col("start_date") < cutoff).select(columns).sort("game_id")  # noqa: E731
    assert early(before).height > 2000 and early(before)["season_margin"].std() > 5
    assert early(before).equals(early(after))
    for column in ("prior_margin", "season_margin"):  # next season's prior and this season's later ratings move
        late = lambda frame, column=column: frame.filter(pl.col("start_date") >= cutoff + pl.duration(days=8)).select(column)  # noqa: E731
        assert not late(before).equals(late(after))
    assert "prior_margin" not in build_game_features(real_games).columns  # not asked: not built


class RecordingDir(CheckpointDir):
    """The store, with the seasons whose starting state a build wrote."""

    def __init__(self, directory, keys):
        super().__init__(directory)
        self.season_of, self.written = {key: season for season, key in keys.items()}, []

    def put(self, key, value):
        super().put(key, value)
        self.written.append(self.season_of.get(key))


def with_points(games: pl.DataFrame, season: int, extra: int) -> pl.DataFrame:
    game_id = games.filter((pl.col("season") == season) & pl.col("home_points").is_not_null())["game_id"][7]
    return games.with_columns(pl.when(pl.col("game_id") == game_id).then(pl.col("home_points") + extra)
                              .otherwise("home_points").alias("home_points"))


@pytest.mark.parametrize("prior", [False, True], ids=["default features", "with the preseason prior"])
def test_the_walk_resumes_from_the_first_changed_season_and_gives_the_full_walks_frame(real_games, tmp_path, prior):
    from gridiron.model.features import season_start_keys

    settings = FeatureSettings(preseason_prior=prior)

    def build(games):
        keys = season_start_keys(games, None, None, settings)
        store = RecordingDir(tmp_path, keys)
        frame = build_game_features(games, settings, checkpoints=store)
        store.prune()
        assert frame.equals(build_game_features(games, settings))  # what a full walk gives
        return store.written

    assert build(real_games) == [2022, 2023]  # each season's start (the first starts from nothing)
    assert build(real_games) == []  # nothing changed: resumed at 2023's start
    assert build(with_points(real_games, 2023, 3)) == []  # a 2023 result reaches no season's start
    changed = with_points(real_games, 2022, 3)
    assert build(changed) == [2023]  # walked from 2022's start: 2023 starts from a new state
    assert len(list(tmp_path.glob("*.pkl"))) == 2  # the old 2023 start was pruned
    (tmp_path / f"{season_start_keys(changed, None, None, settings)[2023]}.pkl").write_bytes(b"not a pickle")
    assert build(changed) == [2023]  # a damaged checkpoint is a miss, walked again


class CountingDir(CheckpointDir):
    """The store, counting the slates a backtest fitted (each fit's predictions are put)."""

    def __init__(self, directory):
        super().__init__(directory)
        self.fits = 0

    def put(self, key, value):
        super().put(key, value)
        self.fits += 1


def test_the_backtest_refits_only_the_slates_whose_inputs_changed_and_reports_as_a_full_backtest(
        real_games, real_lines, tmp_path):
    features = build_game_features(real_games)

    def judged(frame):
        store = CountingDir(tmp_path)
        report = backtest(frame, real_lines, 2023, memo=store).as_json()
        store.prune()
        assert report == backtest(frame, real_lines, 2023).as_json()  # what the backtest without a memo gives
        return store.fits, report

    slates = features.filter((pl.col("season") == 2023) & pl.col("has_result"))["slate"].unique().sort()
    fits, first = judged(features)
    assert fits == len(slates)  # every 2023 slate has 2021-2022 to learn from
    assert judged(features) == (0, first)  # nothing changed: every slate's predictions reused

    # the season's last result: no slate trains on it, and its own prediction reads only its
    # features, so nothing is refitted; the metrics still see the new result
    last = features.filter((pl.col("season") == 2023) & pl.col("has_result")).sort("slate")["game_id"][-1]
    flipped = features.with_columns(pl.when(pl.col("game_id") == last).then(-pl.col("margin") - 30)
                                    .otherwise("margin").alias("margin"))
    fits, report = judged(flipped)
    assert fits == 0 and report["model"]["mae"] != first["model"]["mae"]

    # a result mid-season: the slates after it train on it and are refitted, the earlier ones not
    middle = slates[len(slates) // 2]
    game = features.filter((pl.col("season") == 2023) & (pl.col("slate") == middle) & pl.col("has_result")
                           & pl.col("is_fbs_game"))["game_id"][0]
    changed = features.with_columns(pl.when(pl.col("game_id") == game).then(pl.col("margin") + 7)
                                    .otherwise("margin").alias("margin"))
    fits, _ = judged(changed)
    assert fits == int((slates > middle).sum())
    assert len(list(tmp_path.glob("*.pkl"))) == len(slates)  # the replaced slates' memos were pruned


# The walk on the ten bundled seasons with the preseason prior (ratings, season fits, prior weights
# and talent all in play): each column's sum and sum of magnitudes. Pinned when the ridge fits
# became exact solves of their normal equations (before, scipy's iterative solver moved them in the
# sixth digit between releases). A change of the walk's behaviour fails here; a different BLAS
# moves these in the last bits only.
WALK_FIGURES = {
    "elo_diff": (66885.183413, 124812.824912), "rating_margin": (103889.376413, 279387.498447),
    "form_diff": (2193.666667, 363028.333333), "talent_diff": (6423.8156, 16094.9074),
    "prior_margin": (100636.963177, 199340.984506), "season_margin": (123717.03224, 260389.259785),
    "prior_early": (45820.54859, 72713.245085),
}


def test_the_walk_on_the_ten_real_seasons_gives_the_figures_it_always_gave():
    from gridiron.transforms import build_team_talent, build_teams

    games = pl.concat([build_games(SOURCE.fetch(Partition("games", s)).payload) for s in range(2014, 2024)])
    teams = build_teams(SOURCE.fetch(Partition("teams")).payload)
    talent = pl.concat([build_team_talent(SOURCE.fetch(Partition("talent", s)).payload, s, teams)[0]
                        for s in range(2015, 2024)])
    frame = build_game_features(games, FeatureSettings(preseason_prior=True), talent)
    assert frame.height == 20398
    figures = {c: (float(frame[c].sum()), float(frame[c].abs().sum())) for c in WALK_FIGURES}
    for column, (total, magnitude) in WALK_FIGURES.items():
        assert figures[column] == pytest.approx((total, magnitude), rel=1e-9, abs=1e-5), column
