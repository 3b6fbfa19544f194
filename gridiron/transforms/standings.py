"""Standings mart: one row per team x season. Pure function of the staged games.

Rules (the ones analysts expect):
- only games with a result count (`has_result`: completed, both scores, not a suspect 0-0);
- postseason games count in the overall record (and in conference columns only when the API marks
  them conference games, e.g. championship games);
- neutral-site games count in the overall record but as neither home nor away;
- a tie (still possible below FBS) counts half a win in the percentages;
- a percentage with no games behind it is null, not zero;
- `conference` is the team's conference at game time (the most common one on its rows that season);
  an empty `conferences` scope keeps every team.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

_SIDES = (("home", "away"), ("away", "home"))


def team_games(games: pl.DataFrame) -> pl.DataFrame:
    """Each counted game twice, once from each team's side: one row per team x game."""
    counted = games.filter(pl.col("has_result"))
    sides = []
    for own, other in _SIDES:
        sides.append(
            counted.select(
                "season",
                "game_id",
                pl.col(f"{own}_id").alias("team_id"),
                pl.col(f"{own}_team").alias("team"),
                pl.col(f"{own}_conference").alias("conference"),
                pl.col(f"{own}_classification").alias("classification"),
                pl.col(f"{other}_id").alias("opponent_id"),
                pl.col("is_conference_game"),
                (~pl.col("is_neutral_site") & pl.lit(own == "home")).alias("is_home"),
                (~pl.col("is_neutral_site") & pl.lit(own == "away")).alias("is_away"),
                pl.col(f"{own}_points").cast(pl.Int64).alias("points_for"),
                pl.col(f"{other}_points").cast(pl.Int64).alias("points_against"),
            )
        )
    return pl.concat(sides).with_columns(
        is_win=pl.col("points_for") > pl.col("points_against"),
        is_loss=pl.col("points_for") < pl.col("points_against"),
        is_tie=pl.col("points_for") == pl.col("points_against"),
    )


def _record(prefix: str, mask: pl.Expr) -> list[pl.Expr]:
    wins = (pl.col("is_win") & mask).sum().cast(pl.Int32)
    losses = (pl.col("is_loss") & mask).sum().cast(pl.Int32)
    ties = (pl.col("is_tie") & mask).sum().cast(pl.Int32)
    played = mask.sum().cast(pl.Int32)
    pct = pl.when(played > 0).then((wins + 0.5 * ties) / played).otherwise(None)
    p = f"{prefix}_" if prefix else ""
    return [
        wins.alias(f"{p}wins"),
        losses.alias(f"{p}losses"),
        ties.alias(f"{p}ties"),
        pct.alias(f"{p}win_pct"),
    ]


def build_standings(games: pl.DataFrame, conferences: Sequence[str] = ()) -> pl.DataFrame:
    """Standings for every team x season in `games`, scoped to `conferences` when given."""
    rows = team_games(games)
    everything = pl.col("game_id").is_not_null()  # a per-row mask (a literal would sum to 1)
    standings = (
        rows.group_by("season", "team_id")
        .agg(
            pl.col("team").sort_by("game_id").last(),
            pl.col("conference").drop_nulls().mode().sort().first(),
            pl.col("classification").drop_nulls().mode().sort().first(),
            pl.len().cast(pl.Int32).alias("games"),
            *_record("", everything),
            *_record("conf", pl.col("is_conference_game")),
            *_record("home", pl.col("is_home")),
            *_record("away", pl.col("is_away")),
            pl.col("points_for").sum(),
            pl.col("points_against").sum(),
        )
        .with_columns(point_diff=pl.col("points_for") - pl.col("points_against"))
        .sort("season", "team_id")
    )
    if conferences:
        standings = standings.filter(pl.col("conference").is_in(list(conferences)))
    return standings
