"""A fake CFBD API: a real HTTP server on 127.0.0.1 serving a snapshot directory on the API's routes.

It speaks what the client relies on: the routes and query parameters we call, Bearer auth (401
without a valid key), `X-CallLimit-Remaining` counting down with each call, the monthly quota
answer (HTTP 429, `{"message": "Monthly call quota exceeded"}`), and `/info`.

Faults are rules: `Fault(route, kind, ...)` answers matching requests (the first `times` of them)
with an error status, a delay, malformed JSON or a wrong shape. A new kind of fault is one more
entry in `FAULT_KINDS`.

    with FakeCFBD(snapshot_dir, api_key="k") as server:
        server.add_fault(Fault("/games", "status", status=503, times=1))
        ... CFBDClient("k", server.url) ...

An as-of time (`server.as_of = datetime`) serves the data as the API had it then: a game that kicks
off later is scheduled but unplayed (no points, not completed, no post-game figures), its lines
carry no score, and its box score does not exist yet. A season replayed week by week moves it.

Also runs as a program: `python -m gridiron.testing.fake_cfbd --snapshot DIR --port 8765`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gridiron.game_weeks import kickoff_of
from gridiron.sources.base import ENDPOINTS
from gridiron.sources.snapshot import rows_of_week

# the routes the client calls, each answered from the snapshot file of its endpoint
SEASONAL_ROUTES = {e.route: e.name for e in ENDPOINTS.values() if e.seasonal}
REFERENCE_ROUTES = {e.route: e.name for e in ENDPOINTS.values() if not e.seasonal}


class _QuietServer(ThreadingHTTPServer):
    """A client that exits with keep-alive connections open resets them: not worth a traceback."""

    def handle_error(self, request, client_address) -> None:
        """Say nothing of a connection the client reset; report any other error as usual."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Fault:
    """Answer requests to `route` (path; None = any) whose query has `params`, `times` times."""

    route: str | None
    kind: str
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1  # -1: every matching request
    params: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, path: str, query: dict[str, str]) -> bool:
        """Whether this fault applies to a request (its route, its params, and hits left)."""
        if self.times != -1 and self.hits >= self.times:
            return False
        if self.route is not None and path != self.route:
            return False
        return all(query.get(k) == str(v) for k, v in self.params.items())


@dataclass
class Reply:
    """What the fake server sends back: status, body, headers, a delay, whether it costs a call, where to cut it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    counts_call: bool = True
    cut_after: int | None = None  # send this many bytes of the body, then drop the connection


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def _status_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    body = fault.body if fault.body is not None else {"message": f"fault {fault.status}"}
    return _json(fault.status, body, fault.headers)


def _delay_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    reply = real()
    reply.delay = fault.delay
    return reply


def _malformed_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    return Reply(200, b'[{"id": 1, "season": 20', {"Content-Type": "application/json"})


def _wrong_shape_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    return _json(200, fault.body if fault.body is not None else {"games": "not a list"})


def _disconnect_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    """The real answer, cut off halfway: the connection drops before the body's declared end."""
    reply = real()
    reply.cut_after = len(reply.body) // 2
    return reply


def _mutate_fault(fault: Fault, real: Callable[[], Reply]) -> Reply:
    """Serve the real rows changed by `fault.body`, a function of the parsed rows."""
    reply = real()
    rows = json.loads(reply.body)
    return _json(reply.status, fault.body(rows), {})


FAULT_KINDS: dict[str, Callable[[Fault, Callable[[], Reply]], Reply]] = {
    "status": _status_fault,  # any HTTP status with a JSON body (429 with Retry-After, 5xx, ...)
    "delay": _delay_fault,  # the real answer, late (a read timeout for a short client timeout)
    "malformed": _malformed_fault,  # 200 with truncated JSON
    "wrong_shape": _wrong_shape_fault,  # 200 with JSON that is not an array of rows
    "mutate": _mutate_fault,  # 200 with the real rows passed through a function
    "disconnect": _disconnect_fault,  # 200 whose body stops halfway, the connection dropped
}


# what a game row only has once it is played: hidden for a game after the as-of time
GAME_RESULT_FIELDS = {"completed": False, "homePoints": None, "awayPoints": None, "homeLineScores": None,
                      "awayLineScores": None, "homePostgameElo": None, "awayPostgameElo": None,
                      "homePostgameWinProbability": None, "awayPostgameWinProbability": None,
                      "excitementIndex": None, "attendance": None}
LINE_RESULT_FIELDS = {"homeScore": None, "awayScore": None}


def as_it_was(rows: list[Any], as_of: datetime, hidden: dict[str, Any]) -> list[Any]:
    """`/games` or `/lines` rows as served at `as_of`: the result fields of a game that kicks off
    later set to what an unplayed game has (the rows are shared: changed ones are copies)."""
    served = []
    for row in rows:
        kickoff = kickoff_of(row) if isinstance(row, dict) else None
        served.append({**row, **hidden} if kickoff is not None and kickoff > as_of else row)
    return served


class FakeCFBD:
    """A real HTTP server on loopback that speaks the CFBD v2 routes from a snapshot directory, with injectable faults and a monthly call quota."""

    def __init__(
        self,
        snapshot_dir: str | Path,
        *,
        api_key: str = "test-key",
        calls_remaining: int = 1000,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.snapshot_dir = Path(snapshot_dir)
        self.as_of: datetime | None = None  # serve the data as the API had it then (None: all of it)
        self.api_key = api_key
        self.calls_remaining = calls_remaining
        self.faults: list[Fault] = []
        self._files: dict[Path, tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _QuietServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCFBD:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeCFBD:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and introspection --------------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        """Inject a fault (ValueError for an unknown kind)."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; known: {sorted(FAULT_KINDS)}")
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self.faults.clear()

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """The requests received on `path`, in order."""
        return [r for r in self.requests if r["path"] == path]

    @property
    def metered(self) -> list[dict[str, Any]]:
        """The requests that cost quota (all but the unmetered `/info`)."""
        return [r for r in self.requests if r["path"] != "/info"]

    # -- answering -----------------------------------------------------------------------------
    def _load(self, relative: str) -> list[Any] | None:
        """A snapshot file's rows, parsed once per change (a season's weeks each read the season file).
        Shared, not copied: answering only filters and serialises them, and a `mutate` fault works
        on its own parse of the answer."""
        path = self.snapshot_dir / relative
        if not path.is_file():
            return None
        stamp = path.stat().st_mtime_ns
        cached = self._files.get(path)
        if cached is None or cached[0] != stamp:
            with gzip.open(path, "rb") as handle:
                cached = self._files[path] = (stamp, json.loads(handle.read()))
        return cached[1]

    def _real_reply(self, path: str, query: dict[str, str]) -> Reply:
        if path == "/info":
            return _json(200, {"patronLevel": 0, "remainingCalls": self.calls_remaining})
        if path in REFERENCE_ROUTES:
            rows = self._load(f"{REFERENCE_ROUTES[path]}.json.gz") or []
            return _json(200, rows)
        if path in SEASONAL_ROUTES:
            year = query.get("year")
            if not year or not year.isdigit():
                return _json(400, {"message": "year is required and must be an integer"})
            rows = self._load(f"{SEASONAL_ROUTES[path]}/{int(year)}.json.gz") or []
            if path == "/games/teams":
                return self._box_scores(int(year), rows, query)
            season_type = query.get("seasonType", "regular" if path == "/games" else "both")
            if path == "/games" and season_type != "both":
                rows = [r for r in rows if r.get("seasonType") == season_type]
            if "week" in query and path in ("/games", "/lines"):
                rows = [r for r in rows if str(r.get("week")) == query["week"]]
            if self.as_of is not None and path in ("/games", "/lines"):
                rows = as_it_was(rows, self.as_of, GAME_RESULT_FIELDS if path == "/games" else LINE_RESULT_FIELDS)
            return _json(200, rows)
        return _json(404, {"message": f"no route {path}"})

    def _box_scores(self, year: int, rows: list[Any], query: dict[str, str]) -> Reply:
        """`/games/teams` as the API answers it: a week, a team or a conference of one season."""
        if not any(query.get(name) for name in ("week", "team", "conference")):
            return _json(400, {"message": "year and one of week, team or conference are required"})
        if query.get("week"):
            if not query["week"].isdigit():
                return _json(400, {"message": "week must be an integer"})
            games = self._load(f"games/{year}.json.gz") or []
            if self.as_of is not None:  # a game not played by then has no box score yet
                games = [g for g in games if (kickoff_of(g) or self.as_of) <= self.as_of]
            rows = rows_of_week(rows, games, query.get("seasonType", "regular"), int(query["week"]))
        for name, field_ in (("team", "team"), ("conference", "conference")):
            if query.get(name):
                rows = [r for r in rows if any(t.get(field_) == query[name] for t in r.get("teams", []))]
        return _json(200, rows)

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Reply:
        """The reply to one request: auth, quota, faults, then the route's rows."""
        if authorization != f"Bearer {self.api_key}":
            return Reply(401, b'{"message":"Unauthorized"}', {"Content-Type": "application/json"}, counts_call=False)
        with self._lock:
            fault = next((f for f in self.faults if f.matches(path, query)), None)
            if fault:
                fault.hits += 1
            if path != "/info" and self.calls_remaining <= 0:
                return _json(429, {"message": "Monthly call quota exceeded"}, {"X-CallLimit-Remaining": "0"})
            if path != "/info":
                self.calls_remaining -= 1
            remaining = self.calls_remaining
        real = lambda: self._real_reply(path, query)  # noqa: E731
        reply = FAULT_KINDS[fault.kind](fault, real) if fault else real()
        reply.headers.setdefault("X-CallLimit-Remaining", str(remaining))
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.requests.append({
                        "time": time.monotonic(), "path": parts.path, "query": query,
                        "authorization": self.headers.get("Authorization"),
                    })
                try:
                    reply = server.answer(parts.path, query, self.headers.get("Authorization"))
                    if reply.delay:
                        time.sleep(reply.delay)
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if reply.cut_after is not None:
                        self.wfile.write(reply.body[:reply.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its read timeout): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read server.requests instead

        return Handler


def main() -> None:
    """Serve a snapshot on the CFBD routes until interrupted (`python -m gridiron.testing.fake_cfbd`)."""
    parser = argparse.ArgumentParser(description="Serve a CFBD snapshot directory on the API routes")
    parser.add_argument("--snapshot", required=True, help="snapshot directory (games/YYYY.json.gz, ...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--calls-remaining", type=int, default=1000)
    args = parser.parse_args()
    server = FakeCFBD(args.snapshot, api_key=args.api_key, calls_remaining=args.calls_remaining,
                      host=args.host, port=args.port)
    print(f"fake CFBD API on {server.url} serving {args.snapshot}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()


if __name__ == "__main__":
    main()
