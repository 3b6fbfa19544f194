"""The run log file: `GRIDIRON_HOME/logs/pipeline_YYYYMMDD.log`, one per UTC day, so `tail -f` and
`grep ERROR logs/pipeline_*.log` work. Secrets never reach it: every record passes a redaction
filter (the known secret values, and any `Bearer` token)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gridiron.config import PipelineConfig

LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "gridiron")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(run)s%(message)s"


class RunFormatter(logging.Formatter):
    """The format above, naming the task run (or flow run) a Prefect record comes from, so that a
    line such as "Finished in state Completed()" says what finished."""

    def format(self, record: logging.LogRecord) -> str:
        """The record with the flow or task run's name in front."""
        name = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None)
        record.run = f"[{name}] " if name else ""
        return super().format(record)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")


class RedactSecrets(logging.Filter):
    """A logging filter that replaces every secret value, and any Bearer token, by ***."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with every secret and Bearer token replaced by ***."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _BEARER.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message in place (always keeps the record)."""
        record.msg = self.redact(record.getMessage())
        record.args = ()
        return True


class QuietFileHandler(logging.FileHandler):
    """A file handler that, when the file cannot be written (a full disk), stays quiet: the first
    error is kept in `failure` and no traceback reaches the terminal; the run's own failure, or
    its end, is what is said."""

    failure: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        """Keep the first write error; print nothing."""
        if self.failure is None:
            self.failure = sys.exc_info()[1]


def log_path(home: str | Path, when: datetime | None = None) -> Path:
    """The day's log file under the home (one file per UTC day)."""
    when = when or datetime.now(UTC)
    return Path(home) / "logs" / f"pipeline_{when:%Y%m%d}.log"


class _Count(logging.Filter):
    """Counts the warnings and errors that reach the file (the dashboard shows them per run)."""

    def __init__(self):
        super().__init__()
        self.warnings = self.errors = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Count the record's level; every record passes."""
        if record.levelno >= logging.ERROR:
            self.errors += 1
        elif record.levelno >= logging.WARNING:
            self.warnings += 1
        return True


@dataclass
class RunLog:
    """A run's log file and the warnings and errors written to it."""

    path: Path
    counts: _Count

    @property
    def warnings(self) -> int:
        """Warnings logged so far."""
        return self.counts.warnings

    @property
    def errors(self) -> int:
        """Errors logged so far."""
        return self.counts.errors


@contextmanager
def run_log(home: str | Path, secrets: Iterable[str] = ()) -> Iterator[RunLog]:
    """Copy the run's flow, task and gridiron log records into the day's log file, counting the
    warnings and errors among them."""
    path = log_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = QuietFileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(RunFormatter(FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    counts = _Count()
    handler.addFilter(counts)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the file wants the run's INFO lines; restored below
    try:
        yield RunLog(path, counts)
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()


def secrets_from(config: PipelineConfig, environ: Mapping[str, str]) -> list[str]:
    """The secret values a log must never show: the CFBD key, the SMTP password and every
    notification URL (a Slack or webhook URL is a credential), from the config or the environment."""
    names = ("GRIDIRON_SMTP_PASSWORD", "GRIDIRON_SLACK_WEBHOOK", "GRIDIRON_WEBHOOK_URL", "CFBD_API_KEY")
    values = [config.api_key.get_secret_value() if config.api_key else None,
              config.slack_webhook, config.webhook_url, config.escalation_webhook,
              *(environ.get(n) for n in names)]
    return [value for value in values if value]
