"""DuckDB access shared by every storage module: connections, transactions, frames, checksums."""

from __future__ import annotations

import errno
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from gridiron.errors import error_chain


class LoadError(RuntimeError):
    """A write to the warehouse was refused or rolled back; the message says which check failed."""


class WarehouseBusy(LoadError):
    """Another process held the DuckDB file for longer than we wait; nothing was changed."""


LOCK_WAIT_SECONDS = 15.0
DAMAGE_SIGNS = ("Corrupt database file", "does not match stored checksum")


def no_space(error: BaseException | None, warehouse: Path) -> str | None:
    """For an error that came from a full filesystem (ENOSPC, or DuckDB's own words for it), one
    line naming the filesystem, the room left and the room a run needs: a load keeps a copy of the
    warehouse until it has validated, and writes the new data beside it. None for other errors."""
    if not any((isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)
               for e in error_chain(error)):
        return None
    where = existing_parent(warehouse.parent)
    free = shutil.disk_usage(where).free
    size = sum(p.stat().st_size for p in warehouse.parent.glob(warehouse.name + "*") if p.is_file())
    return (f"no space left on the filesystem holding {where} ({free / 1e6:.1f} MB free): a run needs about "
            f"{2 * size / 1e6:.0f} MB there (a copy of the {size / 1e6:.0f} MB warehouse while it loads, and the "
            "new data); free space there and run again: nothing stored was changed")


def damage_of(error: BaseException | None) -> duckdb.Error | None:
    """The DuckDB error, this one or one it came from, saying the file itself is damaged (a block
    failing its checksum, a corrupt header), rather than a query or a lock failing; else None."""
    return next((e for e in error_chain(error)
                 if isinstance(e, duckdb.Error) and any(sign in str(e) for sign in DAMAGE_SIGNS)), None)


def existing_parent(path: Path) -> Path:
    """The path, or the nearest folder above it that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def connect(path: str | Path, *, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. DuckDB locks its file per process, both ways (a reader keeps a writer
    out and a writer keeps readers out), so a lock conflict is retried for up to `wait_seconds`
    (a dashboard's query or another command's read passes in well under a second) before
    `WarehouseBusy` names the file and the holder."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay = time.monotonic() + wait_seconds, 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {path} stayed locked by another process for {wait_seconds:g} s: "
                    f"{str(error).splitlines()[0]}"
                ) from error
            time.sleep(delay)
            delay = min(1.0, delay * 2)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK and re-raise: the block's writes land together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def read_frame(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """A query's rows as a polars frame, timestamps in UTC whatever the session's time zone (the
    staged frames and the schemas are UTC)."""
    return utc(con.sql(query, params=list(params) if params is not None else None).pl())


def utc(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every timestamp column in UTC."""
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connection's database has the table."""
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open, and a following
    # `con.sql(...)` on the connection then refuses to run
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
    ).fetchall()[0][0])


def content_checksums(con: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None) -> dict[str, str]:
    """Per table `rows:sum-of-row-hashes`: independent of row order, changed by any value.

    DuckDB's `hash` is stable for a given DuckDB version; compare checksums made by one version.
    """
    names = list(tables) if tables is not None else [
        row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
    ]
    sums = {}
    for name in names:
        count, total = con.execute(
            f'SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM "{name}" AS t'
        ).fetchone()
        sums[name] = f"{count}:{total}"
    return sums
