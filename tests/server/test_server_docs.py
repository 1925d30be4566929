"""The README tells the truth: CI runs its test command, and its table lists every setting."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from loosely.cli import main
from loosely.config import Settings, setting_names

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    test_command = ci[-1].strip()
    assert test_command in code_blocks(README)
    assert "scripts/check" in test_command


def test_readme_starts_with_two_setup_commands() -> None:
    blocks = code_blocks(README)
    assert blocks[0] == "pip install . && loosely serve"
    assert blocks[1].startswith("pip install -e '.[test]' && ")


def test_readme_table_lists_every_setting_and_flag() -> None:
    help_text = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    flags = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}
    for flag in flags:
        assert f"`{flag}`" in README, flag
    for name in setting_names():
        assert f"`{Settings.env_name(name)}`" in README, name


def test_check_script_runs_every_tool() -> None:
    script = (ROOT / "scripts" / "check").read_text()
    for tool in ("ruff check", "ruff format --check", "mypy", "lint-imports", "pytest"):
        assert tool in script
