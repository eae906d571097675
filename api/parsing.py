"""webargs' Flask parser, answering a JSON body nested past Python's recursion limit with 400."""

from __future__ import annotations

from typing import Any

from flask import Request
from flask_smorest import abort
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

NESTED_TOO_DEEPLY = "The JSON body is nested too deeply."


class DiaryParser(FlaskParser):
    """The blueprints' argument parser.

    `json.loads` gives up on ``[[[[…]]]]`` thousands deep with a `RecursionError` (not the
    `JSONDecodeError` webargs turns into a 400); it is caught here, where the body is
    decoded, so nothing else needs to tell it from a bug.
    """

    def load_json(self, req: Request, schema: Schema) -> Any:
        try:
            return super().load_json(req, schema)
        except RecursionError:
            abort(400, message=NESTED_TOO_DEEPLY)
