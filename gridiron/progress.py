"""Progress lines: one as a step starts ("name ...") and one as it ends, on the `gridiron.progress`
logger. Commands show them (a live line on a terminal, plain lines otherwise); the log keeps them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

PROGRESS_LOGGER = "gridiron.progress"
progress = logging.getLogger(PROGRESS_LOGGER)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Announce `name`, then say how it ended and how long it took (the exception propagates)."""
    progress.info("%s ...", name)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        progress.info("%s failed after %.1f s", name, time.perf_counter() - started)
        raise
    progress.info("%s done in %.1f s", name, time.perf_counter() - started)
