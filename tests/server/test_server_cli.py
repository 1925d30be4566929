"""The click command line, in process."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from loosely import __version__
from loosely.cli import main
from loosely.config import Settings, setting_names


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"loosely {__version__}"


def test_serve_help_names_every_setting_and_its_environment_variable() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in setting_names():
        assert Settings.env_name(name) in result.output


def test_serve_passes_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    def fake_serve(settings: Settings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr("loosely.server.run.serve", fake_serve)
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "0", "--database", "postgresql://db/x", "--sqlite-synchronous", "normal"],
        env={"LOOSELY_PORT": "7777", "LOOSELY_REGION": "eu-west-3"},
    )
    assert result.exit_code == 0, result.output
    [settings] = seen
    assert settings.port == 0
    assert settings.region == "eu-west-3"
    assert settings.database_url == "postgresql://db/x"
    assert settings.sqlite_synchronous == "NORMAL"


def test_serve_bad_environment_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"LOOSELY_ACCOUNT_ID": "abc"})
    assert result.exit_code == 2
    assert "12 digits" in result.output
