"""What every command is made of: its row of the command table, and the few things commands share
(the one-line failure, the Prefect settings that must be set before the flows are imported)."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cli.temporary_server import temporary_api
from gridiron.config import PipelineConfig

Handler = Callable[[PipelineConfig, argparse.Namespace], int]


class CommandError(RuntimeError):
    """A failure to report as one line."""


class SignalStop(BaseException):
    """The command was stopped by a signal (SIGTERM) while it ran a flow."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stops_on_sigterm() -> Iterator[None]:
    """For the block, SIGTERM raises `SignalStop` instead of ending the process at once, so the
    command can say its last line. Prefect's flow engine puts its own handler in place while a flow
    runs and, when it has finished with the signal, sends it again: to this handler."""
    def stop(signum, _frame):
        raise SignalStop(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True)
class Argument:
    """One option of a command, as `argparse.ArgumentParser.add_argument` takes it."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Argument:
    """An option: `arg("--port", type=int, default=8505, help=...)`."""
    return Argument(flags, options)


@dataclass(frozen=True)
class Command:
    """A row of the command table: the name, the help (the subcommand's description and its entry
    in `gridiron help`), the options and the handler, which returns the exit status."""

    name: str
    help: str
    handler: Handler | None
    arguments: tuple[Argument, ...] = ()

    def add_to(self, commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add the command's parser, with its options, to a parser's subcommands."""
        parser = commands.add_parser(self.name, description=self.help)
        for argument in self.arguments:
            parser.add_argument(*argument.flags, **argument.options)
        return parser


def prefect_environment(config: PipelineConfig) -> str | None:
    """Settings Prefect reads when it is imported: set before the flows are imported. Without
    PREFECT_API_URL it starts the temporary Prefect server as a child process and points
    PREFECT_API_URL at it (`cli.temporary_server`); it returns that server's URL, or None."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gridiron")
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(config.home / "results"))
    # Prefect's 20 s for a temporary server to start is too short for a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if configured_api_url():
        return temporary_api()
    from cli.temporary_server import ServerStartError, start_temporary_server

    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")  # its log file, not our terminal
    try:
        return start_temporary_server(config.home).api_url
    except ServerStartError as error:
        raise CommandError(str(error)) from error


def configured_api_url() -> str | None:
    """The Prefect API URL Prefect itself would use: PREFECT_API_URL from the environment, the
    active Prefect profile or a settings context (a Python caller's, a test harness's), else None."""
    from prefect.settings import PREFECT_API_URL  # Prefect's settings only (not its server)

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()


def prefect_api(temporary: str | None) -> str:
    """The Prefect API a command will use, in words (`temporary`: what `prefect_environment` gave)."""
    if temporary:
        return "a temporary local Prefect server (set PREFECT_API_URL to use a running one)"
    return f"the Prefect API at {configured_api_url()}"


def needs_prefect_server(what: str) -> None:
    """Refuse, in one line, a command that cannot work on a temporary Prefect server."""
    if not os.environ.get("PREFECT_API_URL"):
        raise CommandError(what)
