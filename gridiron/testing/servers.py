"""Real local services for the tests and the benchmarks, each on 127.0.0.1 and stopped by its
context: a Prefect server (`prefect server start`, its own database: SQLite, or a PostgreSQL server
below), a process worker, an SMTP server (aiosmtpd, a test dependency) that keeps what it receives,
an HTTP receiver standing in for Slack and webhooks, a PostgreSQL server (Debian's postgresql, in a
temporary directory) and the dashboard (`gridiron monitor`). They drive the programs from outside,
over their command lines and HTTP: nothing here imports Prefect.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.25):
    """Poll `condition` until it returns something truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether `url` answers 200 now (a refused or timed-out request is False): the readiness probe
    `wait_for` polls for every server here."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


class PrefectServer:
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME and database."""

    def __init__(self, home: Path, database_url: str | None = None):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.url,
            "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # a queued deployment run retries for its concurrency slot every 2 s, not every 30 s
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
            "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        }
        self.server_env = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url} if database_url else {}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, **self.server_env}
        env.pop("PREFECT_API_URL")  # the server itself must not think it is a client of another
        self.process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=open(self.home / "server.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 90, f"the Prefect server on port {self.port} (log: {self.home / 'server.log'})")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prefect server exited: {(self.home / 'server.log').read_text()[-2000:]}")
        return answers(f"{self.url}/health")

    def __exit__(self, *exc) -> None:
        stop_process_group(self.process)


class Worker:
    """A process worker on `pool`, polling often; stopped with SIGINT like a person would.
    `command` replaces `prefect worker start ...` (e.g. `gridiron schedule`, which execs one)."""

    def __init__(self, server: PrefectServer, pool: str, log: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None, cwd: Path | None = None):
        self.args = command or [PREFECT, "worker", "start", "--pool", pool, "--type", "process"]
        self.env = {**os.environ, **server.env, "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "PREFECT_WORKER_PREFETCH_SECONDS": "1", **(env or {})}
        self.log = log
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        self.process = subprocess.Popen(self.args, env=self.env, stdout=open(self.log, "w"), cwd=self.cwd,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        stop_process_group(self.process, signal.SIGINT, timeout=15)


class _MailHandler:
    def __init__(self):
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        """Keep the email received, with its envelope recipients as X-Envelope-To."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"


class SMTPServer:
    """aiosmtpd on 127.0.0.1: `messages` holds every email received (plain SMTP, no auth)."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.handler = _MailHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        """Every email received so far, in order."""
        return self.handler.messages

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class HTTPReceiver:
    """Records every POST as (path, JSON body) and answers 200 "ok" (what Slack answers)."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self, path: str) -> list[dict]:
        """The JSON bodies POSTed to `path`, in order."""
        return [body for p, body in self.received if p == path]

    def __enter__(self) -> HTTPReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def postgres_bindir() -> Path | None:
    """Where Debian's PostgreSQL server programs are (they are not on PATH), newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return Path(dirs[0]).parent if dirs else None


def postgres_missing() -> str | None:
    """Why the PostgreSQL server cannot start here, or None when it can."""
    if postgres_bindir() is None:
        return "no PostgreSQL server programs (Debian: apt-get install postgresql; `make test` installs it as root)"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run PostgreSQL as (Debian's package makes one)"
    return None


class PostgresServer:
    """A PostgreSQL server of its own on a free loopback port: `initdb` into a temporary
    directory (trust authentication, TCP on 127.0.0.1 only, no Unix socket), one database
    `prefect`, and everything removed at the end. PostgreSQL refuses to run as root, so as root
    it runs as the `postgres` user that Debian's package makes."""

    def __init__(self):
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.process: subprocess.Popen | None = None
        self.dir: Path | None = None

    def _run(self, *args: str) -> str:
        """A program of the server's, as its user; its output, or AssertionError with what it said."""
        done = subprocess.run([str(self.bindir / args[0]), *args[1:]], user=self.user, capture_output=True,
                              text=True, timeout=120)
        if done.returncode:
            raise AssertionError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def __enter__(self) -> PostgresServer:
        # under /tmp itself: pytest's tmp_path is private to root, and the server's user must reach it
        self.dir = Path(tempfile.mkdtemp(prefix="gridiron-pg-"))
        data = self.dir / "data"
        data.mkdir()
        if self.user:
            for path in (self.dir, data):
                shutil.chown(path, self.user, self.user)
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        log = self.dir / "postgres.log"
        log.touch()
        if self.user:
            shutil.chown(log, self.user, self.user)
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200"],
            user=self.user, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, 60, f"PostgreSQL on port {self.port} (log: {log})")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "prefect")
        return self

    def query(self, sql: str, database: str = "prefect") -> str:
        """One value from `psql` (unaligned, tuples only)."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                         "-At", "-c", sql).strip()

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"postgres exited: {(self.dir / 'postgres.log').read_text()[-2000:]}")
        return subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                              timeout=10).returncode == 0

    def __exit__(self, *exc) -> None:
        try:
            if self.process is not None:
                stop_process_group(self.process, signal.SIGINT)  # a fast shutdown: it does not wait for clients
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class MonitorServer:
    """`gridiron monitor` on a free loopback port over `home`, stopped by `stop`."""

    def __init__(self, home: Path, refresh: float = 5.0, env: dict | None = None, cwd: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gridiron", "monitor", "--port", str(self.port)], cwd=cwd,
            env={**os.environ, "GRIDIRON_HOME": str(home), "GRIDIRON_MONITOR_REFRESH": str(refresh), **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"the monitor did not start: {self.process.stdout.read()[-2000:]}")

    def stop(self) -> None:
        """Stop the dashboard (SIGTERM, then SIGKILL after 20 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_page(playwright):
    """(browser, page): Debian's chromium, headless, driven by a started `sync_playwright()`."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    return browser, browser.new_page(viewport={"width": 1400, "height": 2400})


def flow_run_process(run_id: str):
    """The process a worker started for this flow run (found by the run id in its environment), or None."""
    import psutil

    for process in psutil.process_iter():
        try:
            if process.environ().get("PREFECT__FLOW_RUN_ID") == run_id:
                return process
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return None


class PrefectREST:
    """The few calls of Prefect's REST API that the operations tests and benchmarks make, over
    httpx. A busy server answers 503 (its SQLite database locked) or 429: such a call is retried
    after a pause, as Prefect's own client does."""

    def __init__(self, api_url: str, attempts: int = 8):
        self.client = httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=30)
        self.attempts = attempts

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(self.attempts):
            response = self.client.request(method, path, **kwargs)
            if response.status_code not in (429, 503) or attempt == self.attempts - 1:
                return response
            time.sleep(min(0.25 * 2 ** attempt, 5))
        raise AssertionError("not reached")

    def run_deployment(self, name: str) -> tuple[str, str]:
        """Start a run of deployment `flow/deployment` (scheduled now, for a worker): (run id, run name)."""
        flow, deployment = name.split("/")
        found = self._call("GET", f"deployments/name/{flow}/{deployment}").raise_for_status().json()
        run = self._call("POST", f"deployments/{found['id']}/create_flow_run", json={}).raise_for_status().json()
        return run["id"], run["name"]

    def flow_run(self, run_id: str) -> dict:
        """The flow run as the API returns it (`state_name`, `start_time`, `end_time`, ...)."""
        return self._call("GET", f"flow_runs/{run_id}").raise_for_status().json()

    def wait_state(self, run_id: str, names: set[str], timeout: float, what: str = "") -> str:
        """Wait until the run is in one of the states `names`: the state's name."""
        return wait_for(lambda: (s := self.flow_run(run_id)["state_name"]) in names and s, timeout,
                        f"run {run_id} to reach {sorted(names)}{what}")

    def free_concurrency_limit(self, name: str) -> None:
        """Delete a global concurrency limit (a slot a killed run still leases), if it exists."""
        response = self._call("DELETE", f"v2/concurrency_limits/{name}")
        if response.status_code != 404:
            response.raise_for_status()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
