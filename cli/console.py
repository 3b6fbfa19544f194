"""What a command prints while it works: each phase as it starts and ends, and warnings, one line
each, with no tracebacks and none of Prefect's per-task state lines (those go to the run's log
file, `GRIDIRON_HOME/logs/pipeline_YYYYMMDD.log`). The last line of a failure is its message.

On a terminal the phase under way is a live line, redrawn in place a few times a second with its
elapsed time and the task runs it has finished; it becomes the phase's plain end line when the
phase ends. When stderr is not a terminal (a pipe, a file, CI), only the plain lines are written.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from gridiron.progress import PROGRESS_LOGGER

TICK_SECONDS = 0.25
TASK_LOGGER = "prefect.task_runs"  # Prefect's engine logs "Finished in state ..." once per task run
CLEAR = "\r\x1b[K"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ConsoleHandler(logging.Handler):
    """One line per record on stderr: progress at INFO, anything else from WARNING up."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        super().__init__()
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.live = not quiet and _is_terminal(self.stream)
        self._lock = threading.Lock()
        self._phase: str | None = None  # the live line's text, while a phase is under way
        self._since = 0.0
        self._tasks = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether a record reaches the console: progress lines unless quiet; otherwise warnings and
        errors, less the engine lines Prefect repeats."""
        if record.name == PROGRESS_LOGGER:
            return not self.quiet
        if self.live and record.name == TASK_LOGGER and str(record.msg).startswith("Finished in state"):
            return True  # counted on the live line, never printed
        if self.quiet or record.levelno < logging.WARNING:
            return False
        # Prefect's engine lines (task states, "Encountered exception" with its traceback) repeat
        # what our own lines and the final message say; the log file keeps them
        return f"{'/'}prefect{'/'}" not in record.pathname.replace("\\", "/")

    def emit(self, record: logging.LogRecord) -> None:
        """Print the record as one plain line (a phase's start and end become one line when live)."""
        try:
            if record.name == TASK_LOGGER:
                with self._lock:
                    self._tasks += 1
                return
            message = record.getMessage().strip()
            text = message.splitlines()[0] if message else ""
            prefix = "" if record.name == PROGRESS_LOGGER else f"{record.levelname.lower()}: "
            line = f"gridiron: {prefix}{text}"
            with self._lock:
                if self.live and record.name == PROGRESS_LOGGER and text.endswith(" ..."):
                    self._phase, self._since, self._tasks = line, time.monotonic(), 0
                    self._draw()
                    self._start_ticker()
                    return
                ends_phase = self._phase is not None and record.name == PROGRESS_LOGGER
                self._write((CLEAR if self._phase is not None else "") + line + "\n")
                if ends_phase:
                    self._phase = None
                elif self._phase is not None:
                    self._draw()  # a warning in the middle of a phase: the live line comes back under it
        except Exception:  # noqa: BLE001 - never fail a command over a log line
            self.handleError(record)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _draw(self) -> None:
        if self._phase is None:
            return
        tasks = f", {self._tasks} task runs done" if self._tasks else ""
        self._write(f"{CLEAR}{self._phase} {time.monotonic() - self._since:.0f} s{tasks}")

    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(TICK_SECONDS):
                with self._lock:
                    self._draw()

        self._ticker = threading.Thread(target=tick, name="gridiron-console", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        """Stop the live ticker and close the handler."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            if self._phase is not None:  # interrupted mid-phase: leave the line as it stood
                self._write("\n")
                self._phase = None
        super().close()


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
        ours.close()
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
