"""The raw layer: the manifest of loaded partitions, their stored payloads and the fetch history."""

from __future__ import annotations

import duckdb

from gridiron.planning import ManifestEntry
from gridiron.storage.schema import schema_version


def read_manifest(con: duckdb.DuckDBPyConnection) -> dict[str, ManifestEntry]:
    """What the warehouse last loaded of each partition (empty before the first load). Its
    `fetched_at` is the last time a fetch returned the loaded content: a partition fetched again
    and found unchanged was not loaded again, but its data is as fresh as that fetch (and a week
    fetched before it settled, then unchanged after, is settled)."""
    if schema_version(con) == 0:
        return {}
    rows = con.execute(
        "SELECT m.partition_key, m.checksum, greatest(m.fetched_at, coalesce(f.last_fetched, m.fetched_at)), "
        "m.signature, m.rows, m.source_version FROM raw_manifest m LEFT JOIN ("
        "  SELECT partition_key, checksum, max(fetched_at) AS last_fetched FROM raw_fetches GROUP BY ALL) f "
        "ON f.partition_key = m.partition_key AND f.checksum = m.checksum"
    ).fetchall()
    return {
        key: ManifestEntry(key=key, checksum=checksum, fetched_at=fetched_at, signature=signature, rows=count,
                           version=version)
        for key, checksum, fetched_at, signature, count, version in rows
    }


def read_raw_payload(con: duckdb.DuckDBPyConnection, key: str) -> tuple[str, bytes] | None:
    """(checksum, gzipped normalised JSON) of a partition, or None if never loaded."""
    if schema_version(con) == 0:
        return None
    row = con.execute(
        "SELECT checksum, payload_gzip FROM raw_payloads WHERE partition_key = ?", [key]
    ).fetchone()
    return (row[0], bytes(row[1])) if row else None


def last_calls_remaining(con: duckdb.DuckDBPyConnection) -> int | None:
    """The API calls left after the most recent API fetch, if any was recorded."""
    if schema_version(con) == 0:
        return None
    row = con.execute(
        "SELECT calls_remaining FROM raw_fetches WHERE source = 'api' AND calls_remaining "
        "IS NOT NULL ORDER BY fetched_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def stored_calendar(con: duckdb.DuckDBPyConnection, seasons: list[int]) -> list[tuple]:
    """(season, season type, week, kickoff, completed) of the stored games of `seasons`."""
    if schema_version(con) == 0 or not seasons:
        return []
    return con.execute(
        "SELECT season, season_type, week, start_date, is_completed FROM games WHERE list_contains(?, season)",
        [seasons],
    ).fetchall()
