"""A run whose orchestrator disappears ends within a bounded time, saying so.

Prefect's client retries every state change and event for minutes when its API is gone, so a
run would hang long after its server died. `ApiWatchdog` polls the API's health endpoint from a
daemon thread; after `grace_seconds` without an answer it logs one line naming the API and ends
the process (exit code 1). What that leaves is what a SIGKILL leaves, which the warehouse is built
for: an uncommitted load is rolled back by DuckDB, the run lock is released by the operating
system, and the next run starts cleanly.

A run that fails because a call met the dead API leaves the watched block at once, but Prefect's
engine then reports the failure to that API, retrying for about a minute. So the watchdog leaves
on an exception only when the API answers; while it does not, it keeps watching, and the process
ends within the same grace as if the run had still been going.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import httpx

log = logging.getLogger(__name__)

#: set, beside PREFECT_API_URL, to the URL of the temporary Prefect server the command started for
#: this run (`cli.temporary_server`); the lost-API line then names that server, not one to restart
TEMPORARY_API_VARIABLE = "GRIDIRON_TEMPORARY_PREFECT_API"


def temporary_api() -> str | None:
    """The temporary server's API URL when this process's command started one, else None."""
    url = os.environ.get(TEMPORARY_API_VARIABLE)
    return url if url and url == os.environ.get("PREFECT_API_URL") else None


class ApiWatchdog:
    """Polls the Prefect API's health in a thread and calls `on_lost` once it has not answered for `grace_seconds`."""

    def __init__(self, health_url: str, *, interval_seconds: float = 5.0, grace_seconds: float = 30.0,
                 on_lost: Callable[[str], None] | None = None):
        self.health_url = health_url
        self.interval = interval_seconds
        self.grace = grace_seconds
        self.on_lost = on_lost or _exit
        self._stop = threading.Event()
        self._until_answered = threading.Event()  # the block failed: stop once the API answers again
        self._thread = threading.Thread(target=self._watch, name="gridiron-api-watchdog", daemon=True)

    def __enter__(self) -> ApiWatchdog:
        self._thread.start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *exc: object) -> None:
        if error_type is not None and self._thread.is_alive() and self._answers() is not None:
            self._until_answered.set()  # the engine is about to retry against a lost API: keep watching
            return
        self._stop.set()

    def _answers(self, client: httpx.Client | None = None) -> str | None:
        """None when the API answers, or is only slow (a busy server is not a lost one); else what
        went wrong: a refused connection or a 5xx. The watching thread keeps one `client` (a new
        one costs an SSL context, ~30 ms of CPU, even for http://); a one-off probe makes its own."""
        try:
            timeout = max(5.0, self.interval)
            response = client.get(self.health_url, timeout=timeout) if client else httpx.get(self.health_url, timeout=timeout)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as error:
            return f"{type(error).__name__}: {error}"
        except httpx.HTTPError:
            return None
        return None if response.status_code < 500 else f"HTTP {response.status_code}"

    def _watch(self) -> None:
        with httpx.Client() as client:
            self._watch_with(client)

    def _watch_with(self, client: httpx.Client) -> None:
        lost_since: float | None = None
        while not self._stop.wait(self.interval):
            problem = self._answers(client)
            if problem is None:
                if self._until_answered.is_set():
                    return
                lost_since = None
                continue
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since >= self.grace and not self._stop.is_set():
                api = self.health_url.removesuffix("/health")
                temporary = api == (temporary_api() or "").rstrip("/")
                self.on_lost(
                    f"the {'temporary Prefect server' if temporary else 'Prefect API'} at {api} stopped answering "
                    f"({problem}) for {self.grace:g} s: the run cannot record its state there and ends now; what "
                    "it had not committed is rolled back. "
                    + ("Run again" if temporary else "Start the Prefect server again, then run again"))
                return


def _exit(message: str) -> None:
    log.error(message)
    sys.stderr.write(f"gridiron: run failed: {message}\n")
    sys.stderr.flush()
    os._exit(1)  # Prefect's own retries would hold the process for minutes
