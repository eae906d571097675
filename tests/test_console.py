"""The console's sign-in, session, CSRF, headers, language and access rules (test client)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.models import ActivationCode, AuditEvent, DiaryEntry, Participant, StaffUser
from tests.console_client import ConsoleSession
from tests.helpers import PASSWORD

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def coordinator(factory):
    return factory.staff("coordinator", sites=("BJ302",), email="coord@example.org")


@pytest.fixture
def signed_in(app, coordinator):
    session = ConsoleSession(app)
    assert session.login(coordinator.email).status_code == 303
    return session


def _entry(factory, participant, day: date, **scores):  # type: ignore[no-untyped-def]
    admin = factory.staff("admin")
    body = {
        "diary_date": day.isoformat(),
        "abdominal_distension": 1,
        "decreased_appetite": 1,
        "debilitation": 1,
        "leg_edema": 0,
        "discomfort_grade": 1,
        "reason": "paper diary",
        **scores,
    }
    answer = factory.as_(admin).post(
        f"/api/v1/participants/{participant.id}/diary-entries", json=body
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


# Sign-in and sign-out


def test_sign_in_then_the_worklist(app, coordinator):
    session = ConsoleSession(app)
    login = session.get("/console/login")
    assert login.status_code == 200
    assert 'name="email"' in _text(login) and 'name="password"' in _text(login)
    answer = session.login(coordinator.email)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/"
    today = session.get("/console/")
    assert today.status_code == 200
    assert coordinator.email in _text(today)


def test_session_cookie_is_httponly_lax_and_scoped(app, coordinator):
    session = ConsoleSession(app)
    answer = session.login(coordinator.email)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # test and development only: see the production test


def test_secure_cookie_outside_development(database_url, clock):
    from api import create_app

    production = create_app(
        {
            "TESTING": True,
            "APP_ENV": "production",
            "JWT_SECRET": "x" * 48,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "AUTO_MIGRATE": False,
            "CLOCK": clock,
        }
    )
    assert production.config["SESSION_COOKIE_SECURE"] is True


def test_wrong_password_is_refused_and_signs_nobody_in(app, coordinator):
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    answer = session.login(coordinator.email, "not the password")
    assert answer.status_code == 401
    assert "Wrong e-mail or password." in _text(answer)
    assert session.get("/console/").status_code == 302


def test_disabled_account_cannot_sign_in(app, factory, coordinator):
    factory.update(StaffUser, coordinator.id, is_active=False)
    assert ConsoleSession(app).login(coordinator.email).status_code == 401


def test_failed_sign_ins_are_limited_like_the_api(app, coordinator):
    session = ConsoleSession(app)
    for _ in range(5):
        assert session.login(coordinator.email, "wrong").status_code == 401
    blocked = session.login(coordinator.email)  # even the right password now
    assert blocked.status_code == 429
    assert session.get("/console/").status_code == 302


def test_sign_out_ends_the_session(signed_in):
    answer = signed_in.post("/console/logout", page="/console/")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/login"
    assert signed_in.get("/console/").status_code == 302


def test_next_goes_back_inside_the_console_only(app, coordinator):
    session = ConsoleSession(app)
    answer = session.post(
        "/console/login",
        {"email": coordinator.email, "password": PASSWORD, "next": "https://evil.example/x"},
    )
    assert answer.headers["Location"] == "/console/"
    session = ConsoleSession(app)
    answer = session.post(
        "/console/login",
        {"email": coordinator.email, "password": PASSWORD, "next": "/console/participants"},
    )
    assert answer.headers["Location"] == "/console/participants"


def _console_get_urls(app, participant_id: int) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint in {"console.login", "console.static"}:
            continue
        values = {arg: participant_id for arg in rule.arguments}
        urls.append(rule.build(values)[1] if values else rule.rule)
    return urls


def test_signed_out_every_console_page_redirects_to_sign_in(app, factory):
    p = factory.participant()
    session = ConsoleSession(app)
    urls = _console_get_urls(app, p.id)
    assert "/console/" in urls and f"/console/participants/{p.id}" in urls
    for url in urls:
        answer = session.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"].startswith("/console/login"), url
    form = session.post(f"/console/participants/{p.id}/excused-days", {"reason": "x"})
    assert form.status_code == 302
    assert form.headers["Location"].startswith("/console/login")


# Timeouts, on the injected clock


def test_idle_timeout(app, clock, coordinator):
    clock.set(T0)
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    session.login(coordinator.email)
    clock.set(T0 + timedelta(minutes=29))
    assert session.get("/console/").status_code == 200
    clock.set(T0 + timedelta(minutes=29 + 30))
    answer = session.get("/console/")
    assert answer.status_code == 302
    login = session.get(answer.headers["Location"])
    assert "signed out after a period of inactivity" in _text(login)
    clock.set(T0 + timedelta(minutes=60))
    assert session.get("/console/").status_code == 302  # stays signed out


def test_absolute_lifetime(app, clock, coordinator):
    clock.set(T0)
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    session.login(coordinator.email)
    for minutes in range(25, 12 * 60, 25):  # busy all day: never idle
        clock.set(T0 + timedelta(minutes=minutes))
        assert session.get("/console/").status_code == 200, minutes
    clock.set(T0 + timedelta(hours=12))
    answer = session.get("/console/")
    assert answer.status_code == 302
    assert "maximum length" in _text(session.get(answer.headers["Location"]))


def test_timeouts_come_from_configuration(app, clock, coordinator, monkeypatch):
    monkeypatch.setitem(app.config, "CONSOLE_IDLE_MINUTES", 5)
    clock.set(T0)
    session = ConsoleSession(app)
    session.login(coordinator.email)
    clock.set(T0 + timedelta(minutes=6))
    assert session.get("/console/").status_code == 302


def test_disabled_account_session_ends_at_next_request(app, factory, signed_in, coordinator):
    assert signed_in.get("/console/").status_code == 200
    factory.update(StaffUser, coordinator.id, is_active=False)
    answer = signed_in.get("/console/participants")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login")


def test_revoked_sessions_end_at_next_request(app, factory, signed_in, coordinator):
    factory.update(StaffUser, coordinator.id, auth_epoch=coordinator.auth_epoch + 1)
    assert signed_in.get("/console/").status_code == 302


# CSRF and headers


def test_form_without_csrf_token_is_refused(app, factory, signed_in):
    p = factory.participant(enrolled_on=date.today() - timedelta(days=10))
    answer = signed_in.post(
        f"/console/participants/{p.id}/excused-days",
        {"from": p.enrolled_on.isoformat(), "to": p.enrolled_on.isoformat(), "reason": "stay"},
        csrf=False,
    )
    assert answer.status_code == 400
    assert factory.scalar(select(func.count()).select_from(AuditEvent)) == 1  # enrolment only


def test_sign_in_without_csrf_token_is_refused(app, coordinator):
    session = ConsoleSession(app)
    answer = session.post(
        "/console/login", {"email": coordinator.email, "password": PASSWORD}, csrf=False
    )
    assert answer.status_code == 400
    assert session.get("/console/").status_code == 302


def test_json_api_needs_no_csrf_token(factory, coordinator):
    answer = factory.client.post(
        "/api/v1/auth/staff/login", json={"email": coordinator.email, "password": PASSWORD}
    )
    assert answer.status_code == 200


HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _assert_console_headers(answer, url: str) -> None:  # type: ignore[no-untyped-def]
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (url, name)
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy, url
    assert "frame-ancestors 'none'" in policy, url
    assert "unsafe-inline" not in policy, url


def test_security_headers_on_every_console_answer(app, factory):
    admin = factory.staff("admin")
    p = factory.participant()
    anonymous = ConsoleSession(app)
    for url in ("/console/login", "/console/", "/console/static/console.css", "/console/nope"):
        _assert_console_headers(anonymous.get(url), url)
    session = ConsoleSession(app)
    session.login(admin.email)
    for url in [*_console_get_urls(app, p.id), "/console/participants/999999", "/console/nope"]:
        _assert_console_headers(session.get(url), url)
    api = factory.client.get("/healthz")
    assert "Content-Security-Policy" not in api.headers


def test_pages_carry_no_inline_script(app, factory):
    admin = factory.staff("admin")
    p = factory.participant()
    session = ConsoleSession(app)
    session.login(admin.email)
    for url in _console_get_urls(app, p.id):
        page = _text(session.get(url))
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert not re.search(r"\son[a-z]+=", page), url
        assert "style=" not in page, url


# Languages


def test_language_defaults_to_chinese(app, coordinator):
    page = _text(ConsoleSession(app).get("/console/login"))
    assert '<html lang="zh-CN">' in page and "登录" in page


def test_browser_language_is_used_without_a_choice(app, coordinator):
    page = _text(ConsoleSession(app, **{"Accept-Language": "en-GB,en;q=0.8"}).get("/console/login"))
    assert '<html lang="en">' in page and "Sign in" in page
    page = _text(
        ConsoleSession(app, **{"Accept-Language": "fr, zh-TW;q=0.5"}).get("/console/login")
    )
    assert '<html lang="zh-CN">' in page


def test_choice_is_kept_on_the_account_over_the_browser(app, factory, coordinator):
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    session.login(coordinator.email)
    assert '<html lang="en">' in _text(session.get("/console/"))
    answer = session.post(
        "/console/locale", {"locale": "zh-CN", "next": "/console/participants"}, page="/console/"
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/participants"
    assert factory.scalar(select(StaffUser.locale).where(StaffUser.id == coordinator.id)) == "zh-CN"
    other_browser = ConsoleSession(app, **{"Accept-Language": "en"})
    other_browser.login(coordinator.email)
    assert '<html lang="zh-CN">' in _text(other_browser.get("/console/"))


def test_unknown_language_choice_changes_nothing(app, factory, signed_in, coordinator):
    signed_in.post("/console/locale", {"locale": "fr"}, page="/console/")
    assert factory.scalar(select(StaffUser.locale).where(StaffUser.id == coordinator.id)) is None


def test_every_catalogue_key_has_both_languages():
    from console.i18n import LOCALES, catalogue

    missing = [key for key, texts in catalogue().items() if any(not texts.get(x) for x in LOCALES)]
    assert not missing


# Access: sites and roles


def test_another_sites_participant_is_a_404_page(app, factory, signed_in):
    other = factory.participant(site="LZU1")
    for url in (
        f"/console/participants/{other.id}",
        f"/console/participants/{other.id}/activation",
    ):
        answer = signed_in.get(url)
        assert answer.status_code == 404, url
        assert "text/html" in answer.headers["Content-Type"]
    forged = signed_in.post(
        f"/console/participants/{other.id}/excused-days",
        {"from": "2026-11-01", "to": "2026-11-01", "reason": "stay"},
        page="/console/",
    )
    assert forged.status_code == 404


def test_participants_list_shows_own_sites_only(app, factory, signed_in):
    own = factory.participant(site="BJ302")
    other = factory.participant(site="LZU1")
    page = _text(signed_in.get("/console/participants"))
    assert own.study_code in page and other.study_code not in page
    assert signed_in.get("/console/participants?site=LZU1").status_code == 404


def test_monitor_sees_no_write_control_and_a_forged_post_is_403(app, factory, clock):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    entry = _entry(factory, p, date(2026, 11, 10))
    monitor = factory.staff("monitor")
    session = ConsoleSession(app)
    session.login(monitor.email)
    page = _text(session.get(f"/console/participants/{p.id}"))
    actions = re.findall(r'<form method="post" action="([^"]+)"', page)
    assert set(actions) == {"/console/locale", "/console/logout"}
    assert "/console/participants/new" not in _text(session.get("/console/participants"))
    forged = [
        (
            f"/console/participants/{p.id}/diary-entries/{entry['id']}",
            {"version": "1", "debilitation": "3", "reason": "forged"},
        ),
        (
            f"/console/participants/{p.id}/excused-days",
            {"from": "2026-11-02", "to": "2026-11-03", "reason": "forged"},
        ),
        (
            f"/console/participants/{p.id}/status",
            {"status": "withdrawn", "reason": "forged", "confirmed": "yes"},
        ),
        ("/console/participants/new", {"site": "BJ302", "arm": "msc"}),
    ]
    for url, data in forged:
        assert session.post(url, data, page="/console/").status_code == 403, url
    assert session.get("/console/participants/new").status_code == 403
    assert factory.scalar(select(DiaryEntry.version).where(DiaryEntry.id == entry["id"])) == 1
    assert factory.scalar(select(Participant.status).where(Participant.id == p.id)) == "active"


# Diary amendments


def _amend(session, p, entry_id: int, version: int, **fields):  # type: ignore[no-untyped-def]
    data = {"version": str(version), "reason": "corrected from the paper diary", **fields}
    return session.post(
        f"/console/participants/{p.id}/diary-entries/{entry_id}",
        data,
        page=f"/console/participants/{p.id}",
    )


def test_amend_with_reason_shows_the_new_version_and_who(app, factory, clock, signed_in):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    entry = _entry(factory, p, date(2026, 11, 10))
    answer = _amend(signed_in, p, entry["id"], 1, debilitation="3")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"#entry-{entry['id']}")
    page = _text(signed_in.get(answer.headers["Location"]))
    assert "第2版" in page and "coord@example.org" in page
    assert "corrected from the paper diary" in page
    stored = factory.scalar(select(DiaryEntry).where(DiaryEntry.id == entry["id"]))
    assert (stored.version, stored.debilitation) == (2, 3)


def test_stale_amend_form_is_refused_and_overwrites_nothing(app, factory, clock, signed_in):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    entry = _entry(factory, p, date(2026, 11, 10))
    assert _amend(signed_in, p, entry["id"], 1, debilitation="3").status_code == 303
    stale = _amend(signed_in, p, entry["id"], 1, debilitation="0", leg_edema="4")
    assert stale.status_code == 303
    page = _text(signed_in.get(stale.headers["Location"]))
    assert "本次未保存任何内容" in page
    stored = factory.scalar(select(DiaryEntry).where(DiaryEntry.id == entry["id"]))
    assert (stored.version, stored.debilitation, stored.leg_edema) == (2, 3, 0)


def test_amend_without_reason_is_refused_naming_the_field(app, factory, clock):
    clock.set(T0)
    coordinator = factory.staff("coordinator")
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    session.login(coordinator.email)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    entry = _entry(factory, p, date(2026, 11, 10))
    answer = session.post(
        f"/console/participants/{p.id}/diary-entries/{entry['id']}",
        {"version": "1", "debilitation": "3"},
        page=f"/console/participants/{p.id}",
    )
    page = _text(session.get(answer.headers["Location"]))
    assert "Reason: required" in page
    assert factory.scalar(select(DiaryEntry.version).where(DiaryEntry.id == entry["id"])) == 1


def test_enter_on_behalf_is_replay_safe(app, factory, clock, signed_in):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    form = {
        "client_entry_id": "0b6f3c8e-4f0d-4d83-9b1e-5a8f0a3e2b11",
        "diary_date": "2026-11-05",
        "abdominal_distension": "2",
        "decreased_appetite": "1",
        "debilitation": "0",
        "leg_edema": "0",
        "discomfort_grade": "1",
        "reason": "paper diary brought to the visit",
    }
    url = f"/console/participants/{p.id}/diary-entries"
    for _ in range(2):  # a double click
        assert signed_in.post(url, form, page=f"/console/participants/{p.id}").status_code == 303
    rows = factory.scalars(select(DiaryEntry).where(DiaryEntry.participant_id == p.id))
    assert [(r.diary_date, r.source, r.abdominal_distension) for r in rows] == [
        (date(2026, 11, 5), "staff", 2)
    ]


# Enrolment


def test_enrol_shows_the_activation_code_once(app, factory, clock, signed_in):
    clock.set(T0)
    answer = signed_in.post(
        "/console/participants/new",
        {
            "site": "BJ302",
            "arm": "msc",
            "enrolled_on": "2026-11-20",
            "timezone": "Asia/Shanghai",
            "locale": "en",
        },
        page="/console/participants/new",
    )
    assert answer.status_code == 303
    shown = signed_in.get(answer.headers["Location"])
    page = _text(shown)
    code = re.search(r'data-testid="activation-code">([^<]+)<', page).group(1)
    assert "<svg" in page and 'lang="en"' in page  # QR code; slip in the participant's language
    assert "Open the diary app and scan this code." in page
    again = _text(signed_in.get(answer.headers["Location"]))
    assert code not in again
    activated = factory.client.post(
        "/api/v1/auth/participants/activate", json={"activation_code": code}
    )
    assert activated.status_code == 200
    assert factory.scalar(select(func.count()).select_from(ActivationCode)) == 1


def test_enrol_with_bad_input_names_the_field_and_saves_nothing(app, factory, signed_in):
    answer = signed_in.post(
        "/console/participants/new",
        {
            "site": "BJ302",
            "arm": "msc",
            "enrolled_on": "not a date",
            "timezone": "Mars/Olympus",
            "locale": "zh-CN",
        },
        page="/console/participants/new",
    )
    assert answer.status_code == 422
    page = _text(answer)
    assert 'id="err-enrolled_on"' in page and 'id="err-timezone"' in page
    assert factory.scalar(select(func.count()).select_from(Participant)) == 0


def test_status_change_needs_the_confirmation_step(app, factory, clock, signed_in):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    url = f"/console/participants/{p.id}/status"
    first = signed_in.post(
        url, {"status": "withdrawn", "reason": "moved abroad"}, page=f"/console/participants/{p.id}"
    )
    assert first.status_code == 200 and 'name="confirmed" value="yes"' in _text(first)
    assert factory.scalar(select(Participant.status).where(Participant.id == p.id)) == "active"
    done = signed_in.post(
        url,
        {"status": "withdrawn", "reason": "moved abroad", "confirmed": "yes"},
        page=f"/console/participants/{p.id}",
    )
    assert done.status_code == 303
    assert factory.scalar(select(Participant.status).where(Participant.id == p.id)) == "withdrawn"


# Passwords


def test_reset_account_must_change_its_password_first(app, factory):
    staff = factory.staff("coordinator", email="reset@example.org")
    factory.update(StaffUser, staff.id, must_change_password=True)
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    answer = session.login(staff.email)
    assert answer.headers["Location"] == "/console/password"
    assert session.get("/console/participants").headers["Location"] == "/console/password"
    wrong = session.post(
        "/console/password",
        {"current_password": "nope", "new_password": "a brand new long password"},
        page="/console/password",
    )
    assert wrong.status_code == 401 and "This is not your current password." in _text(wrong)
    done = session.post(
        "/console/password",
        {"current_password": PASSWORD, "new_password": "a brand new long password"},
        page="/console/password",
    )
    assert done.status_code == 303
    assert session.get("/console/participants").status_code == 200
    assert ConsoleSession(app).login(staff.email, "a brand new long password").status_code == 303


def test_password_change_ends_other_console_sessions(app, coordinator):
    first, second = ConsoleSession(app), ConsoleSession(app)
    first.login(coordinator.email)
    second.login(coordinator.email)
    first.post(
        "/console/password",
        {"current_password": PASSWORD, "new_password": "another long password here"},
        page="/console/password",
    )
    assert first.get("/console/").status_code == 200
    assert second.get("/console/").status_code == 302
