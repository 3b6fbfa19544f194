"""The notebook a user would write instead of gridiron: the official `cfbd` client, pandas and DuckDB.

Fetches what gridiron fetches (games, lines, FBS teams, team season stats and talent for each
season, the team box scores of every week that has games, the teams and conferences lists), turns
each answer into a pandas frame and loads the frames into a DuckDB file. Nothing else: no
retries, no pacing, no checks, no features, no model, no backup.

Runs in its own virtualenv (`cfbd` 5.x needs pydantic 1), made by `bench/performance.py`; it
imports nothing of gridiron. Prints one JSON line: {"seconds", "fetch_seconds", "requests", "rows"}.

    python bench/notebook_peer.py --host http://127.0.0.1:PORT --key KEY --from 2014 --to 2023 --db out.duckdb
"""

from __future__ import annotations

import argparse
import json
import time

import cfbd
import duckdb
import pandas as pd


def frame(items: list, record: str | None = None) -> pd.DataFrame:
    """The answer's models as a flat frame; with `record`, one row per item of that nested list,
    the parent's id beside it."""
    rows = [item.to_dict() for item in items]
    if not rows:
        return pd.DataFrame()
    if record:
        return pd.json_normalize(rows, record_path=[record], meta=["id"], record_prefix=f"{record}.")
    return pd.json_normalize(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--from", dest="first", type=int, default=2014)
    parser.add_argument("--to", dest="last", type=int, default=2023)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    start = time.perf_counter()
    configuration = cfbd.Configuration(host=args.host, access_token=args.key)
    frames: dict[str, list[pd.DataFrame]] = {}
    requests = 0
    with cfbd.ApiClient(configuration) as client:
        games_api, betting = cfbd.GamesApi(client), cfbd.BettingApi(client)
        teams_api, stats = cfbd.TeamsApi(client), cfbd.StatsApi(client)
        for year in range(args.first, args.last + 1):
            games = games_api.get_games(year=year, season_type=cfbd.SeasonType.BOTH)
            frames.setdefault("games", []).append(frame(games))
            frames.setdefault("lines", []).append(frame(betting.get_lines(year=year), "lines"))
            frames.setdefault("teams_fbs", []).append(frame(teams_api.get_fbs_teams(year=year)))
            frames.setdefault("stats_season", []).append(frame(stats.get_team_stats(year=year)))
            frames.setdefault("talent", []).append(frame(teams_api.get_talent(year=year)))
            requests += 5
            weeks = sorted({(game.season_type.value, game.week) for game in games})
            for season_type, week in weeks:
                box = games_api.get_game_team_stats(year=year, week=week, season_type=cfbd.SeasonType(season_type))
                frames.setdefault("games_teams", []).append(frame(box, "teams"))
                requests += 1
        frames["teams"] = [frame(teams_api.get_teams())]
        # the client's Conference model rejects the real answer (`memberCount` is null for some
        # conferences), so the notebook reads that one route's JSON itself
        answer = cfbd.ConferencesApi(client).get_conferences_with_http_info(_preload_content=False)
        frames["conferences"] = [pd.json_normalize(json.loads(answer.raw_data))]
        requests += 2
    fetched = time.perf_counter() - start

    rows = 0
    with duckdb.connect(args.db) as con:
        for name, parts in frames.items():
            table = pd.concat([p for p in parts if not p.empty], ignore_index=True)
            # nested lists (a box score's stats, a team's logos) as JSON text, as a notebook would
            for column in table.columns:
                if table[column].map(lambda v: isinstance(v, (list, dict))).any():
                    table[column] = table[column].map(lambda v: json.dumps(v, default=str)
                                                      if isinstance(v, (list, dict)) else v)
            con.register("frame", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
            rows += len(table)
    print(json.dumps({"seconds": time.perf_counter() - start, "fetch_seconds": fetched,
                      "requests": requests, "rows": rows}))


if __name__ == "__main__":
    main()
