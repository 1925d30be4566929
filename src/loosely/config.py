"""Settings: every knob of a running server, in one frozen value.

This module is the one place that reads ``os.environ``. Each setting has an environment variable
(``LOOSELY_<NAME>``) and a command-line flag; a flag beats the environment, which beats the
default. `SETTINGS_HELP` describes each setting once, and the CLI and the README's table say the
same thing because they are written from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import field, fields, replace
from pathlib import Path
from typing import Any

from loosely.core.frozen import record

__all__ = ["ENV_PREFIX", "SETTINGS_HELP", "ConfigError", "Settings"]

ENV_PREFIX = "LOOSELY_"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA", "OFF", "PIPELINED")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
SMTP_SECURITY_MODES = ("none", "starttls", "tls")
OUTBOX_PROVIDER = "outbox"

SETTINGS_HELP: Mapping[str, str] = {
    "host": "Interface to listen on.",
    "port": "TCP port to listen on; 0 picks a free port (the chosen one is printed).",
    "data_dir": "Directory for the SQLite database file loosely.db (created if missing).",
    "region": "Region used when a request's credentials do not name one.",
    "account_id": "Account id used when a request's access key is not a 12-digit account id.",
    "public_url": "Base URL put into queue URLs (e.g. https://sqs.example.com); default: the request's Host.",
    "forwarded_allow_ips": "Reverse proxies (comma-separated IPs or networks, or *) whose X-Forwarded-Proto and "
    "X-Forwarded-For are believed; unset: those headers are ignored.",
    "queue_recreate_delay_s": "Seconds before a deleted queue's name can be used again (AWS: 60).",
    "queue_max_in_flight": "Most messages one queue may have in flight (received, not yet deleted); a short-poll "
    "receive past it fails with OverLimit (AWS: about 120,000, raised on request).",
    "database_url": "postgresql://... to share one PostgreSQL database between nodes; default: SQLite in data_dir.",
    "sqlite_synchronous": "SQLite fsync policy: FULL (every acknowledged write is on disk), PIPELINED (the same "
    "guarantee, the WAL synced on a thread while later writes commit) or NORMAL (faster; an OS crash may lose the "
    "last writes).",
    "disk_free_limit_mb": "SQLite: while less disk space than this (MiB) is free, new messages and publications are "
    "refused with ServiceUnavailable and receives and deletes go on, so a full disk can still be drained; 0: off.",
    "log_level": "debug, info, warning or error.",
    "smtp_host": "SMTP relay for SNS email/email-json deliveries; unset: mails are kept in the outbox "
    "(GET /_loosely/outbox) instead of sent.",
    "smtp_port": "Port of the SMTP relay.",
    "smtp_security": "none, starttls or tls (implicit TLS, usually port 465).",
    "smtp_username": "SMTP login user (no login when unset).",
    "smtp_password": "SMTP login password.",
    "smtp_from": "Sender address of SNS mails (the From name is the topic's DisplayName).",
    "sms_provider": "Where SNS SMS go: outbox (kept, readable at GET /_loosely/outbox) or an http(s):// webhook URL.",
    "push_provider": "Where SNS mobile push goes: outbox or an http(s):// webhook URL.",
}

# The environment variable of each setting. Units stay out of variable names, as flags read better that way.
_ENV_NAMES: Mapping[str, str] = {
    "host": "LOOSELY_HOST",
    "port": "LOOSELY_PORT",
    "data_dir": "LOOSELY_DATA_DIR",
    "region": "LOOSELY_REGION",
    "account_id": "LOOSELY_ACCOUNT_ID",
    "public_url": "LOOSELY_PUBLIC_URL",
    "forwarded_allow_ips": "LOOSELY_FORWARDED_ALLOW_IPS",
    "queue_recreate_delay_s": "LOOSELY_QUEUE_RECREATE_DELAY",
    "queue_max_in_flight": "LOOSELY_QUEUE_MAX_IN_FLIGHT",
    "database_url": "LOOSELY_DATABASE_URL",
    "sqlite_synchronous": "LOOSELY_SQLITE_SYNCHRONOUS",
    "disk_free_limit_mb": "LOOSELY_DISK_FREE_LIMIT",
    "log_level": "LOOSELY_LOG_LEVEL",
    "smtp_host": "LOOSELY_SMTP_HOST",
    "smtp_port": "LOOSELY_SMTP_PORT",
    "smtp_security": "LOOSELY_SMTP_SECURITY",
    "smtp_username": "LOOSELY_SMTP_USERNAME",
    "smtp_password": "LOOSELY_SMTP_PASSWORD",
    "smtp_from": "LOOSELY_SMTP_FROM",
    "sms_provider": "LOOSELY_SMS_PROVIDER",
    "push_provider": "LOOSELY_PUSH_PROVIDER",
}


class ConfigError(ValueError):
    """A setting has a value the server cannot run with; the message names the setting."""


@record
class Settings:
    """How one loosely node runs. Build it with `Settings.load` so the environment is honoured."""

    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = field(default_factory=lambda: Path(".loosely"))
    region: str = "us-east-1"
    account_id: str = "000000000000"
    public_url: str | None = None
    forwarded_allow_ips: str | None = None
    queue_recreate_delay_s: float = 0.0
    queue_max_in_flight: int = 120_000
    database_url: str | None = None
    sqlite_synchronous: str = "FULL"
    disk_free_limit_mb: int = 50
    log_level: str = "info"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "no-reply@sns.localhost"
    sms_provider: str = OUTBOX_PROVIDER
    push_provider: str = OUTBOX_PROVIDER

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, then ``LOOSELY_*`` variables, then ``overrides`` (None values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in _ENV_NAMES.items():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[name] = _convert(name, raw, var)
        for name, value in (overrides or {}).items():
            if name not in _ENV_NAMES:
                raise ConfigError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = _convert(name, value, name) if isinstance(value, str) else value
        return cls(**values)

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable that sets ``name``."""
        return _ENV_NAMES[name]

    @property
    def store_url(self) -> str:
        """Where messages live: ``database_url`` if set, else ``sqlite:///<abs data_dir>/loosely.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'loosely.db'}"

    @property
    def uses_sqlite(self) -> bool:
        return self.store_url.startswith("sqlite:")

    def with_port(self, port: int) -> Settings:
        """A copy listening on ``port`` (used once port 0 has been resolved)."""
        return replace(self, port=port)


def _convert(name: str, raw: str, source: str) -> Any:
    """Turn a string from the environment or a flag into the setting's type."""
    try:
        if name in ("port", "smtp_port", "queue_max_in_flight", "disk_free_limit_mb"):
            return int(raw)
        if name == "queue_recreate_delay_s":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{source}: {raw!r} is not a number") from None
    if name == "data_dir":
        return Path(raw).expanduser()
    if name == "sqlite_synchronous":
        return raw.upper()
    if name in ("log_level", "smtp_security"):
        return raw.lower()
    if name == "public_url":
        return raw.rstrip("/")
    return raw


def _check(s: Settings) -> None:
    """Reject values that would only fail later, far from where they were set."""
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"port {s.port} is outside 0..65535")
    if not (len(s.account_id) == 12 and s.account_id.isdigit()):
        raise ConfigError(f"account id {s.account_id!r} must be 12 digits")
    if s.queue_recreate_delay_s < 0:
        raise ConfigError("queue recreate delay must not be negative")
    if s.queue_max_in_flight < 1:
        raise ConfigError("queue max in flight must be at least 1")
    if s.disk_free_limit_mb < 0:
        raise ConfigError("disk free limit must not be negative")
    if s.sqlite_synchronous not in SYNCHRONOUS_MODES:
        raise ConfigError(f"sqlite synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
    if s.log_level not in LOG_LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    if s.public_url is not None and not s.public_url.startswith(("http://", "https://")):
        raise ConfigError(f"public url {s.public_url!r} must start with http:// or https://")
    if s.database_url is not None and not s.database_url.startswith(("postgresql://", "postgres://", "sqlite:")):
        raise ConfigError("database url must start with postgresql:// (or sqlite:)")
    if not s.region:
        raise ConfigError("region must not be empty")
    _check_delivery(s)


def _check_delivery(s: Settings) -> None:
    """The SNS delivery settings: SMTP relay and SMS / push providers."""
    if not 1 <= s.smtp_port <= 65535:
        raise ConfigError(f"smtp port {s.smtp_port} is outside 1..65535")
    if s.smtp_security not in SMTP_SECURITY_MODES:
        raise ConfigError(f"smtp security must be one of {', '.join(SMTP_SECURITY_MODES)}")
    if "@" not in s.smtp_from:
        raise ConfigError(f"smtp from {s.smtp_from!r} must be an email address")
    for name in ("sms_provider", "push_provider"):
        value = getattr(s, name)
        if value != OUTBOX_PROVIDER and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name.replace('_', ' ')} must be {OUTBOX_PROVIDER!r} or an http(s):// URL")


def setting_names() -> tuple[str, ...]:
    """Every setting, in declaration order."""
    return tuple(f.name for f in fields(Settings))
