"""The temporary Prefect server a command starts when no PREFECT_API_URL is set, as a child process.

Prefect 3.9 starts the same server itself (`prefect.server.api.server.SubprocessASGIServer`) the
first time a client needs it, but the import of that module costs the run's own process the
server's code (about 1.7 s and 78 MB, measured on this machine), which the run never uses. This
starts the same uvicorn command before any of Prefect is imported and sets PREFECT_API_URL to it,
so the run's process talks to it as it would to a running server: the watchdog watches it, and a
worker or Dask process the run starts is given the same URL.

Its output goes to `logs/prefect-server.log` in the home, never to the terminal, so nothing it says
while it is stopped at exit can land under the command's last line. It is stopped at exit after
Prefect's own exit handlers (which flush the run's events to it), and on Linux it is also told to
stop when its parent dies, so a killed run leaves no server behind.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gridiron.watchdog import TEMPORARY_API_VARIABLE as MARKER
from gridiron.watchdog import temporary_api

ADDRESS_IN_USE = 3  # uvicorn's exit status when it cannot bind its port


class ServerStartError(RuntimeError):
    """The temporary server did not answer its health route in time, or exited."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class TemporaryServer:
    """`prefect server`'s API (no UI, no background services: Prefect's ephemeral mode) on a free
    loopback port, for as long as this process lives."""

    def __init__(self, log_path: Path, startup_timeout: float):
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def api_url(self) -> str:
        """The API's URL, as PREFECT_API_URL takes it."""
        return f"http://127.0.0.1:{self.port}/api"

    def _command(self) -> list[str]:
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent  # without importing Prefect
        return [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), "--factory",
                "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on"]

    def _spawn(self) -> subprocess.Popen:
        self.port = _free_port()
        env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", MARKER)}
        env.update(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "wb")  # this run's server only: it never grows
        except OSError:
            log = None  # a home that cannot be written to is said by the command itself
        try:
            return subprocess.Popen(self._command(), env=env, stdin=subprocess.DEVNULL,
                                    stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            if log is not None:
                log.close()  # the child has its own

    def start(self) -> TemporaryServer:
        """Start the server and wait until its health route answers; ServerStartError otherwise."""
        self.process = self._spawn()
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                status = self.process.poll()
                if status == ADDRESS_IN_USE:  # the port was taken between our choice and its bind
                    self.process = self._spawn()
                    continue
                if status is not None:
                    raise ServerStartError(f"the temporary Prefect server exited with status {status} as it "
                                           f"started{self._log_tail()}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise ServerStartError(
            f"the temporary Prefect server did not answer within {self.startup_timeout:.0f} s "
            f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS){self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return f"; its log {self.log_path} ends: {lines[-1][:300]}" if lines else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s, as Prefect's own does)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_temporary_server(home: Path) -> TemporaryServer:
    """Start the temporary server for this process and point PREFECT_API_URL at it."""
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    server = TemporaryServer(Path(home) / "logs" / "prefect-server.log", timeout).start()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ[MARKER] = server.api_url
    if "prefect.context" in sys.modules:  # Prefect read its settings at import: have it read them again
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return server


__all__ = ["ServerStartError", "TemporaryServer", "start_temporary_server", "temporary_api"]
