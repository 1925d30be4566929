"""The ``loosely`` command: ``loosely serve`` runs a node; ``loosely --version`` says which.

Options are thin: each maps onto one `Settings` field, and `Settings.load` applies the
``LOOSELY_*`` environment underneath them, so the CLI never reads the environment itself.
The server is imported only when ``serve`` runs, which keeps ``--help`` and ``--version`` instant.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import click

from loosely import __version__
from loosely.config import LOG_LEVELS, SETTINGS_HELP, SMTP_SECURITY_MODES, SYNCHRONOUS_MODES, ConfigError, Settings

__all__ = ["main"]


def _help(name: str) -> str:
    return f"{SETTINGS_HELP[name]} [env: {Settings.env_name(name)}]"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", "-V", prog_name="loosely", message="%(prog)s %(version)s")
def main() -> None:
    """loosely: self-hosted SQS that unmodified AWS SDKs and the AWS CLI talk to."""


@main.command()
@click.option("--host", help=_help("host"))
@click.option("--port", type=click.IntRange(0, 65535), help=_help("port"))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_help("data_dir"))
@click.option("--region", help=_help("region"))
@click.option("--account-id", help=_help("account_id"))
@click.option("--public-url", help=_help("public_url"))
@click.option("--forwarded-allow-ips", metavar="IPS", help=_help("forwarded_allow_ips"))
@click.option(
    "--queue-recreate-delay", "queue_recreate_delay_s", type=click.FloatRange(0), help=_help("queue_recreate_delay_s")
)
@click.option("--queue-max-in-flight", type=click.IntRange(1), help=_help("queue_max_in_flight"))
@click.option("--database", "database_url", metavar="URL", help=_help("database_url"))
@click.option(
    "--sqlite-synchronous", type=click.Choice(SYNCHRONOUS_MODES, case_sensitive=False), help=_help("sqlite_synchronous")
)
@click.option(
    "--disk-free-limit", "disk_free_limit_mb", type=click.IntRange(0), metavar="MIB", help=_help("disk_free_limit_mb")
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), help=_help("log_level"))
@click.option("--smtp-host", help=_help("smtp_host"))
@click.option("--smtp-port", type=click.IntRange(1, 65535), help=_help("smtp_port"))
@click.option(
    "--smtp-security", type=click.Choice(SMTP_SECURITY_MODES, case_sensitive=False), help=_help("smtp_security")
)
@click.option("--smtp-username", help=_help("smtp_username"))
@click.option("--smtp-password", help=_help("smtp_password"))
@click.option("--smtp-from", help=_help("smtp_from"))
@click.option("--sms-provider", metavar="outbox|URL", help=_help("sms_provider"))
@click.option("--push-provider", metavar="outbox|URL", help=_help("push_provider"))
def serve(**options: Any) -> None:
    """Run the server until SIGTERM or Ctrl-C (default: SQLite in ./.loosely, port 4566)."""
    try:
        settings = Settings.load(options)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    gc.disable()  # for the server's imports too; on again once the server is up (`loosely.server.run.serve`)
    try:
        from loosely.server.run import serve as run_server

        status = run_server(settings)
    finally:
        gc.enable()
    raise SystemExit(status)
