"""`gridiron` command line (also `python -m gridiron`).

The parser and the help are made from the command table (`cli.commands.COMMANDS`). Every command
exits 0 on success and non-zero with one clear line on stderr on failure. Flows are imported inside
a command, after the environment Prefect reads at import is set; the warehouse's queries are asked
of `gridiron.storage`.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from cli.commands import COMMANDS
from cli.commands.base import SignalStop
from cli.temporary_server import temporary_api
from gridiron import __version__
from gridiron.config import ConfigError, load_config
from gridiron.errors import error_chain

ENVIRONMENT_HELP = """\
environment:
  CFBD_API_KEY           with it the source is the live CFBD API; without it, the bundled snapshot
  CFBD_BASE_URL          the API's base URL (default https://api.collegefootballdata.com)
  GRIDIRON_SNAPSHOT_DIR  read the snapshot from this directory instead of the bundled one
  GRIDIRON_CONFIG        another config file (default config/pipeline_config.yaml)
  GRIDIRON_HOME          the data directory (default ./data): gridiron.duckdb, staging, cache
  GRIDIRON_SMTP_HOST, _PORT, _USERNAME, _PASSWORD, _SECURITY (ssl|starttls|none), _FROM
                         the SMTP server `deploy` gives the email notifications
  GRIDIRON_SLACK_WEBHOOK, GRIDIRON_WEBHOOK_URL
                         win over slack_webhook / webhook_url in the config
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridiron",
        description="College football data pipeline: CFBD -> polars -> DuckDB, on Prefect 3.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gridiron {__version__}")
    parser.add_argument("--config", help="config file (default: $GRIDIRON_CONFIG or config/pipeline_config.yaml)")
    commands = parser.add_subparsers(dest="command", metavar="command")
    sub = {name: command.add_to(commands) for name, command in COMMANDS.items()}
    parser.epilog = _commands_help(sub) + "\n" + ENVIRONMENT_HELP
    return parser


def _commands_help(sub: dict[str, argparse.ArgumentParser]) -> str:
    """`commands:` and one wrapped entry per command, its usage from its own parser."""
    import textwrap

    lines = ["commands:"]
    for name, parser in sub.items():
        usage = " ".join([name] + [
            (f"{a.option_strings[0]} {a.metavar or a.dest.upper()}" if a.required else f"[{a.option_strings[0]}]")
            if a.nargs != 0 else f"[{a.option_strings[0]}]"
            for a in parser._actions if a.option_strings and a.dest != "help"
        ])
        wrapped = textwrap.wrap(COMMANDS[name].help, 70)
        lines.append(f"  {usage:<22} {wrapped[0]}" if len(usage) <= 22 else f"  {usage}\n{'':<25}{wrapped[0]}")
        lines += [f"{'':<25}{rest}" for rest in wrapped[1:]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, last_line: Callable[[str], None] | None = None) -> int:
    """Parse the arguments, load the config and run the command; the exit status says how it ended.
    A failure's one line goes to `last_line` (default: stderr, now)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if COMMANDS.get(args.command, COMMANDS["help"]).handler is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):  # one line per request to Prefect's own API otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = None
    try:
        config = load_config(args.config)
        return COMMANDS[args.command].handler(config, args)
    except ConfigError as error:
        print(f"gridiron: config error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SignalStop) as stop:
        signum = stop.signum if isinstance(stop, SignalStop) else signal.SIGINT
        note = _stop_note(stop)
        plain = (f"{args.command} stopped by {signal.Signals(signum).name}" if isinstance(stop, SignalStop)
                 else "interrupted")
        (last_line or _say_now)(f"gridiron: {args.command} {note}" if note else f"gridiron: {plain}")
        return 128 + signum
    except Exception as error:  # one line for people; the flow logs hold the traceback
        (last_line or _say_now)(f"gridiron: {args.command} failed: {_one_line(error, config)}")
        return 1


def _stop_note(stop: BaseException) -> str | None:
    """What the pipeline said of a run a signal stopped (a note on the error it raised), if it did."""
    return next((note for error in error_chain(stop) for note in getattr(error, "__notes__", ())
                 if note.startswith("stopped by ")), None)


def _say_now(text: str) -> None:
    print(text, file=sys.stderr)


class SaidAtExit:
    """Lines kept until the process exits, then said on stderr, after every other exit handler:
    this one is registered first, before Prefect (imported later) registers its own, so it runs last."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        atexit.register(self.say)

    def __call__(self, text: str) -> None:
        self.lines.append(text)

    def say(self) -> None:
        """Print the kept lines."""
        for text in self.lines:
            print(text, file=sys.stderr, flush=True)


def entry() -> int:
    """The program's entry point: `main`, after which the command has said its last line, so
    Prefect's at-exit INFO line ("Stopping temporary server ...") is kept off the terminal.

    A failure's line is said at exit, after Prefect's own exit handlers: the temporary server
    shares our stderr, and stopped then on a busy machine its shutdown can print a traceback that
    would otherwise land under the line."""
    code = main(last_line=SaidAtExit())
    logging.getLogger("prefect").setLevel(logging.WARNING)
    return code


def _refused(api: str, response) -> str:
    """A request the Prefect API answered with an error status, in one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    detail = " ".join(str(detail).split())[:300]
    line = f"the Prefect API at {api} refused a request (HTTP {response.status_code}: {detail})"
    if "parameters must be less than" in detail:
        line += "; raise PREFECT_SERVER_API_MAX_PARAMETER_SIZE on the server"
    return line


def _one_line(error: BaseException, config=None) -> str:
    """The error's first line; one that came from the Prefect API not answering says so, and one
    that came from a damaged warehouse file names it and the way back."""
    if config is not None:
        from gridiron.storage import damage_of, damaged_warehouse, no_space

        if damage_of(error) is not None:
            return damaged_warehouse(config.warehouse_path, config.home / "backups", error)
        full = no_space(error, config.warehouse_path)
        if full:
            return full
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    for cause in error_chain(error):
        request = getattr(cause, "_request", None)  # httpx keeps the failed request there
        if api and request is not None and str(request.url).startswith(api):
            response = getattr(cause, "response", None)
            if response is not None:  # it answered, and refused
                return _refused(api, response)
            if temporary_api():
                return (f"the temporary Prefect server at {api} stopped answering ({message}); its log is "
                        f"{config.home / 'logs' / 'prefect-server.log' if config else 'logs/prefect-server.log'}")
            return (f"the Prefect API at {api} does not answer ({message}): the run could not record its "
                    "state there; start the Prefect server, then run again")
    return message


if __name__ == "__main__":
    sys.exit(entry())
