"""The app's flask-smorest `Api`: made per app, answering and documenting the error shape."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from api.errors import ErrorSchema, handle_http_exception

OPENAPI_SETTINGS: dict[str, Any] = {
    "API_TITLE": "Symptom diary",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "The participant backend of the UC-MSC liver-cirrhosis trial: the "
            "phone's symptom diary, the sites' review and push reminders. Bearer JWTs "
            "(access 15 minutes, refreshed at /auth/refresh). Every error has one shape "
            "`{code, status, message, error, errors}` with a stable `error` code; another "
            "site's data answers 404. The rules behind each answer (diary day, backfill, "
            "lateness, amendments, compliance, alerts, reminders, every error code) are in "
            "the repository's docs/ folder."
        }
    },
}


class DiaryApi(Api):
    """flask-smorest's Api, answering and documenting errors in the contract's shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
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


def init_api(app: Flask, id_converter: type[BaseConverter]) -> DiaryApi:
    """A new `Api` bound to `app`, with the id converter and the bearer scheme documented.

    One per app, so a second app in the process (tests, the worker) shares no spec.
    """
    api = DiaryApi(app)
    api.register_converter(id_converter, integerconverter2paramschema)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    return api
