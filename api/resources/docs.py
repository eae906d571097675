"""Interactive API documentation at /api/v1/docs: Swagger UI from a package, no CDN.

The page and every file it loads are served by the app: Swagger UI's own files come
from the `swagger-ui-bundle` package, the start-up script from `api/apidocs/`. Nothing is
fetched from another origin, and the Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, abort, send_from_directory, url_for
from markupsafe import escape

from api.view_roles import admit

blp = Blueprint("docs", __name__)

PAGE_DIR = Path(str(resources.files("api") / "apidocs"))
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_UI_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
)
PAGE_FILES = frozenset({"docs-init.js"})
# What Swagger UI needs, from this origin only: its script and style files, the
# OpenAPI document and "try it out" calls (connect-src), its inline SVG icons (data:).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_MAX_AGE = 3600
PUBLIC = ("anyone",)  # read by the access matrix test: open to anyone, no token


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.get("/api/v1/docs")
def docs_page() -> Response:
    """The Swagger UI page for the OpenAPI document."""
    html = (PAGE_DIR / "index.html").read_text("utf-8")
    page = html.format(
        assets=escape(url_for("docs.docs_asset", filename="")),
        spec_url=escape(url_for("api-docs.openapi_json")),
    )
    return _secured(Response(page, mimetype="text/html"))


@blp.get("/api/v1/docs/<path:filename>")
def docs_asset(filename: str) -> Response:
    """One of the page's files; anything else is a 404."""
    if filename in SWAGGER_UI_FILES:
        folder = SWAGGER_UI_DIR
    elif filename in PAGE_FILES:
        folder = PAGE_DIR
    else:
        abort(404)
    return _secured(send_from_directory(folder, filename, max_age=ASSET_MAX_AGE))


admit(docs_page, PUBLIC)
admit(docs_asset, PUBLIC)
