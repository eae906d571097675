"""Each app owns its Api, limiter and settings: a second app in the process changes nothing."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from api import create_app
from api.extensions import limiter_for
from api.settings import settings

ACTIVATE = "/api/v1/auth/participants/activate"


def _app(database_url: str, **config: object) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "AUTO_MIGRATE": False,
            "LOGIN_CLIENT_RATE_LIMIT": "2 per 15 minutes",
            **config,
        }
    )


def _activate(app: Flask) -> int:
    body = {"activation_code": "WRONG-CODE-0000"}
    return app.test_client().post(ACTIVATE, json=body).status_code


def test_a_second_app_does_not_reset_the_first_apps_limits(app, database_url):
    first = _app(database_url)
    assert [_activate(first) for _ in range(3)] == [401, 401, 429]
    second = _app(database_url)
    assert _activate(first) == 429  # the first app's count survived the second's start
    assert _activate(second) == 401  # the second counts on its own
    assert limiter_for(first) is not limiter_for(second)


def test_each_app_documents_its_own_api(app, database_url):
    first = _app(database_url)
    second = _app(database_url)
    one = first.test_client().get("/api/v1/openapi.json")
    two = second.test_client().get("/api/v1/openapi.json")
    assert one.status_code == two.status_code == 200
    assert one.data == two.data
    apis = [a.extensions["flask-smorest"]["apis"][""]["ext_obj"] for a in (first, second)]
    assert apis[0] is not apis[1] and apis[0].spec is not apis[1].spec


def test_each_app_has_the_settings_it_was_made_with(app, database_url):
    short = _app(database_url, ACTIVATION_CODE_TTL=timedelta(days=1))
    long = _app(database_url, ACTIVATION_CODE_TTL=timedelta(days=30))
    with short.app_context():
        assert settings().activation_code_ttl == timedelta(days=1)
    with long.app_context():
        assert settings().activation_code_ttl == timedelta(days=30)


def test_json_nested_too_deeply_is_a_400_and_other_recursion_a_500(app, client):
    deep = client.post(
        "/api/v1/auth/staff/login", data="[" * 5000 + "]" * 5000, content_type="application/json"
    )
    assert deep.status_code == 400
    assert deep.json["error"] == "bad_request"
    assert deep.json["message"] == "The JSON body is nested too deeply."


def test_a_recursion_error_in_code_is_a_500(database_url, app):
    bare = _app(database_url)

    @bare.get("/recurse")
    def recurse():  # type: ignore[no-untyped-def]
        raise RecursionError("maximum recursion depth exceeded")

    response = bare.test_client().get("/recurse")
    assert response.status_code == 500
    assert response.json["error"] == "internal_error"
