"""The table registry: every staging and mart table's grain, key, partition column, foreign keys
and producing endpoint, stated once.

Read from here by: the DDL's primary keys (`storage.schema`), the one-transaction load's
replace-by-partition (`storage.loading`), the pandera schemas' uniqueness checks (`quality.schemas`),
the gate's and the integrity check's relationships (`quality.scoring`, `quality.gate`), the planned
warehouse view (`storage.planned`) and the endpoint -> tables mapping (`transforms.PRODUCES`). The
endpoints themselves (route, grain, dependencies) are stated once in `gridiron.endpoints`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """`column` names a row of `parent` by its `parent_column`."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class Table:
    """One warehouse table: its grain, key, partition column, producing endpoint and foreign keys."""

    name: str
    grain: str  # one line: what one row is
    key: tuple[str, ...]  # the primary key (DuckDB enforces it)
    # a load replaces the rows of one value of it (of each, for a tuple: the partition's scope,
    # e.g. season, season type and week); None: the whole table
    partition_column: str | tuple[str, ...] | None
    endpoint: str | None  # the CFBD endpoint whose partitions produce it; None: the train phase
    references: tuple[Reference, ...] = ()

    @property
    def partition_columns(self) -> tuple[str, ...]:
        """The columns a partition's rows are replaced by (none for a whole-table replace)."""
        column = self.partition_column
        return () if column is None else (column,) if isinstance(column, str) else column

    def primary_key_sql(self) -> str:
        """The table's PRIMARY KEY clause."""
        return f"PRIMARY KEY ({', '.join(self.key)})"


def _team(column: str) -> Reference:
    return Reference(column, "teams", "team_id")


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        # staging: one row per entity, as the API describes it (renamed and typed)
        Table("teams", "one row per team (FBS and every opponent the API knows)", ("team_id",), None, "teams"),
        Table("conferences", "one row per conference", ("conference_id",), None, "conferences"),
        Table("team_seasons", "one row per FBS team x season, with that season's conference",
              ("season", "team_id"), "season", "teams_fbs", (_team("team_id"),)),
        Table("games", "one row per game", ("game_id",), "season", "games",
              (_team("home_id"), _team("away_id"))),
        Table("lines", "one row per game x betting provider", ("game_id", "provider"), "season", "lines",
              (Reference("game_id", "games", "game_id"),)),
        Table("team_season_stats", "one row per team x season x statistic",
              ("season", "team_id", "stat_name"), "season", "stats_season", (_team("team_id"),)),
        Table("team_talent", "one row per team x season: the 247Sports team talent composite",
              ("season", "team_id"), "season", "talent", (_team("team_id"),)),
        Table("game_team_stats", "one row per game x team: the box score, each stat typed",
              ("game_id", "team_id"), ("season", "season_type", "week"), "games_teams",
              (Reference("game_id", "games", "game_id"), _team("team_id"))),
        # marts
        Table("standings", "one row per team x season: records and points of completed games",
              ("season", "team_id"), "season", "games", (_team("team_id"),)),
        Table("game_features", "one row per game: only what was known before kickoff", ("game_id",), None, None),
        Table("predictions", "one row per game x model version", ("game_id", "model_version"),
              "model_version", None),
        Table("model_runs", "one row per trained (or backtested) model version", ("version",), "version", None),
        Table("forecasts", "one row per unplayed game x forecast batch (the train run that issued it): each "
              "prediction as it was made, never replaced, scored once the game is played",
              ("game_id", "batch"), "batch", None, (Reference("game_id", "games", "game_id"),)),
    )
}

# the tables the collect -> process path produces from partitions, and the train phase's marts
PARTITION_TABLES: dict[str, Table] = {name: t for name, t in TABLES.items() if t.endpoint is not None}
TRAIN_MARTS: dict[str, Table] = {name: t for name, t in TABLES.items() if t.endpoint is None}


def produced_by(endpoint: str) -> tuple[str, ...]:
    """The tables one endpoint's partitions produce, in registry order."""
    return tuple(name for name, table in PARTITION_TABLES.items() if table.endpoint == endpoint)


def references() -> list[tuple[Table, Reference]]:
    """Every foreign key of the registry: (child table, reference)."""
    return [(table, ref) for table in TABLES.values() for ref in table.references]
