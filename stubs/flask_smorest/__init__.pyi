"""Types for the part of flask-smorest this project uses (the package ships none).

The decorators hand back the function (or MethodView class) they decorate with its own type,
which is what flask-smorest's wrappers do at run time (`functools.wraps`). Checked against
the installed package by `MYPYPATH=stubs python -m mypy.stubtest flask_smorest
--ignore-missing-stub --allowlist stubs/stubtest-allowlist.txt`.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

from apispec import APISpec
from flask import Blueprint as FlaskBlueprint
from flask import Flask
from flask.typing import ResponseReturnValue
from marshmallow import Schema
from webargs.flaskparser import abort as abort
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from .pagination import Page as Page

_F = TypeVar("_F", bound=Callable[..., Any])
_SchemaArg = type[Schema] | Schema
_Status = int | str | HTTPStatus

class Blueprint(FlaskBlueprint):
    description: str
    def __init__(self, *args: Any, description: str = "", **kwargs: Any) -> None: ...
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        *,
        parameters: Iterable[str | Mapping[str, Any]] | None = None,
        tags: Sequence[str] | None = None,
        **options: Any,
    ) -> None: ...
    def route(
        self,
        rule: str,
        *,
        parameters: Iterable[str | Mapping[str, Any]] | None = None,
        tags: Sequence[str] | None = None,
        **options: Any,
    ) -> Callable[[_F], _F]: ...
    def arguments(
        self,
        schema: _SchemaArg,
        *,
        location: str = "json",
        content_type: str | None = None,
        required: bool = True,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Callable[[_F], _F]: ...
    def response(
        self,
        status_code: _Status,
        schema: _SchemaArg | str | Mapping[str, Any] | None = None,
        *,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Callable[[_F], _F]: ...
    def alt_response(
        self,
        status_code: _Status,
        response: str | None = None,
        *,
        schema: _SchemaArg | str | Mapping[str, Any] | None = None,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        success: bool = False,
    ) -> Callable[[_F], _F]: ...
    def paginate(
        self,
        pager: type[Page] | None = None,
        *,
        page: int | None = None,
        page_size: int | None = None,
        max_page_size: int | None = None,
    ) -> Callable[[_F], _F]: ...
    def etag(self, obj: _F) -> _F: ...
    def check_etag(self, etag_data: Any, etag_schema: _SchemaArg | None = None) -> None: ...
    def set_etag(self, etag_data: Any, etag_schema: _SchemaArg | None = None) -> None: ...
    @staticmethod
    def doc(**kwargs: Any) -> Callable[[_F], _F]: ...

class Api:
    ERROR_SCHEMA: type[Schema]
    # None until `init_app`: every use here comes after it.
    spec: APISpec
    config_prefix: str
    def __init__(
        self,
        app: Flask | None = None,
        *,
        spec_kwargs: Mapping[str, Any] | None = None,
        config_prefix: str = "",
    ) -> None: ...
    def init_app(self, app: Flask, *, spec_kwargs: Mapping[str, Any] | None = None) -> None: ...
    def register_blueprint(
        self,
        blp: Blueprint,
        *,
        parameters: Iterable[str | Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> None: ...
    def register_converter(
        self, converter: type[BaseConverter], func: Callable[..., Mapping[str, Any]]
    ) -> None: ...
    def register_field(self, field: Any, *args: Any) -> None: ...
    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue: ...
