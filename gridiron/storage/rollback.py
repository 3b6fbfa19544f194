"""The warehouse's state before a run, kept so a failed run can be undone.

The load is one transaction, so a failure inside it changes nothing. A failure after it (the
validate phase finding the committed data unacceptable) needs the state from before the run: a
copy of the checkpointed file, taken before load and put back with an atomic rename.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gridiron.storage.db import connect, content_checksums

log = logging.getLogger(__name__)


class RollbackPoint:
    """A copy of the warehouse taken before a run writes it, to put back if validation fails."""

    def __init__(self, warehouse: str | Path, home: str | Path):
        self.warehouse = Path(warehouse)
        self.copy = Path(home) / "rollback" / "pre-run.duckdb"
        self.checksums: dict[str, str] | None = None

    def take(self) -> bool:
        """Copy the warehouse as it is now; False when there is none yet."""
        if not self.warehouse.exists():
            self.checksums = {}
            return False
        with connect(self.warehouse) as con:
            con.execute("CHECKPOINT")  # everything in the main file, nothing left in the WAL
            self.checksums = content_checksums(con)
        self.copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.warehouse, self.copy)
        return True

    def changed_tables(self) -> list[str]:
        """The tables whose content differs from the rollback point's."""
        if self.checksums is None:
            raise RuntimeError("no rollback point taken")
        if not self.warehouse.exists():
            return sorted(self.checksums)
        with connect(self.warehouse) as con:
            now = content_checksums(con)
        return sorted(t for t in set(now) | set(self.checksums) if now.get(t) != self.checksums.get(t))

    def restore(self) -> list[str]:
        """Put the pre-run warehouse back if the run changed it; returns the tables that differed."""
        changed = self.changed_tables()
        if not changed:
            return []
        wal = self.warehouse.with_name(self.warehouse.name + ".wal")
        if not self.checksums:  # there was no warehouse before the run
            self.warehouse.unlink(missing_ok=True)
            wal.unlink(missing_ok=True)
            return changed
        temporary = self.warehouse.with_name(f".{self.warehouse.name}.rollback")
        shutil.copy2(self.copy, temporary)
        os.replace(temporary, self.warehouse)
        wal.unlink(missing_ok=True)
        return changed

    def discard(self) -> None:
        """Delete the copy (the run's writes stand)."""
        self.copy.unlink(missing_ok=True)


@contextmanager
def rollback_on_failure(warehouse: str | Path, home: str | Path) -> Iterator[RollbackPoint]:
    """Undo everything the block changed in the warehouse if it raises (the error propagates).

    The point is taken on entry and its copy removed on exit, whatever happened.
    """
    point = RollbackPoint(warehouse, home)
    point.take()
    try:
        yield point
    except BaseException as error:
        undone = point.restore()
        log.error(
            "%s: %s", type(error).__name__,
            f"rolled back {', '.join(undone)} to their state before this run" if undone
            else "the warehouse is unchanged (the load's transaction was rolled back)",
        )
        raise
    finally:
        point.discard()
