"""One error shape for every 4xx/5xx."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api import create_app
from api.models.staff import StaffUser

SHAPE = {"code", "status", "message", "error"}


def assert_shape(response, code, error):
    assert response.status_code == code
    body = response.get_json()
    assert set(body) >= SHAPE, body
    assert body["code"] == code
    assert body["error"] == error
    return body


def test_unknown_route_is_404_in_the_error_shape(client):
    assert_shape(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(client):
    response = client.delete("/api/v1/sites")
    assert_shape(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_a_4xx_in_the_error_shape(client):
    response = client.post(
        "/api/v1/auth/staff/login", data="{not json", content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert set(response.get_json()) >= SHAPE


def test_validation_errors_name_fields_at_top_level(client):
    response = client.post("/api/v1/auth/staff/login", json={"email": "a@b.org", "extra": 1})
    body = assert_shape(response, 422, "validation_failed")
    assert set(body["errors"]) == {"password", "extra"}


def test_body_over_the_limit_is_413(client, app):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(
        "/api/v1/auth/staff/login",
        data='{"email":"a@b.org","password":"' + big + '"}',
        content_type="application/json",
    )
    assert_shape(response, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/api/v1/participants/abc", "/api/v1/participants/-1"])
def test_bad_path_parameters_are_404(client, factory, path):
    admin = factory.staff("admin", sites=())
    assert factory.as_(admin).get(path).status_code == 404


def test_unexpected_errors_are_500_without_internals(tmp_path, caplog):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/e.db"})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM staff_users")

    response = app.test_client().get("/boom")
    body = assert_shape(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "Traceback" not in text
    assert body["message"] == "Internal server error."
    assert "secret internals" in caplog.text  # logged for operators, never shown


def test_sqlite_programming_errors_are_500_not_unavailable(tmp_path):
    from sqlalchemy import text

    from api.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})

    @app.get("/bad-sql")
    def bad_sql():
        db.session.execute(text("SELECT no_such_column FROM sites"))

    response = app.test_client().get("/bad-sql")
    assert_shape(response, 500, "internal_error")


def test_integers_beyond_the_database_range_are_422_naming_the_field(factory):
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).get("/api/v1/alerts", query_string={"participant_id": 2**40})
    body = assert_shape(response, 422, "validation_failed")
    assert "participant_id" in body["errors"]


def test_text_with_nul_characters_is_422_naming_the_field(factory):
    participant = factory.participant()
    response = factory.as_(participant).post(
        "/api/v1/me/devices", json={"token": "abc\x00def", "platform": "android"}
    )
    body = assert_shape(response, 422, "validation_failed")
    assert "token" in body["errors"]


def test_a_nul_inside_a_list_item_is_422_naming_the_field(factory):
    """Found by the fuzzed contract: a NUL in one of a new account's site codes was a 500
    on PostgreSQL; the items of a list get the same storable-text rule as the field."""
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).post(
        "/api/v1/staff",
        json={
            "email": "new.coordinator@example.org",
            "role": "coordinator",
            "password": "a long enough password",
            "sites": ["Z\x00Z"],
        },
    )
    body = assert_shape(response, 422, "validation_failed")
    assert "sites" in body["errors"]
    assert factory.scalar(select(func.count()).select_from(StaffUser)) == 1
