"""Request pacing shared by a client's threads: how far apart request starts are, widened by a 429
and narrowed again by answers that are not."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Spaces request starts at least `interval` seconds apart, across threads, and adapts the
    interval to what the server says. It starts at `floor` (the config's `min_request_interval`).
    A 429 doubles it (to at least `after_429`, at most `ceiling`) and holds every request start
    back for the answer's `Retry-After`; each request answered without a 429 narrows it by
    `recovery` back towards the floor. So a client asks as fast as its in-flight bound lets it
    while the server keeps up, and slows down for everyone as soon as it is told to."""

    def __init__(self, floor: float, *, after_429: float = 0.25, ceiling: float = 5.0, recovery: float = 0.9):
        self.floor = floor
        self.interval = floor
        self.after_429 = max(after_429, floor)
        self.ceiling = max(ceiling, self.after_429)
        self.recovery = recovery
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        """Block until this request may start, and book the next start an interval later."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)

    def slow_down(self, retry_after: float | None) -> None:
        """A 429: wider spacing for every later request, and none starts before `retry_after`."""
        with self._lock:
            self.interval = min(self.ceiling, max(2 * self.interval, self.after_429))
            hold = time.monotonic() + (retry_after or 0.0)
            self._next = max(self._next, hold)

    def answered(self) -> None:
        """An answer without a 429: narrow the interval back towards the floor."""
        if self.interval <= self.floor:
            return
        with self._lock:
            narrower = self.interval * self.recovery
            self.interval = narrower if narrower > max(self.floor, 0.01) else self.floor
