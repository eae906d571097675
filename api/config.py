"""Configuration read from the environment, with safe defaults for development."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from api.config_checks import (
    JWT_SECRET_FILE,
    MIN_JWT_SECRET_LENGTH,
    PUBLISHED_JWT_SECRETS,
    ConfigError,
    check_production_safety,
    ensure_jwt_secret,
    load_or_create_secret,
)

__all__ = [
    "DEFAULT_METRICS_ALLOW",
    "JWT_SECRET_FILE",
    "MIN_JWT_SECRET_LENGTH",
    "PUBLISHED_JWT_SECRETS",
    "ConfigError",
    "check_production_safety",
    "ensure_jwt_secret",
    "from_environment",
    "load_or_create_secret",
    "normalise_database_url",
    "parse_networks",
]

DEFAULT_METRICS_ALLOW = "127.0.0.0/8,::1/128"  # loopback only


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _roles(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of staff roles; unknown names refuse to start."""
    if raw is None or not raw.strip():
        return default
    roles = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = set(roles) - {"coordinator", "monitor", "admin"}
    if unknown:
        raise ConfigError(f"OUTCOME_REPORT_ROLES names unknown roles: {sorted(unknown)}")
    return roles


def normalise_database_url(url: str) -> str:
    """Let operators write ``postgresql://`` and still get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _database_url(raw: str | None) -> str | None:
    return normalise_database_url(raw) if raw else None


def _previous_keys(raw: str | None) -> dict[str, str]:
    """Parse ``kid:secret,kid:secret`` — keys still accepted while tokens they signed live."""
    keys: dict[str, str] = {}
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, secret = part.partition(":")
        if not sep or not kid or not secret:
            raise ConfigError("JWT_PREVIOUS_KEYS must look like 'kid:secret,kid:secret'")
        keys[kid] = secret
    return keys


def _log_format(raw: str | None) -> str:
    value = (raw or "json").strip().lower()
    if value not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, got {raw!r}")
    return value


def _networks(name: str, default: str) -> list[Any]:
    """Comma-separated addresses or networks, e.g. ``127.0.0.1,10.0.0.0/8``."""
    raw = os.environ.get(name)
    try:
        return parse_networks(default if raw is None else raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must list addresses or networks: {exc}") from exc


def parse_networks(raw: str) -> list[Any]:
    parts = (part.strip() for part in raw.split(","))
    return [ipaddress.ip_network(part, strict=False) for part in parts if part]


def from_environment(instance_path: str) -> dict[str, Any]:
    """Build the configuration mapping from environment variables."""
    return {
        **_database_settings(instance_path),
        **_token_settings(),
        **_request_settings(),
        **_push_settings(),
        **_operations_settings(),
    }


def _database_settings(instance_path: str) -> dict[str, Any]:
    """The environment name and the databases the service and its migrations use."""
    # `development` stays the default so a fresh clone runs with `flask --app wsgi run`: it
    # no longer means a known secret, only that a missing JWT_SECRET is generated and kept
    # under instance/ (see ensure_jwt_secret). `production` refuses to start without one.
    env = os.environ.get("APP_ENV", os.environ.get("FLASK_ENV", "development"))
    default_db = "sqlite:///" + str(Path(instance_path) / "diary.sqlite3")
    database_url = normalise_database_url(os.environ.get("DATABASE_URL") or default_db)
    return {
        "APP_ENV": env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # The schema owner, for `db upgrade` and `db grant-app-role` (production runs the
        # service as an application role that owns nothing).
        "MIGRATION_DATABASE_URL": _database_url(os.environ.get("MIGRATION_DATABASE_URL")),
        "AUTO_MIGRATE": _bool(
            os.environ.get("AUTO_MIGRATE"), default=database_url.startswith("sqlite")
        ),
    }


def _token_settings() -> dict[str, Any]:
    """Signing keys and the lifetimes of tokens, sessions and activation codes."""
    return {
        "JWT_SECRET": os.environ.get("JWT_SECRET") or None,
        "JWT_KEY_ID": os.environ.get("JWT_KEY_ID", "k1"),
        "JWT_PREVIOUS_KEYS": _previous_keys(os.environ.get("JWT_PREVIOUS_KEYS")),
        "JWT_ISSUER": os.environ.get("JWT_ISSUER", "symptom-diary"),
        "JWT_AUDIENCE": os.environ.get("JWT_AUDIENCE", "symptom-diary-api"),
        "ACCESS_TOKEN_TTL": timedelta(seconds=_int("ACCESS_TOKEN_TTL_SECONDS", 15 * 60)),
        "REFRESH_TOKEN_TTL": timedelta(seconds=_int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400)),
        "REFRESH_REUSE_GRACE": timedelta(seconds=_int("REFRESH_REUSE_GRACE_SECONDS", 60)),
        "REFRESH_FAMILY_MAX_AGE": timedelta(days=_int("REFRESH_FAMILY_MAX_DAYS", 180)),
        "ACTIVATION_CODE_TTL": timedelta(days=_int("ACTIVATION_CODE_TTL_DAYS", 14)),
    }


def _request_settings() -> dict[str, Any]:
    """The study file, rate limits, sign-in back-off and what a request may be."""
    return {
        "STUDY_CONFIG": os.environ.get("STUDY_CONFIG"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per 15 minutes"),
        "LOGIN_CLIENT_RATE_LIMIT": os.environ.get("LOGIN_CLIENT_RATE_LIMIT", "30 per 15 minutes"),
        "LOGIN_ACCOUNT_BACKOFF_AFTER": _int("LOGIN_ACCOUNT_BACKOFF_AFTER", 10),
        "LOGIN_ACCOUNT_MAX_DELAY_SECONDS": _int("LOGIN_ACCOUNT_MAX_DELAY_SECONDS", 300),
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 256 * 1024),
    }


def _push_settings() -> dict[str, Any]:
    """FCM's address and credentials, and the pace of the reminder worker."""
    fcm_credentials = os.environ.get("FCM_CREDENTIALS") or os.environ.get(
        "GOOGLE_APPLICATION_CREDENTIALS"
    )
    return {
        "FCM_CREDENTIALS": fcm_credentials,
        "FCM_ENDPOINT": os.environ.get("FCM_ENDPOINT"),
        "FCM_PROJECT_ID": os.environ.get("FCM_PROJECT_ID"),
        # Push reminders (notifications/): see the README's "Reminders" section.
        "FCM_BATCH_SIZE": max(1, min(500, _int("FCM_BATCH_SIZE", 500))),
        "FCM_TIMEOUT_SECONDS": _int("FCM_TIMEOUT_SECONDS", 10),
        "WORKER_INTERVAL_SECONDS": _int("WORKER_INTERVAL_SECONDS", 30),
        "REMINDER_LEASE_SECONDS": _int("REMINDER_LEASE_SECONDS", 300),
        "REMINDER_PLAN_AHEAD_HOURS": _int("REMINDER_PLAN_AHEAD_HOURS", 24),
        "REMINDER_PLAN_INTERVAL_SECONDS": _int("REMINDER_PLAN_INTERVAL_SECONDS", 60),
        "REMINDER_PLAN_CHUNK": _int("REMINDER_PLAN_CHUNK", 2000),
        "REMINDER_RETRY_BASE_SECONDS": _int("REMINDER_RETRY_BASE_SECONDS", 30),
        "REMINDER_RETRY_MAX_SECONDS": _int("REMINDER_RETRY_MAX_SECONDS", 3600),
    }


def _operations_settings() -> dict[str, Any]:
    """The console's session limits, logging, metrics and who reads the outcome report."""
    return {
        # The coordinators' console (console/): idle timeout and absolute session lifetime.
        "CONSOLE_IDLE_MINUTES": _int("CONSOLE_IDLE_MINUTES", 30),
        "CONSOLE_ABSOLUTE_HOURS": _int("CONSOLE_ABSOLUTE_HOURS", 12),
        # Operations: the README's "Production" section.
        "LOG_FORMAT": _log_format(os.environ.get("LOG_FORMAT")),
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        "METRICS_ALLOW": _networks("METRICS_ALLOW", DEFAULT_METRICS_ALLOW),
        # Who may read the symptom outcome report (comparing arms is the sponsor's view).
        "OUTCOME_REPORT_ROLES": _roles(
            os.environ.get("OUTCOME_REPORT_ROLES"), ("monitor", "admin")
        ),
    }
