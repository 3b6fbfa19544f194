"""Pipeline configuration: `config/pipeline_config.yaml` validated into one typed model.

Every key of the original documented config keeps its meaning; the project's own settings live in the
`source` and `storage` sections. Environment variables win over the YAML (see `load_config`). Secrets
(the CFBD key, SMTP and Slack credentials) are never read from the YAML.

Nothing here runs at import time: call `load_config()` at the start of every run so an edited file
takes effect at the next run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH = Path("config/pipeline_config.yaml")
DEFAULT_BASE_URL = "https://api.collegefootballdata.com"
# a secret placed in the YAML is refused, naming the environment variable it belongs in
SECRET_KEYS = {"api_key": "CFBD_API_KEY", "cfbd_api_key": "CFBD_API_KEY", "smtp_password": "GRIDIRON_SMTP_PASSWORD",
               "password": "GRIDIRON_SMTP_PASSWORD"}


class ConfigError(ValueError):
    """A configuration problem, phrased as one line that names the key and the value."""


class _Section(BaseModel):
    # strict: a string where a number belongs is an error, not a silent coercion
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SourceSettings(_Section):
    """Where the data comes from and how politely we ask for it."""

    kind: Literal["auto", "api", "snapshot"] = "auto"  # auto: the API when CFBD_API_KEY is set
    base_url: str = DEFAULT_BASE_URL
    snapshot_dir: str | None = None  # None: the snapshot bundled with the package
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    max_concurrent_requests: Annotated[int, Field(ge=1, le=16)] = 4
    # the least seconds between request starts; a 429 widens the spacing (at least 0.25 s, doubling,
    # at most 5 s) and holds starts back for its Retry-After, and answers narrow it back to this
    min_request_interval: Annotated[float, Field(ge=0)] = 0.0
    # of a partition's retry budget (max_retries + 1 requests), how many the client spends at once,
    # quickly and honouring Retry-After, before the fetch task's backed-off retry takes over
    http_max_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    http_backoff_seconds: Annotated[float, Field(ge=0)] = 1.0
    max_retry_after_seconds: Annotated[float, Field(ge=0)] = 120.0
    refresh_age_days: Annotated[float, Field(ge=0)] = 7.0  # completed seasons: refetch after this
    min_calls_reserve: Annotated[int, Field(ge=0)] = 50  # monthly calls left for other tools
    # a partition whose rows drop by more than this fraction against the loaded ones is refused
    # (an empty or partial answer must not wipe a stored season); 1.0 accepts any drop
    max_shrink_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    # the team box scores (`/games/teams`): one API call per week played (182 for 2014-2023)
    box_scores: bool = True


class ModelConfig(_Section):
    """Game-prediction settings (defaults tuned on the 2016-2018 seasons only)."""

    enabled: bool = True
    elo_k: Annotated[float, Field(gt=0)] = 25.0
    elo_home_advantage: Annotated[float, Field(ge=0)] = 55.0
    elo_regression: Annotated[float, Field(ge=0, le=1)] = 0.33
    rating_half_life_days: Annotated[float, Field(gt=0)] = 150.0
    rating_alpha: Annotated[float, Field(gt=0)] = 0.5
    margin_alpha: Annotated[float, Field(gt=0)] = 10.0
    probability_c: Annotated[float, Field(gt=0)] = 0.1
    # a challenger is promoted unless worse than the champion by more than these on the latest
    # complete season's backtest
    tolerance_brier: Annotated[float, Field(ge=0)] = 0.002
    tolerance_mae: Annotated[float, Field(ge=0)] = 0.15
    tolerance_accuracy: Annotated[float, Field(ge=0)] = 0.01


class HealthSettings(_Section):
    """Resource limits of the health checks (percent used)."""

    max_cpu_percent: Annotated[float, Field(gt=0, le=100)] = 95.0
    max_memory_percent: Annotated[float, Field(gt=0, le=100)] = 90.0
    max_disk_percent: Annotated[float, Field(gt=0, le=100)] = 90.0


class StorageSettings(_Section):
    """Where generated data lives (all of it under `home`)."""

    home: str = "data"
    warehouse: str | None = None  # default: <home>/gridiron.duckdb


class RunnerSettings(_Section):
    """Where the process phase's tasks run: threads of the run's process (the default), or a Dask
    cluster through prefect-dask: a LocalCluster of `workers` processes made for the run when
    `address` is None, else the scheduler at `address` (tcp://host:8786). Collect stays on threads
    either way: its tasks share one HTTP client whose pacer, in-flight bound and circuit breaker
    enforce the API key's limits, and waiting on the network needs no more processes."""

    kind: Literal["thread", "dask"] = "thread"
    address: str | None = None
    workers: Annotated[int, Field(ge=1, le=256)] | None = None  # thread: pool size; dask: LocalCluster processes

    @property
    def thread_workers(self) -> int:
        """The thread pool's size: `workers`, else cores + 2 (collect always takes the default).
        Prefect's own default is unbounded: every partition of a cold run at once, slower and
        larger (BENCHMARKS.md, "Performance (issue 12)")."""
        return self.workers or (os.cpu_count() or 1) + 2

    @field_validator("address")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(tcp|tls|inproc|ws|wss)://\S+", value):
            raise ValueError("must be a Dask scheduler address such as tcp://scheduler:8786")
        return value

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RunnerSettings:
        if self.address and self.kind != "dask":
            raise ValueError(f"address is for kind: dask (kind is {self.kind})")
        return self


class BackupSettings(_Section):
    """Backups encrypted at rest (AES-256-GCM): the key comes from GRIDIRON_BACKUP_KEY (base64 of 32
    bytes), earlier keys from GRIDIRON_BACKUP_OLD_KEYS; never from this file."""

    encryption: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_key_here(cls, values: Any) -> Any:
        if isinstance(values, dict) and any("key" in str(name).lower() for name in values):
            raise ValueError("a backup key never belongs in the config file: set GRIDIRON_BACKUP_KEY "
                             "(and GRIDIRON_BACKUP_OLD_KEYS for earlier keys) in the environment")
        return values


class MetricsSettings(_Section):
    """Prometheus: `gridiron metrics` serves the figures to be scraped; with `pushgateway` set,
    each run also pushes its outcome there at its end (also when it fails)."""

    pushgateway: str | None = None  # e.g. http://pushgateway:9091
    push_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0

    @field_validator("pushgateway")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be the Pushgateway's http:// or https:// URL, e.g. http://pushgateway:9091")
        return value


class PipelineConfig(_Section):
    """The whole pipeline configuration (one run reads it once, at its start)."""

    # data collection
    start_year: Annotated[int, Field(ge=1869, le=2100)] = 2014
    end_year: Annotated[int, Field(ge=1869, le=2100)] = 2023
    conferences: list[str] = Field(default_factory=list)  # scopes marts and reports; [] = all
    # scheduling (UTC)
    schedule_interval: Literal["daily", "weekly", "monthly"] = "daily"
    schedule_time: str = "06:00"
    # performance
    batch_size: Annotated[int, Field(ge=1)] = 100  # records per row group of staged Parquet
    # retries of a partition on recoverable errors: it costs at most max_retries + 1 requests in all
    max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    retry_delay: Annotated[float, Field(ge=0)] = 60.0  # first retry delay (s), doubling, jittered
    # notifications
    enable_notifications: bool = False  # the automations `gridiron deploy` makes are enabled
    notify_on_success: bool = False  # also announce completed pipeline runs
    notification_email: list[str] = Field(default_factory=list)
    slack_webhook: str | None = None
    webhook_url: str | None = None
    escalation_email: list[str] = Field(default_factory=list)
    escalation_webhook: str | None = None
    escalation_failures: Annotated[int, Field(ge=1)] = 3
    escalation_window: Annotated[int, Field(ge=10)] = 3600
    health_alert_interval: Annotated[int, Field(ge=10)] = 3600  # at most one unhealthy alert per this
    # data validation
    min_data_quality_score: Annotated[float, Field(ge=0, le=1)] = 0.8
    max_null_percentage: Annotated[float, Field(ge=0, le=1)] = 0.1
    # backup
    enable_backup: bool = True
    backup_retention_days: Annotated[int, Field(ge=1)] = 30  # 0 would prune all but the newest
    # health
    health_check_interval: Annotated[int, Field(ge=10)] = 300
    max_pipeline_duration: Annotated[int, Field(ge=10)] = 3600
    # the project's own
    source: SourceSettings = Field(default_factory=SourceSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    model: ModelConfig = Field(default_factory=ModelConfig)
    health: HealthSettings = Field(default_factory=HealthSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    # Secrets come from the environment only; excluded from dumps and reprs.
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)

    @field_validator("notification_email", "escalation_email", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("schedule_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError("must be HH:MM (24-hour, UTC)")
        return f"{int(match[1]):02d}:{match[2]}"

    @model_validator(mode="after")
    def _years_in_order(self) -> PipelineConfig:
        if self.start_year > self.end_year:
            raise ValueError(
                f"start_year ({self.start_year}) is after end_year ({self.end_year})"
            )
        return self

    def with_seasons(self, start_year: int | None, end_year: int | None) -> PipelineConfig:
        """This config for a run of some seasons (a backfill chunk): None keeps the file's year."""
        start = self.start_year if start_year is None else start_year
        end = self.end_year if end_year is None else end_year
        for name, year in (("start_year", start), ("end_year", end)):
            if isinstance(year, bool) or not isinstance(year, int) or not 1869 <= year <= 2100:
                raise ConfigError(f"{name}: must be a season between 1869 and 2100 (got {year!r})")
        if start > end:
            raise ConfigError(f"start_year ({start}) is after end_year ({end})")
        return self.model_copy(update={"start_year": start, "end_year": end})

    # ---- derived values -------------------------------------------------------------------
    @property
    def seasons(self) -> list[int]:
        """Every season from start_year to end_year."""
        return list(range(self.start_year, self.end_year + 1))

    @property
    def home(self) -> Path:
        """The storage home (staging, backups, logs, models), resolved."""
        return Path(self.storage.home).expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file: storage.warehouse when set, else gridiron.duckdb in the home."""
        if self.storage.warehouse:
            return Path(self.storage.warehouse).expanduser().resolve()
        return self.home / "gridiron.duckdb"

    @property
    def uses_api(self) -> bool:
        """Whether runs read the CFBD API (source kind api, or auto with a key set) rather than the snapshot."""
        if self.source.kind == "auto":
            return self.api_key is not None
        return self.source.kind == "api"


def _format_error(error: ValidationError, origin: str) -> str:
    """The first validation error as one line: where, which key, what is wrong, what was given."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    kind, message = first["type"], first["msg"]
    if kind == "extra_forbidden":
        return f"{origin}: unknown key '{key}'"
    if kind == "value_error" and not first["loc"]:
        return f"{origin}: {message.removeprefix('Value error, ')}"
    message = message.removeprefix("Value error, ")
    return f"{origin}: {key}: {message} (got {first.get('input')!r})"


def parse_config(raw: Mapping[str, Any] | None, origin: str = "config") -> PipelineConfig:
    """Validate a mapping (as read from YAML) into a `PipelineConfig`; `ConfigError` on any problem."""
    raw = dict(raw or {})
    for key in raw:
        if key.lower() in SECRET_KEYS:
            raise ConfigError(
                f"{origin}: '{key}' is a secret and is never read from the config file; "
                f"set {SECRET_KEYS[key.lower()]} in the environment"
            )
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_error(error, origin)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return data


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read the config file and apply the environment over it.

    The file is `path`, else `$GRIDIRON_CONFIG`, else `config/pipeline_config.yaml` (defaults when
    that default file does not exist). Environment overrides: `CFBD_API_KEY` (secret, env only),
    `CFBD_BASE_URL`, `GRIDIRON_SNAPSHOT_DIR`, `GRIDIRON_HOME`.
    """
    env = os.environ if env is None else env
    explicit = path or env.get("GRIDIRON_CONFIG")
    config_path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    if explicit or config_path.exists():
        raw = _read_yaml(config_path)
        origin = str(config_path)
    else:
        raw, origin = {}, "defaults"

    overrides = {
        "source": {"base_url": env.get("CFBD_BASE_URL"), "snapshot_dir": env.get("GRIDIRON_SNAPSHOT_DIR")},
        "storage": {"home": env.get("GRIDIRON_HOME")},
    }
    for section, values in overrides.items():
        current = raw.get(section) or {}
        if not isinstance(current, dict):
            continue  # validation names the bad section
        raw[section] = {**current, **{key: value for key, value in values.items() if value}}

    config = parse_config(raw, origin)
    api_key = (env.get("CFBD_API_KEY") or "").strip()
    if api_key:
        config = config.model_copy(update={"api_key": SecretStr(api_key)})
    if config.source.kind == "api" and config.api_key is None:
        raise ConfigError(f"{origin}: source.kind is 'api' but CFBD_API_KEY is not set")
    if config.backup.encryption:
        from gridiron.storage.encryption import BackupKeyError, current_key, known_keys

        try:
            current_key(env)
            known_keys(env)
        except BackupKeyError as error:
            raise ConfigError(f"{origin}: backup.encryption: {error}") from None
    return config
