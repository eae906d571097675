"""The process-wide Flask extensions (database, migrations) and the per-app limiter's maker.

`db` and `migrate` keep their state on each app, so one instance serves every app. The
flask-limiter `Limiter` keeps its storage on itself: each app gets its own from
`new_limiter`, found again with `limiter_for`.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, Result

from api.models.base import Base

LIMITER = "diary_limiter"

db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def new_limiter(app: Flask) -> Limiter:
    """A flask-limiter bound to `app` alone (its storage is `RATELIMIT_STORAGE_URI`)."""
    limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
    limiter.init_app(app)
    # Its limits are all decorators on single views (no default, application or
    # blueprint limits), and a decorated view checks its own limit when called. The
    # check flask-limiter also runs before every request finds nothing to count, at a
    # cost every request pays (a twentieth of a diary submit's CPU), so it is dropped.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    app.extensions[LIMITER] = limiter
    return limiter


def limiter_for(app: Flask | None = None) -> Limiter:
    """The limiter of `app` (the current app when not given)."""
    target = app if app is not None else current_app
    limiter: Limiter = target.extensions[LIMITER]
    return limiter


def dml_result(result: Result[Any]) -> CursorResult[Any]:
    """An UPDATE, INSERT or DELETE's result as what it is, for its `rowcount`:
    `Session.execute` is typed as returning the base `Result` whatever the statement."""
    return cast(CursorResult[Any], result)
