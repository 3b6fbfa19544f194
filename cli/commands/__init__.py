"""The command table: every `gridiron` command's name, help, options and handler, stated once.

The parser, `gridiron help` and the tests all read `COMMANDS`; adding a command is one `Command`
row in the module of its kind (`pipeline`, `warehouse`, `operate`) and its entry here.
"""

from cli.commands.base import Command, CommandError
from cli.commands.operate import HEALTH, METRICS, MONITOR
from cli.commands.pipeline import BACKFILL, DEPLOY, RUN, SCHEDULE
from cli.commands.warehouse import BACKTEST, BACKUP, RESTORE, STATUS

HELP = Command("help", "this text", None)

COMMANDS: dict[str, Command] = {command.name: command for command in (
    RUN, STATUS, DEPLOY, SCHEDULE, BACKFILL, BACKUP, BACKTEST, RESTORE, HEALTH, MONITOR, METRICS, HELP)}

__all__ = ["COMMANDS", "Command", "CommandError"]
