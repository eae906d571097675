"""The configuration services read, as one typed object per app (made in `create_app`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app

from api.study import StudyConfig

EXTENSION = "diary_settings"


@dataclass(frozen=True)
class Settings:
    """Token lifetimes and sign-in limits, read once from the app's config."""

    refresh_token_ttl: timedelta
    refresh_family_max_age: timedelta
    refresh_reuse_grace: timedelta
    activation_code_ttl: timedelta
    login_rate_limit: str
    login_client_rate_limit: str
    login_account_backoff_after: int
    login_account_max_delay_seconds: int
    audit_chain: bool  # off only in a benchmark's baseline

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            refresh_token_ttl=config["REFRESH_TOKEN_TTL"],
            refresh_family_max_age=config["REFRESH_FAMILY_MAX_AGE"],
            refresh_reuse_grace=config["REFRESH_REUSE_GRACE"],
            activation_code_ttl=config["ACTIVATION_CODE_TTL"],
            login_rate_limit=str(config["LOGIN_RATE_LIMIT"]),
            login_client_rate_limit=str(config["LOGIN_CLIENT_RATE_LIMIT"]),
            login_account_backoff_after=int(config["LOGIN_ACCOUNT_BACKOFF_AFTER"]),
            login_account_max_delay_seconds=int(config["LOGIN_ACCOUNT_MAX_DELAY_SECONDS"]),
            audit_chain=bool(config.get("AUDIT_CHAIN", True)),
        )


def init_app(app: Flask) -> Settings:
    settings = Settings.from_config(app.config)
    app.extensions[EXTENSION] = settings
    return settings


def settings() -> Settings:
    """The current app's settings: the one place services look configuration up."""
    found: Settings = current_app.extensions[EXTENSION]
    return found


def study() -> StudyConfig:
    """The current app's study configuration (read live: tests swap it for a variant)."""
    config: StudyConfig = current_app.extensions["study"]
    return config
