"""The symptom diary service: `create_app` builds the Flask application."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from api import settings
from api.config import check_production_safety, ensure_jwt_secret, from_environment
from api.extensions import db, migrate, new_limiter
from api.models.base import INTEGER_MAX
from api.observability import configure_logging, install_request_tracking
from api.openapi import OPENAPI_SETTINGS, init_api
from api.sqlite import configure_sqlite, is_sqlite
from api.study import load_study_config

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


class IdConverter(IntegerConverter):
    """`<int:…>` path ids from 1 to INTEGER_MAX: any other is a 404, never a database overflow."""

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = 1,
        max: int | None = INTEGER_MAX,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, overridden by `test_config` when given."""
    instance_path = os.path.join(os.getcwd(), "instance")
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=False)
    _load_config(app, instance_path, test_config)
    _init_database(app, instance_path)
    _init_web(app)
    if app.config["AUTO_MIGRATE"]:
        _migrate(app)
    _seed_sites(app)
    return app


def _load_config(app: Flask, instance_path: str, test_config: dict[str, Any] | None) -> None:
    """Settings from the environment and `test_config`, checked, then the study file."""
    app.config.update(OPENAPI_SETTINGS)
    app.config.update(from_environment(instance_path))
    if test_config:
        app.config.update(test_config)
    _configure_logging(app.config["LOG_FORMAT"])
    ensure_jwt_secret(app.config, instance_path)
    check_production_safety(app.config)
    _trust_proxies(app)

    app.extensions["study"] = load_study_config(app.config.get("STUDY_CONFIG"))
    settings.init_app(app)


def _init_database(app: Flask, instance_path: str) -> None:
    """The engine's options, SQLAlchemy, the chain's listeners and Flask-Migrate."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        os.makedirs(instance_path, exist_ok=True)
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    # Statement parameters (device tokens, e-mail addresses) stay out of the SQL log and
    # out of the database errors that are logged.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("hide_parameters", True)

    app.url_map.converters["int"] = IdConverter
    db.init_app(app)
    if is_sqlite(app):
        with app.app_context():
            configure_sqlite(db.engine)
    from api.chain import install_chain_events

    install_chain_events(db.session)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)


def _init_web(app: Flask) -> None:
    """Rate limits, the API and its resources, errors, the CLI and the console."""
    from api.services import login_throttle

    login_throttle.init_app(app)  # checks RATELIMIT_STORAGE_URI before flask-limiter uses it
    limiter = new_limiter(app)
    api = init_api(app, IdConverter)

    from api.cli import register_cli
    from api.errors import register_error_handlers
    from api.metrics import install_metrics
    from api.resources import register_resources

    install_request_tracking(app)
    install_metrics(app)
    register_resources(app, api, limiter)
    register_error_handlers(app)
    register_cli(app)

    from console import init_console

    init_console(app)


def _trust_proxies(app: Flask) -> None:
    """Behind N reverse proxies, take the client address from X-Forwarded-For.

    Login limits key on `request.remote_addr`; with no proxy configuration every client
    behind a proxy would be one address. Only the N right-most entries are believed, so a
    client cannot spoof its way past the limits with a header of its own.
    """
    count = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if count > 0:
        # Flask documents replacing `wsgi_app` with middleware; its type is the method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count)  # type: ignore[method-assign]


def _configure_logging(log_format: str) -> None:
    configure_logging(log_format)
    logging.getLogger("sqlalchemy.engine.Engine").addFilter(_hide_row_values)


def _hide_row_values(record: logging.LogRecord) -> bool:
    """SQLAlchemy's DEBUG echo prints every fetched row, device tokens included: not here."""
    if isinstance(record.msg, str) and record.msg.startswith("Row "):
        record.args = ("(values hidden)",)
    return True


def _migrate(app: Flask) -> None:
    """Bring the schema to the latest migration (the embedded default does it at start).

    Alembic is called only when the database is behind, so a start (and every CLI
    command) is quiet unless a migration really runs.
    """
    import flask_migrate

    from api.migrations_state import migrations_behind

    with app.app_context():
        with db.engine.connect() as connection:
            behind = migrations_behind(connection)
        if behind:
            flask_migrate.upgrade(directory=MIGRATIONS_DIR)


def _seed_sites(app: Flask) -> None:
    """Create the configured sites missing from a migrated database, at every start.

    With PostgreSQL the schema comes from `flask --app wsgi db upgrade`, so the sites are
    made by the next start of any process. A database not reachable or not migrated yet
    is left alone: the process still starts (and `/readyz` says what is wrong).
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from api.services.sites import ensure_sites

    with app.app_context():
        try:
            if inspect(db.engine).has_table("sites"):
                ensure_sites(app.extensions["study"])
                db.session.commit()
        except DBAPIError as exc:
            db.session.rollback()
            log = logging.getLogger(__name__)
            log.warning("sites not checked at start: %s", type(exc).__name__)
