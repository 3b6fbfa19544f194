"""What a command prints while it works: each phase as it starts and ends, and warnings, one line
each, with no tracebacks and none of Prefect's per-task state lines (those go to the run's log
file, `GRIDIRON_HOME/logs/pipeline_YYYYMMDD.log`). The last line of a failure is its message."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from gridiron.runs import PROGRESS_LOGGER


class ConsoleHandler(logging.Handler):
    """One line per record on stderr: progress at INFO, anything else from WARNING up."""

    def __init__(self, quiet: bool = False):
        super().__init__()
        self.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == PROGRESS_LOGGER:
            return not self.quiet
        if self.quiet or record.levelno < logging.WARNING:
            return False
        # Prefect's engine lines (task states, "Encountered exception" with its traceback) repeat
        # what our own lines and the final message say; the log file keeps them
        return f"{'/'}prefect{'/'}" not in record.pathname.replace("\\", "/")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip().splitlines()[0] if record.getMessage().strip() else ""
            prefix = "" if record.name == PROGRESS_LOGGER else f"{record.levelname.lower()}: "
            sys.stderr.write(f"gridiron: {prefix}{text}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - never fail a command over a log line
            self.handleError(record)


@contextmanager
def console(quiet: bool = False) -> Iterator[None]:
    """For the block, the root logger's handlers (Prefect's console handler among them) are ours
    alone; they are put back after it."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    ours = ConsoleHandler(quiet)
    root.addHandler(ours)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(ours)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
