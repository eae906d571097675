"""App factory, configuration safety, study configuration, probes, migrations."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api import create_app
from api.config import DEV_JWT_SECRET, ConfigError, check_production_safety
from api.extensions import db
from api.models import Base
from api.study import StudyConfigError, load_study_config


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "short-secret", ""])
def test_production_refuses_weak_jwt_secret(secret):
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        check_production_safety({"APP_ENV": "production", "JWT_SECRET": secret})


def test_production_accepts_long_secret():
    check_production_safety({"APP_ENV": "production", "JWT_SECRET": "x" * 48})


def test_create_app_refuses_default_secret_in_production(tmp_path):
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        create_app(
            {
                "APP_ENV": "production",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                "AUTO_MIGRATE": False,
            }
        )


def test_shipped_study_config_matches_protocol():
    study = load_study_config()
    plans = {plan.kind: plan for plan in study.events}
    assert plans["infusion"].arms == ("msc",)
    assert plans["infusion"].months == (0, 3, 6, 9)
    assert plans["lab_visit"].months == (0, 3, 6, 9, 12)
    assert plans["follow_up"].months == (18, 24, 30, 36)
    assert study.visit_window_days == 7
    assert study.backfill_days == 2
    assert study.event_offsets_days == (3, 1)
    assert [s.timezone for s in study.sites] == ["Asia/Shanghai"] * 6
    assert len({s.code for s in study.sites}) == 6


def test_broken_study_config_is_a_clear_startup_error(tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"arms": {"msc": "x"}, "schedule": {}}))
    with pytest.raises(StudyConfigError, match="invalid study configuration"):
        create_app(
            {
                "STUDY_CONFIG": str(path),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                "AUTO_MIGRATE": False,
            }
        )


def test_unreadable_study_config_names_the_file(tmp_path):
    path = tmp_path / "missing.json"
    with pytest.raises(StudyConfigError, match=r"missing\.json"):
        load_study_config(str(path))


def test_study_config_with_unknown_arm_in_schedule_is_refused():
    from importlib import resources

    from api.study import parse_study_config

    raw = json.loads(resources.files("api").joinpath("study_config.json").read_text())
    raw["schedule"]["infusion"]["arms"] = ["placebo"]
    with pytest.raises(StudyConfigError, match="placebo"):
        parse_study_config(raw)


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_database_unreachable(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            # Nothing listens on port 1: the connection is refused at once.
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
            "AUTO_MIGRATE": False,
        }
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"
    assert response.headers["Retry-After"]
    assert app.test_client().get("/healthz").status_code == 200


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_first_start_creates_the_six_sites(app, factory):
    admin = factory.staff("admin", sites=())
    sites = factory.as_(admin).get("/api/v1/sites").json
    assert {s["code"] for s in sites} == {"BJ302", "LZU1", "HNBOAO", "LYG1", "TJSH", "XA323"}
    assert all(s["timezone"] == "Asia/Shanghai" for s in sites)
    assert {s["city"] for s in sites} >= {"Beijing", "Lanzhou", "Qionghai", "Xi'an"}


def test_openapi_document_has_bearer_scheme_and_error_responses(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = doc["paths"]["/api/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(me["responses"])
    login = doc["paths"]["/api/v1/auth/staff/login"]["post"]
    assert login["security"] == []
    assert {"401", "422", "429"} <= set(login["responses"])
    error_schema = doc["components"]["schemas"]["Error"]
    assert "error" in error_schema["properties"]


def test_sites_are_made_at_the_first_start_after_a_separate_migration(tmp_path):
    """PostgreSQL's way: `flask db upgrade`, then any process start creates the sites."""
    import flask_migrate
    from sqlalchemy import func, select

    from api import MIGRATIONS_DIR
    from api.models import Site

    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/m.db", "AUTO_MIGRATE": False}
    unmigrated = create_app(config)  # no tables yet: starts anyway
    with unmigrated.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        assert db.session.scalar(select(func.count()).select_from(Site)) == 0
    started = create_app(config)
    with started.app_context():
        assert db.session.scalar(select(func.count()).select_from(Site)) == 6
