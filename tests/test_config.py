"""App factory, configuration safety, study configuration, probes, migrations."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api import create_app
from api.config import ConfigError, check_production_safety, load_or_create_secret
from api.extensions import db
from api.models import Base
from api.study import StudyConfigError, load_study_config

OLD_COMMITTED_SECRET = "dev-only-insecure-secret-change-me-0000000000"


@pytest.mark.parametrize("env", ["production", "development", "test"])
@pytest.mark.parametrize("secret", [OLD_COMMITTED_SECRET, "short-secret", "x" * 31])
def test_weak_or_published_jwt_secret_is_refused_everywhere(env, secret):
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        check_production_safety({"APP_ENV": env, "JWT_SECRET": secret})


@pytest.mark.parametrize("secret", [OLD_COMMITTED_SECRET, "too-short"])
def test_a_weak_previous_key_is_refused_and_named(secret):
    config = {"APP_ENV": "production", "JWT_SECRET": "x" * 48}
    with pytest.raises(ConfigError, match=r"JWT_PREVIOUS_KEYS \(key 'k0'\)"):
        check_production_safety({**config, "JWT_PREVIOUS_KEYS": {"k0": secret}})
    check_production_safety({**config, "JWT_PREVIOUS_KEYS": {"k0": "y" * 40}})


def test_production_accepts_long_secret():
    check_production_safety({"APP_ENV": "production", "JWT_SECRET": "x" * 48})


def _config(tmp_path, **extra):
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "AUTO_MIGRATE": False, **extra}


@pytest.mark.parametrize("secret", [None, ""])
def test_production_without_jwt_secret_refuses_to_start_saying_what_to_set(
    tmp_path, monkeypatch, secret
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ConfigError) as refused:
        create_app(_config(tmp_path, APP_ENV="production", JWT_SECRET=secret))
    message = str(refused.value)
    assert "APP_ENV=production needs JWT_SECRET" in message
    assert "at least 32 characters" in message and "secrets.token_urlsafe" in message
    assert not (tmp_path / "instance" / "jwt-secret").exists()  # no generated fallback


def test_production_refuses_to_start_from_the_environment_too(tmp_path, monkeypatch):
    """The operator's start: APP_ENV=production and nothing else."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="APP_ENV=production needs JWT_SECRET"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "AUTO_MIGRATE": False})
    monkeypatch.setenv("JWT_SECRET", "short")
    with pytest.raises(ConfigError, match="shorter than 32"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "AUTO_MIGRATE": False})


def test_app_env_defaults_to_development_with_a_generated_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("APP_ENV", "FLASK_ENV", "JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "AUTO_MIGRATE": False}
    )
    assert app.config["APP_ENV"] == "development"
    path = tmp_path / "instance" / "jwt-secret"
    assert app.config["JWT_SECRET"] == path.read_text().strip()


def test_generated_secret_is_private_random_and_reused_at_restart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    first = create_app(_config(tmp_path, APP_ENV="development"))
    path = tmp_path / "instance" / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = first.config["JWT_SECRET"]
    assert len(secret) >= 60 and secret == path.read_text().strip()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    again = create_app(_config(tmp_path, APP_ENV="development"))
    assert again.config["JWT_SECRET"] == secret
    # A token signed before the restart still verifies after it: sessions survive.
    with first.app_context():
        from api.auth import issue_access_token

        token = issue_access_token("staff", 1, "admin", 0)[0]
    with again.app_context():
        from api.auth import decode_access_token

        assert decode_access_token(token)["sub"] == "staff:1"
    # Another instance folder (another machine) gets a secret of its own.
    other = tmp_path / "elsewhere"
    assert load_or_create_secret(other / "jwt-secret") != secret


def test_generated_secret_survives_a_race_of_starting_processes(tmp_path):
    path = tmp_path / "instance" / "jwt-secret"
    seen: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        seen.append(load_or_create_secret(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len(set(seen)) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["jwt-secret"]


def test_a_secret_file_others_may_read_or_an_empty_one_is_refused(tmp_path):
    path = tmp_path / "jwt-secret"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_secret(path)
    os.chmod(path, 0o600)
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="no usable secret"):
        load_or_create_secret(path)


def test_an_explicit_jwt_secret_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(_config(tmp_path, APP_ENV="production", JWT_SECRET="s" * 40))
    assert app.config["JWT_SECRET"] == "s" * 40
    assert not (tmp_path / "instance" / "jwt-secret").exists()


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
