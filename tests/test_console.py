"""What commands print while they work: a live line per phase on a real terminal (a pty), plain
lines anywhere else, nothing with --quiet."""

from __future__ import annotations

import io
import logging
import os
import re
import time

from cli.console import ConsoleHandler
from gridiron.progress import PROGRESS_LOGGER


def record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def a_phase(handler: ConsoleHandler, meanwhile=lambda: None) -> None:
    handler.handle(record(PROGRESS_LOGGER, "collect ..."))
    for _ in range(3):
        handler.handle(record("prefect.task_runs", "Finished in state Completed()"))
    meanwhile()
    handler.handle(record("gridiron", "lines/2023: served stale", logging.WARNING))
    handler.handle(record(PROGRESS_LOGGER, "collect completed in 1.2 s (38 records, peak 210 MB)"))
    handler.close()


def read_all(fd: int, into: list[bytes] | None = None) -> str:
    os.set_blocking(fd, False)
    chunks = into if into is not None else []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


LIVE = re.compile(r"\r\x1b\[Kgridiron: collect \.\.\. \d+ s, 3 task runs done")


def test_on_a_terminal_the_phase_under_way_is_a_live_line_with_its_time_and_task_runs():
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        handler = ConsoleHandler(stream=terminal)
        assert handler.live
        chunks: list[bytes] = []

        def redrawn_twice():  # by the ticker, however busy the machine
            deadline = time.monotonic() + 30
            while len(LIVE.findall(read_all(master, chunks))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)

        a_phase(handler, redrawn_twice)
        shown = read_all(master, chunks)
    os.close(master)
    assert len(LIVE.findall(shown)) >= 2  # redrawn in place
    assert "\r\x1b[Kgridiron: warning: lines/2023: served stale\r\n" in shown  # above the live line
    assert shown.endswith("\r\x1b[Kgridiron: collect completed in 1.2 s (38 records, peak 210 MB)\r\n")
    assert "Finished in state" not in shown


def test_anywhere_else_each_line_is_written_once_and_task_runs_are_not_shown():
    out = io.StringIO()
    handler = ConsoleHandler(stream=out)
    assert not handler.live
    a_phase(handler)
    assert out.getvalue() == ("gridiron: collect ...\ngridiron: warning: lines/2023: served stale\n"
                              "gridiron: collect completed in 1.2 s (38 records, peak 210 MB)\n")


def test_quiet_shows_nothing_even_on_a_terminal():
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        handler = ConsoleHandler(quiet=True, stream=terminal)
        a_phase(handler)
        shown = read_all(master)
    os.close(master)
    assert shown == ""
