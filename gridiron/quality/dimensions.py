"""The quality dimensions, their weights and the columns each cross-column rule reads: plain data,
free of pandera, read by both the schemas (`quality.schemas`) and the scores (`quality.scoring`),
so neither imports the other for them."""

from __future__ import annotations

VALIDITY, UNIQUENESS, CONSISTENCY = "validity", "uniqueness", "consistency"

WEIGHTS = {"completeness": 0.25, "validity": 0.30, "uniqueness": 0.15, "consistency": 0.20, "timeliness": 0.10}
DIMENSIONS = tuple(WEIGHTS)
HARD = (VALIDITY, UNIQUENESS, CONSISTENCY)  # a failure of these quarantines the partition

# pandera's names for a failed key, and for a table whose columns are not the schema's
UNIQUE_CHECKS = ("field_uniqueness", "multiple_fields_uniqueness", "unique")
STRUCTURAL_CHECKS = ("column_in_schema", "column_in_dataframe", "dtype(", "coerce_dtype")

# the columns a cross-column rule reads, shown in its failure's example row
CHECK_COLUMNS: dict[str, tuple[str, ...]] = {
    "home_differs_from_away": ("home_id", "away_id"),
    "completed_has_both_scores": ("is_completed", "home_points", "away_points"),
    "wins_losses_ties_add_up_to_games": ("games", "wins", "losses", "ties"),
    "point_diff_adds_up": ("points_for", "points_against", "point_diff"),
    "home_and_away_within_games": ("games", "home_wins", "home_losses", "away_wins", "away_losses"),
    "completions_within_attempts": ("game_id", "team", "pass_completions", "pass_attempts"),
    "conversions_within_attempts": ("game_id", "team", "third_down_conversions", "third_down_attempts",
                                    "fourth_down_conversions", "fourth_down_attempts"),
}
