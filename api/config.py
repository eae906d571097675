"""Configuration read from the environment, with safe defaults for development."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0000000000"
MIN_JWT_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


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


def normalise_database_url(url: str) -> str:
    """Let operators write ``postgresql://`` and still get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


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


def from_environment(instance_path: str) -> dict[str, Any]:
    """Build the configuration mapping from environment variables."""
    env = os.environ.get("APP_ENV", os.environ.get("FLASK_ENV", "development"))
    default_db = "sqlite:///" + str(Path(instance_path) / "diary.sqlite3")
    database_url = normalise_database_url(os.environ.get("DATABASE_URL") or default_db)
    fcm_credentials = os.environ.get("FCM_CREDENTIALS") or os.environ.get(
        "GOOGLE_APPLICATION_CREDENTIALS"
    )
    return {
        "APP_ENV": env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "AUTO_MIGRATE": _bool(
            os.environ.get("AUTO_MIGRATE"), default=database_url.startswith("sqlite")
        ),
        "JWT_SECRET": os.environ.get("JWT_SECRET", DEV_JWT_SECRET),
        "JWT_KEY_ID": os.environ.get("JWT_KEY_ID", "k1"),
        "JWT_PREVIOUS_KEYS": _previous_keys(os.environ.get("JWT_PREVIOUS_KEYS")),
        "JWT_ISSUER": os.environ.get("JWT_ISSUER", "symptom-diary"),
        "JWT_AUDIENCE": os.environ.get("JWT_AUDIENCE", "symptom-diary-api"),
        "ACCESS_TOKEN_TTL": timedelta(seconds=_int("ACCESS_TOKEN_TTL_SECONDS", 15 * 60)),
        "REFRESH_TOKEN_TTL": timedelta(seconds=_int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400)),
        "ACTIVATION_CODE_TTL": timedelta(days=_int("ACTIVATION_CODE_TTL_DAYS", 14)),
        "STUDY_CONFIG": os.environ.get("STUDY_CONFIG"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per 15 minutes"),
        "LOGIN_CLIENT_RATE_LIMIT": os.environ.get("LOGIN_CLIENT_RATE_LIMIT", "30 per 15 minutes"),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 256 * 1024),
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
        # The coordinators' console (console/): idle timeout and absolute session lifetime.
        "CONSOLE_IDLE_MINUTES": _int("CONSOLE_IDLE_MINUTES", 30),
        "CONSOLE_ABSOLUTE_HOURS": _int("CONSOLE_ABSOLUTE_HOURS", 12),
    }


def check_production_safety(config: dict[str, Any]) -> None:
    """Refuse to start outside development with a default or short JWT secret."""
    if config.get("APP_ENV") in {"development", "test"}:
        return
    secret = config.get("JWT_SECRET") or ""
    if secret == DEV_JWT_SECRET or len(secret) < MIN_JWT_SECRET_LENGTH:
        raise ConfigError(
            "JWT_SECRET is missing, the development default, or shorter than "
            f"{MIN_JWT_SECRET_LENGTH} characters. Set JWT_SECRET to a long random value, "
            "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
