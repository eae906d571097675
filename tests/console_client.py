"""A browser-like client of the console: one cookie jar, CSRF tokens read from the pages."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from tests.helpers import PASSWORD

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class ConsoleSession:
    """Signs in through the form and posts forms with the token of the page they are on."""

    def __init__(self, app: Flask, **headers: str) -> None:
        self.client = app.test_client()
        self.headers = headers

    def get(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self.headers, **kw)

    def token(self, page: str = "/console/login") -> str:
        found = CSRF_FIELD.search(self.get(page, follow_redirects=True).get_data(as_text=True))
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def post(
        self,
        url: str,
        data: dict[str, Any] | None = None,
        *,
        page: str | None = None,
        csrf: bool = True,
        **kw: Any,
    ):  # type: ignore[no-untyped-def]
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token(page or "/console/login"))
        return self.client.post(url, data=form, headers=self.headers, **kw)

    def login(self, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        return self.post("/console/login", {"email": email, "password": password})
