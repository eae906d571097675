"""Flask extensions, created once and bound to the app in the factory."""

from __future__ import annotations

from flask import Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from werkzeug.exceptions import HTTPException

from api.errors import ErrorSchema, handle_http_exception
from api.models.base import Base


class DiaryApi(Api):
    """flask-smorest's Api, answering and documenting errors in the contract's shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        return handle_http_exception(error)

    def _register_pagination_header(self) -> None:
        """Document X-Pagination as what it is on the wire: a JSON text, not an object."""
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata as JSON: total, total_pages, first_page, "
                "last_page, page, previous_page, next_page",
                "schema": {"type": "string"},
            },
            lazy=True,
        )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = DiaryApi()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
