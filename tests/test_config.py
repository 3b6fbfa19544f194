"""Configuration: every documented key, environment overrides, one-line errors naming key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridiron.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]

ORIGINAL_KEYS = {
    "start_year": 2023, "end_year": 2024, "conferences": ["Big Ten", "SEC", "ACC"],
    "schedule_interval": "weekly", "schedule_time": "06:00", "batch_size": 500,
    "max_retries": 5, "retry_delay": 30, "enable_notifications": True,
    "notification_email": "admin@example.com", "slack_webhook": "https://hooks.slack.com/services/x",
    "min_data_quality_score": 0.9, "max_null_percentage": 0.1, "enable_backup": True,
    "backup_retention_days": 30, "health_check_interval": 300, "max_pipeline_duration": 3600,
}


def test_every_key_of_the_original_config_is_accepted_with_its_meaning():
    config = parse_config(ORIGINAL_KEYS)
    assert config.seasons == [2023, 2024]
    assert config.conferences == ["Big Ten", "SEC", "ACC"]
    assert config.notification_email == ["admin@example.com"]  # one address or a list
    assert (config.batch_size, config.max_retries, config.retry_delay) == (500, 5, 30)
    assert config.schedule_interval == "weekly"


def test_the_shipped_config_file_is_valid():
    config = load_config(REPO / "config" / "pipeline_config.yaml", env={})
    assert config.seasons == list(range(2014, 2024))
    assert not config.uses_api


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"start_yeer": 2020}, "unknown key 'start_yeer'"),
        ({"source": {"timeout": 3}}, "unknown key 'source.timeout'"),
        ({"start_year": "2020"}, "start_year: Input should be a valid integer (got '2020')"),
        ({"enable_backup": "yes"}, "enable_backup: Input should be a valid boolean (got 'yes')"),
        ({"start_year": 2024, "end_year": 2020}, "start_year (2024) is after end_year (2020)"),
        ({"schedule_time": "25:00"}, "schedule_time: must be HH:MM (24-hour, UTC) (got '25:00')"),
        ({"schedule_time": "6am"}, "schedule_time: must be HH:MM (24-hour, UTC) (got '6am')"),
        ({"schedule_interval": "hourly"}, "schedule_interval: Input should be 'daily', 'weekly' or 'monthly' (got 'hourly')"),
        ({"min_data_quality_score": 1.5}, "min_data_quality_score: Input should be less than or equal to 1 (got 1.5)"),
        ({"backup_retention_days": 0}, "backup_retention_days: Input should be greater than or equal to 1 (got 0)"),
        ({"api_key": "abc"}, "'api_key' is a secret and is never read from the config file; set CFBD_API_KEY"),
        ({"smtp_password": "abc"}, "'smtp_password' is a secret and is never read from the config file; "
                                   "set GRIDIRON_SMTP_PASSWORD"),
    ],
)
def test_bad_config_gives_one_line_naming_key_and_value(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, origin="pipeline_config.yaml")
    text = str(error.value)
    assert "\n" not in text
    assert text == f"pipeline_config.yaml: {message}" or message in text


def numeric_keys(model, prefix: str = "") -> dict[str, object]:
    """Every int or float key of a config section and its subsections: dotted name -> field."""
    from pydantic import BaseModel

    found = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found.update(numeric_keys(kind, f"{prefix}{name}."))
        elif {int, float} & {kind, *getattr(kind, "__args__", ())} and kind is not bool:
            found[f"{prefix}{name}"] = field
    return found


# the numeric keys for which 0 is meant (no wait, no reserve, refetch every run, accept any score)
ZERO_MEANT = {
    "max_retries", "retry_delay", "min_data_quality_score", "max_null_percentage",
    "source.min_request_interval", "source.http_backoff_seconds", "source.max_retry_after_seconds",
    "source.refresh_age_days", "source.min_calls_reserve", "source.max_shrink_fraction",
    "model.elo_home_advantage", "model.elo_regression", "model.tolerance_brier", "model.tolerance_mae",
    "model.tolerance_accuracy",
}


def test_every_numeric_key_has_bounds_and_refuses_zero_unless_zero_is_meant():
    """A number without a floor lets a typo through (backup_retention_days: 0 pruned every backup
    but the newest): each key states its bounds, and 0 is refused, naming the key, wherever 0
    does not mean what the README says it means."""
    from gridiron.config import PipelineConfig

    keys = numeric_keys(PipelineConfig)
    assert len(keys) > 30
    unbounded = [name for name, field in keys.items()
                 if not any(hasattr(m, "ge") or hasattr(m, "gt") for m in field.metadata)]
    assert unbounded == []
    for name in sorted(set(keys) - ZERO_MEANT):
        section, _, key = name.rpartition(".")
        raw = {section: {key: 0}} if section else {key: 0}
        with pytest.raises(ConfigError, match=rf"{key}: Input should be greater than"):
            parse_config(raw, origin="pipeline_config.yaml")
    for name in ZERO_MEANT:
        section, _, key = name.rpartition(".")
        parse_config({section: {key: 0}} if section else {key: 0})


def test_environment_wins_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"storage": {"home": "elsewhere"}, "source": {"base_url": "http://x"}}))
    env = {
        "GRIDIRON_HOME": str(tmp_path / "home"),
        "CFBD_BASE_URL": "http://127.0.0.1:9",
        "GRIDIRON_SNAPSHOT_DIR": str(tmp_path / "snap"),
        "CFBD_API_KEY": "secret-value",
    }
    config = load_config(path, env=env)
    assert config.home == tmp_path / "home"
    assert config.warehouse_path == tmp_path / "home" / "gridiron.duckdb"
    assert config.source.base_url == "http://127.0.0.1:9"
    assert config.source.snapshot_dir == str(tmp_path / "snap")
    assert config.uses_api
    assert "secret-value" not in repr(config)
    assert "secret-value" not in config.model_dump_json()


def test_gridiron_config_names_another_file(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("start_year: 2019\nend_year: 2019\n")
    assert load_config(env={"GRIDIRON_CONFIG": str(path)}).seasons == [2019]


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", env={})


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("start_year: 2020\nend_year: [2021\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(path, env={})


def test_no_key_means_snapshot_and_kind_api_without_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("source:\n  kind: api\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert not load_config(empty, env={}).uses_api
    assert load_config(empty, env={"CFBD_API_KEY": "k"}).uses_api
    with pytest.raises(ConfigError, match="source.kind is 'api' but CFBD_API_KEY is not set"):
        load_config(path, env={})
