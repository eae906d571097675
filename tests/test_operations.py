"""What an operator watches and runs: request ids, JSON log lines, /metrics, readiness, CLI."""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import date, datetime, timedelta

import flask_migrate
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from api import MIGRATIONS_DIR, create_app
from api.config import parse_networks
from api.models import Alert, AuditEvent, Reminder
from api.observability import JsonFormatter
from tests.test_diary_entries import MINE, body

NOW = "2026-03-10T12:00:00+08:00"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family from a Prometheus text page, keyed by labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def metric(client, name: str, **labels: str) -> float:
    page = client.get("/metrics")
    assert page.status_code == 200, page.data
    return samples(page.get_data(as_text=True), name).get(tuple(sorted(labels.items())), 0.0)


# -- request ids and the error shape -------------------------------------------------------


def test_every_answer_carries_a_request_id_and_errors_name_it(client):
    ok = client.get("/healthz")
    assert len(ok.headers["X-Request-ID"]) == 32
    missing = client.get("/api/v1/me", headers={"X-Request-ID": "trace-42.a:b"})
    assert missing.status_code == 401
    assert missing.headers["X-Request-ID"] == "trace-42.a:b"
    assert missing.json["request_id"] == "trace-42.a:b"


def test_made_request_ids_differ_in_a_forked_worker():
    """gunicorn forks its workers from one process: each must draw ids of its own."""
    from api.observability import _new_request_id

    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the worker: its first id, to the parent
        os.write(writer, _new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    in_child = os.read(reader, 64).decode()
    os.close(reader)
    in_parent = _new_request_id()
    assert len(in_child) == len(in_parent) == 32
    assert int(in_child, 16) >= 0
    assert in_child != in_parent


@pytest.mark.parametrize("supplied", ["", "x" * 129, "a b", "<script>", "é"])
def test_an_insane_request_id_is_replaced(client, supplied):
    answer = client.get("/api/v1/me", headers={"X-Request-ID": supplied})
    assert answer.headers["X-Request-ID"] != supplied
    assert answer.json["request_id"] == answer.headers["X-Request-ID"]


def test_one_json_line_per_request_without_secrets(factory, clock, caplog):
    clock.set(NOW)
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    entry = body(note="confided: private words")
    with caplog.at_level(logging.INFO, logger="api.request"):
        answer = phone.post(MINE, json=entry)
    assert answer.status_code == 201
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "api.request"]
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["route"] == "/api/v1/me/diary-entries"
    assert line["method"] == "POST"
    assert line["status"] == 201
    assert line["principal_kind"] == "participant"
    assert line["principal_id"] == participant.id
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert isinstance(line["duration_ms"], float)
    token = factory.token(participant)
    for secret in ("private words", token, entry["client_entry_id"], "discomfort"):
        assert secret not in lines[0]


def test_text_format_keeps_the_development_lines(monkeypatch, tmp_path):
    monkeypatch.setenv("LOG_FORMAT", "text")
    from api.config import from_environment

    assert from_environment(str(tmp_path))["LOG_FORMAT"] == "text"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    from api.config import ConfigError

    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        from_environment(str(tmp_path))


# -- /metrics -----------------------------------------------------------------------------


def test_metrics_only_for_the_token_or_an_allowed_address(app, client):
    saved = dict(app.config)
    try:
        assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
        app.config["METRICS_ALLOW"] = parse_networks("10.0.0.0/8")
        refused = client.get("/metrics")
        assert refused.status_code == 403
        assert refused.json["error"] == "metrics_forbidden"
        app.config["METRICS_TOKEN"] = "a-long-scrape-token"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        allowed = client.get("/metrics", headers={"Authorization": "Bearer a-long-scrape-token"})
        assert allowed.status_code == 200
        assert allowed.content_type.startswith("text/plain")
        spoofed = client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert spoofed.status_code == 403
    finally:
        app.config.clear()
        app.config.update(saved)


def test_requests_counted_by_route_template_not_by_url(client):
    before = metric(
        client,
        "diary_http_requests_total",
        route="/api/v1/participants/<int:participant_id>",
        method="GET",
        status="401",
    )
    for pid in (1, 2, 99999):
        client.get(f"/api/v1/participants/{pid}")
    after = metric(
        client,
        "diary_http_requests_total",
        route="/api/v1/participants/<int:participant_id>",
        method="GET",
        status="401",
    )
    assert after - before == 3
    page = client.get("/metrics").get_data(as_text=True)
    assert "/api/v1/participants/99999" not in page
    assert "diary_http_request_duration_seconds_bucket" in page


def test_diary_outcomes_counted(factory, client, clock):
    clock.set(NOW)
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    names = ("created", "replayed", "conflict", "rejected")
    before = {o: metric(client, "diary_entries_total", outcome=o) for o in names}
    first = body()
    assert phone.post(MINE, json=first).status_code == 201
    assert phone.post(MINE, json=first).status_code == 200
    assert phone.post(MINE, json=body()).status_code == 409
    assert phone.post(MINE, json=body("2026-02-01")).status_code == 409  # before enrolment
    synced = phone.post(
        f"{MINE}/sync", json={"entries": [body("2026-03-09"), first, body("2026-03-01")]}
    )
    assert [r["status"] for r in synced.json["results"]] == ["created", "replayed", "rejected"]
    after = {o: metric(client, "diary_entries_total", outcome=o) for o in names}
    assert {o: after[o] - before[o] for o in names} == {
        "created": 2,
        "replayed": 2,
        "conflict": 1,
        "rejected": 2,
    }


def test_open_alerts_and_overdue_serious_events_read_at_scrape_time(factory, client, clock):
    clock.set(NOW)
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    before = metric(client, "diary_open_alerts", kind="symptom_urgent")
    assert phone.post(MINE, json=body(discomfort_grade=4)).status_code == 201
    assert metric(client, "diary_open_alerts", kind="symptom_urgent") == before + 1
    coordinator = factory.as_(factory.staff())
    aware = datetime.fromisoformat(NOW) - timedelta(hours=30)
    recorded = coordinator.post(
        f"/api/v1/participants/{participant.id}/adverse-events",
        json={
            "term": "Hepatocellular carcinoma",
            "onset_date": "2026-03-08",
            "grade": 3,
            "seriousness": ["tumour"],
            "relation_to_infusion": "unlikely",
            "outcome": "not_recovered",
            "awareness_at": aware.isoformat(),
        },
    )
    assert recorded.status_code == 201, recorded.json
    assert metric(client, "diary_serious_adverse_events_overdue") == 1


def test_pool_use_is_reported(client):
    page = client.get("/metrics").get_data(as_text=True)
    pool = samples(page, "diary_db_pool_connections")
    assert {dict(k)["state"] for k in pool} >= {"in_use", "idle"}


def test_a_scrape_samples_the_pool_however_recent_the_last_sample(app, client, monkeypatch):
    """Requests sample the pool at most once a second; a scrape always reads it afresh."""
    import api.metrics
    from api.extensions import db

    client.get("/healthz")
    monkeypatch.setattr(api.metrics, "_pool_sampled_at", float("inf"))  # no request samples
    with app.app_context():
        held = db.engine.connect()  # one more connection in use than any request left
        try:
            in_use = db.engine.pool.checkedout()
            pool = samples(
                client.get("/metrics").get_data(as_text=True), "diary_db_pool_connections"
            )
        finally:
            held.close()
    assert pool[(("state", "in_use"),)] >= in_use >= 1


# -- readiness while migrations are behind -------------------------------------------------


def test_readyz_fails_while_migrations_are_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    app = create_app(
        {"TESTING": True, "APP_ENV": "test", "SQLALCHEMY_DATABASE_URI": url, "AUTO_MIGRATE": False}
    )
    client = app.test_client()
    empty = client.get("/readyz")
    assert (empty.status_code, empty.json["error"]) == (503, "migrations_pending")
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR, revision="0003_chain")
    behind = client.get("/readyz")
    assert (behind.status_code, behind.json["error"]) == (503, "migrations_pending")
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    assert client.get("/readyz").status_code == 200


def test_a_start_on_a_migrated_database_says_nothing_of_alembic(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'quiet.sqlite3'}"
    settings = {
        "TESTING": True,
        "APP_ENV": "test",
        "SQLALCHEMY_DATABASE_URI": url,
        "AUTO_MIGRATE": True,
    }
    with caplog.at_level(logging.INFO):
        create_app(settings)
    assert any(r.name.startswith("alembic") for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        create_app(settings)
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]


# -- commands that take --now ---------------------------------------------------------------


def _missed_diary_participant(factory, clock):
    clock.set(NOW)
    return factory.participant(enrolled_on=date(2026, 3, 1))


def test_a_future_now_is_refused_without_dry_run_or_force(app, factory, clock):
    _missed_diary_participant(factory, clock)
    runner = app.test_cli_runner()
    future = (datetime.fromisoformat(NOW) + timedelta(days=3)).isoformat()
    for command in (["alerts", "check"], ["notifications", "run"]):
        refused = runner.invoke(args=[*command, "--now", future])
        assert refused.exit_code == 2, refused.output
        assert "--dry-run" in refused.output
    assert factory.scalar(select(func.count()).select_from(Alert)) == 0
    assert factory.scalar(select(func.count()).select_from(Reminder)) == 0


def test_alerts_check_dry_run_writes_nothing(app, factory, clock):
    _missed_diary_participant(factory, clock)
    runner = app.test_cli_runner()
    audit_before = factory.scalar(select(func.count()).select_from(AuditEvent))
    dry = runner.invoke(args=["alerts", "check", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run: 1 missed-diary alert(s) would be raised" in dry.output
    assert factory.scalar(select(func.count()).select_from(Alert)) == 0
    assert factory.scalar(select(func.count()).select_from(AuditEvent)) == audit_before
    real = runner.invoke(args=["alerts", "check"])
    assert "1 missed-diary alert(s) raised" in real.output
    assert factory.scalar(select(func.count()).select_from(Alert)) == 1


def test_notifications_dry_run_lists_what_would_be_sent_and_writes_nothing(app, factory, clock):
    participant = _missed_diary_participant(factory, clock)
    runner = app.test_cli_runner()
    evening = "2026-03-10T20:30:00+08:00"  # after the 20:00 diary reminder
    dry = runner.invoke(args=["notifications", "run", "--dry-run", "--now", evening])
    assert dry.exit_code == 0, dry.output
    assert "nothing written or sent" in dry.output
    assert f"{participant.study_code} diary due 2026-03-10T12:00Z" in dry.output
    assert "1 missed-diary alert(s) would be raised" in dry.output
    assert factory.scalar(select(func.count()).select_from(Reminder)) == 0
    assert factory.scalar(select(func.count()).select_from(Alert)) == 0
    forced = runner.invoke(args=["notifications", "run", "--now", evening, "--force"])
    assert forced.exit_code == 0, forced.output
    assert factory.scalar(select(func.count()).select_from(Reminder)) > 0


def test_notifications_dry_run_shows_what_quiet_hours_would_hold(app, factory, clock):
    """At 23:30 local the evening's diary reminder is due but inside quiet hours, and its
    day ends before the morning: the dry run says it would expire, not that it is sent."""
    participant = _missed_diary_participant(factory, clock)
    late = "2026-03-10T23:30:00+08:00"
    dry = app.test_cli_runner().invoke(args=["notifications", "run", "--dry-run", "--now", late])
    assert dry.exit_code == 0, dry.output
    line = f"{participant.study_code} diary due 2026-03-10T12:00Z"
    assert f"{line}: would expire (quiet hours last past its expiry)" in dry.output
    sent = dry.output.split("would be sent:")[1].split("quiet hours would hold back")[0]
    assert line not in sent


# -- the worker's own metrics ------------------------------------------------------------


def test_worker_metrics_after_a_pass(app, factory, clock):
    from werkzeug.test import Client

    from notifications.metrics import metrics_wsgi_app
    from notifications.worker import Worker

    _missed_diary_participant(factory, clock)
    clock.set("2026-03-10T20:30:00+08:00")
    local = {"REMOTE_ADDR": "127.0.0.1"}
    client = Client(metrics_wsgi_app(app))

    class scrape:  # the worker's server sees the peer's address, as wsgiref gives it
        @staticmethod
        def get(path, environ_base=local):  # type: ignore[no-untyped-def]
            return client.get(path, environ_base=environ_base)

    before = samples(scrape.get("/metrics").get_data(as_text=True), "diary_reminders_total")
    with app.app_context():
        from api.extensions import db
        from notifications import planning

        planning.plan(clock())
        db.session.commit()
    due = samples(
        scrape.get("/metrics").get_data(as_text=True), "diary_reminder_oldest_due_seconds"
    )
    assert due[()] == pytest.approx(30 * 60)
    Worker(app, worker_id=f"w-{uuid.uuid4().hex[:6]}").run_pass()
    page = scrape.get("/metrics").get_data(as_text=True)
    after = samples(page, "diary_reminders_total")
    key = (("outcome", "undeliverable"),)  # the participant has no phone registered
    assert after.get(key, 0) - before.get(key, 0) == 1
    assert samples(page, "diary_worker_last_pass_completed_timestamp_seconds")[()] > 0
    assert samples(page, "diary_worker_pass_duration_seconds_count")[()] >= 1
    assert samples(page, "diary_reminder_oldest_due_seconds")[()] == 0
    assert scrape.get("/other").status_code == 404
    refused = scrape.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert refused.status_code == 403
