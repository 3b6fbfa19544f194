"""The history a backtest of one season reads, and that backtest (what `gridiron backtest` runs).

Games of every season up to the one asked for, their lines, the teams' talent composites and the
box scores: what the warehouse holds, plus any season it lacks read from the configured source (so
a season only an external snapshot holds works too, before it was ever loaded).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from gridiron.config import PipelineConfig
from gridiron.game_weeks import game_calendar, game_weeks_of, plan_weeks
from gridiron.model.backtest import BacktestReport, backtest
from gridiron.model.features import BOX_COLUMNS, build_game_features
from gridiron.model.training import TrainSettings
from gridiron.progress import step
from gridiron.sources import Partition, SourceError, make_source
from gridiron.storage import PlannedWarehouse, connect, migrate, record_backtest
from gridiron.transforms import build_games, build_lines, stage_partition

HISTORY_SEASONS = 3  # seasons before the backtested one that the ratings need at the least


class HistoryUnavailable(LookupError):
    """Neither the warehouse nor the source holds the season asked for."""


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    frames = [frame for frame in frames if frame.height]
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def season_history(config: PipelineConfig, season: int) -> tuple[pl.DataFrame, pl.DataFrame | None,
                                                                  pl.DataFrame | None, pl.DataFrame | None]:
    """(games, lines, talent, box scores) of every season up to `season`; `HistoryUnavailable` when
    it has no games. A season the warehouse lacks is read from the source, its box scores week by week."""
    stored = PlannedWarehouse(config.warehouse_path)
    games = [f.filter(pl.col("season") <= season) for f in [stored.frame("games")] if f.height]
    lines = [f.filter(pl.col("season") <= season) for f in [stored.frame("lines")] if f.height]
    talent = [f.filter(pl.col("season") <= season).select("season", "team_id", "talent")
              for f in [stored.frame("team_talent")] if f.height]
    box = [f.filter(pl.col("season") <= season).select(BOX_COLUMNS)
           for f in [stored.frame("game_team_stats", (*BOX_COLUMNS, "season"))] if f.height]
    have = set(games[0]["season"].unique().to_list()) if games else set()
    have_talent = set(talent[0]["season"].unique().to_list()) if talent else set()
    wanted = [s for s in range(min(config.start_year, season - HISTORY_SEASONS), season + 1) if s not in have]
    if wanted:
        source = make_source(config)
        try:
            team_rows = None
            for year in wanted:
                if _holds(source, "games", year):
                    games_rows = source.fetch(Partition("games", year)).payload
                    games.append(build_games(games_rows))
                    if _holds(source, "lines", year):
                        lines.append(build_lines(source.fetch(Partition("lines", year)).payload))
                    if _holds(source, "games_teams", year):
                        box.extend(season_box_scores(source, games_rows))
                    if year not in have_talent and _holds(source, "talent", year):
                        team_rows = team_rows or source.fetch(Partition("teams")).payload
                        talent.append(talent_frame(source.fetch(Partition("talent", year)).payload, year, team_rows))
        except SourceError as error:
            raise HistoryUnavailable(f"cannot read season {year} from {source.description}: {error}") from error
        finally:
            source.close()
    all_games = _concat(games)
    if all_games is None or season not in set(all_games["season"].to_list()):
        raise HistoryUnavailable(f"season {season}: no games in the warehouse or the source")
    return all_games, _concat(lines), _concat(talent), _concat(box)


def season_box_scores(source, games_rows: list[dict]) -> list[pl.DataFrame]:
    """The `game_team_stats` rows (the features' columns) of the season of these `/games` rows, read
    week by week as the pipeline plans them."""
    weeks = plan_weeks(game_weeks_of(game_calendar(games_rows)), source.seasons_available, now=datetime.now(UTC))[0]
    return [stage_partition(week, source.fetch(week).payload).frames["game_team_stats"].select(BOX_COLUMNS)
            for week in weeks]


def talent_frame(rows: list[dict], season: int, team_rows: list[dict]) -> pl.DataFrame:
    """(season, team_id, talent) of one season's `/talent` rows, staged as the pipeline stages them."""
    staged = stage_partition(Partition("talent", season), rows, {Partition("teams").key: team_rows})
    return staged.frames["team_talent"].select("season", "team_id", "talent")


def _holds(source, endpoint: str, season: int) -> bool:
    available = source.seasons_available(endpoint)
    return available is None or season in available


def season_backtest(config: PipelineConfig, season: int) -> BacktestReport:
    """Walk-forward backtest of `season` with the config's model settings, market variant included."""
    settings = TrainSettings.from_config(config)
    with step(f"backtest: reading the games and lines up to {season}"):
        games, lines, talent, box = season_history(config, season)
    with step(f"backtest: features of {games.height:,} games"):
        features = build_game_features(games, settings.features, talent, box)
    with step(f"backtest: walk-forward over {season}, week by week (model and market variant)"):
        return backtest(features, lines, season, settings.model, market=True)


def keep_backtest(config: PipelineConfig, season: int, report: BacktestReport, now: datetime | None = None) -> str:
    """Keep a season's backtest in the warehouse beside the model runs (never promoted): its version."""
    with connect(config.warehouse_path) as con:
        migrate(con)
        return record_backtest(con, season, report.as_json(), TrainSettings.from_config(config).as_dict(),
                               now or datetime.now(UTC))
