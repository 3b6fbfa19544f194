"""Game prediction: Elo, opponent-adjusted ratings, leak-free features, walk-forward backtests,
champion/challenger model registry. Pure functions and files; no Prefect."""
