"""Settings: defaults, the LOOSELY_* environment, overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from loosely.config import SETTINGS_HELP, ConfigError, Settings, setting_names


def test_defaults_match_the_documented_ones() -> None:
    s = Settings.load(environ={})
    assert (s.host, s.port, s.region, s.account_id) == ("127.0.0.1", 4566, "us-east-1", "000000000000")
    assert s.data_dir == Path(".loosely")
    assert s.public_url is None and s.database_url is None
    assert s.queue_recreate_delay_s == 0
    assert s.sqlite_synchronous == "FULL"


def test_environment_sets_every_field() -> None:
    env = {
        "LOOSELY_HOST": "0.0.0.0",
        "LOOSELY_PORT": "0",
        "LOOSELY_DATA_DIR": "/var/lib/loosely",
        "LOOSELY_REGION": "eu-central-1",
        "LOOSELY_ACCOUNT_ID": "123456789012",
        "LOOSELY_PUBLIC_URL": "https://sqs.example.com/",
        "LOOSELY_QUEUE_RECREATE_DELAY": "60",
        "LOOSELY_DATABASE_URL": "postgresql://u@db/loosely",
        "LOOSELY_SQLITE_SYNCHRONOUS": "normal",
        "LOOSELY_LOG_LEVEL": "DEBUG",
    }
    s = Settings.load(environ=env)
    assert s.host == "0.0.0.0" and s.port == 0
    assert s.data_dir == Path("/var/lib/loosely")
    assert (s.region, s.account_id) == ("eu-central-1", "123456789012")
    assert s.public_url == "https://sqs.example.com"
    assert s.queue_recreate_delay_s == 60.0
    assert s.store_url == "postgresql://u@db/loosely"
    assert not s.uses_sqlite
    assert (s.sqlite_synchronous, s.log_level) == ("NORMAL", "debug")


def test_overrides_beat_environment_and_none_is_ignored() -> None:
    s = Settings.load({"port": 9000, "region": None}, environ={"LOOSELY_PORT": "1", "LOOSELY_REGION": "ap-south-1"})
    assert s.port == 9000
    assert s.region == "ap-south-1"


def test_empty_environment_value_means_default() -> None:
    assert Settings.load(environ={"LOOSELY_PUBLIC_URL": ""}).public_url is None


def test_sqlite_url_is_absolute_path_in_data_dir(tmp_path: Path) -> None:
    s = Settings.load({"data_dir": tmp_path / "d"}, environ={})
    assert s.store_url == f"sqlite:///{tmp_path / 'd' / 'loosely.db'}"
    assert s.uses_sqlite


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"LOOSELY_PORT": "http"}, "LOOSELY_PORT"),
        ({"LOOSELY_PORT": "70000"}, "port"),
        ({"LOOSELY_ACCOUNT_ID": "12"}, "12 digits"),
        ({"LOOSELY_SQLITE_SYNCHRONOUS": "sometimes"}, "synchronous"),
        ({"LOOSELY_PUBLIC_URL": "sqs.example.com"}, "public url"),
        ({"LOOSELY_DATABASE_URL": "mysql://x"}, "database url"),
        ({"LOOSELY_QUEUE_RECREATE_DELAY": "-1"}, "negative"),
        ({"LOOSELY_LOG_LEVEL": "loud"}, "log level"),
    ],
)
def test_bad_values_are_rejected_with_the_setting_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.load(environ=env)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load({"colour": "blue"}, environ={})


def test_every_setting_has_help_and_an_environment_variable() -> None:
    for name in setting_names():
        assert SETTINGS_HELP[name]
        assert Settings.env_name(name).startswith("LOOSELY_")
