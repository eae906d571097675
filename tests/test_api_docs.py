"""`GET /api/v1/docs`: interactive documentation served whole by the app, for anyone."""

from __future__ import annotations

import re


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|data-spec-url)="([^"]+)"', html)


def test_the_page_and_everything_it_loads_come_from_the_app(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http:" not in html and "https:" not in html and "//" not in html.replace("://", "")
    refs = _references(html)
    assert {"/api/v1/docs/swagger-ui-bundle.js", "/api/v1/docs/docs-init.js"} <= set(refs)
    assert "/api/v1/docs/swagger-ui.css" in refs and "/api/v1/openapi.json" in refs
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    kinds = {}
    for ref in refs:
        answer = client.get(ref)
        assert answer.status_code == 200, ref
        assert answer.get_data(), ref
        kinds[ref.rsplit(".", 1)[-1]] = answer.mimetype
    assert kinds["js"] in {"text/javascript", "application/javascript"}
    assert kinds["css"] == "text/css"
    assert kinds["json"] == "application/json"
    assert client.get("/api/v1/openapi.json").json["openapi"].startswith("3.")


def test_the_start_up_script_names_no_other_origin(client):
    script = client.get("/api/v1/docs/docs-init.js").get_data(as_text=True)
    assert "SwaggerUIBundle(" in script and "validatorUrl: null" in script
    assert "http" not in script


def test_only_the_pages_files_are_served(client):
    for name in ("index.j2", "../__init__.py", "swagger-ui-es-bundle.js", "..%2F__init__.py"):
        answer = client.get(f"/api/v1/docs/{name}")
        assert answer.status_code == 404, name
        assert answer.json["error"] == "not_found"
