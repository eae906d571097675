"""Every endpoint, every role, own and other site: access rules checked from one table.

`ENDPOINTS` must name every route the app serves: adding an endpoint without an entry
fails `test_every_endpoint_has_an_entry`. For each entry the test checks that
- a call without a token is 401 (unless the endpoint is public),
- every role not allowed gets 403,
- the roles the view declares (`@blp.auth(...)`) are exactly the ones listed here,
- for a `scoped` endpoint, a coordinator of another site gets 404 (never 403), and a
  participant reaching for another participant's data gets 404,
- every allowed role at its own site gets past the access rules (no 401/403/404/500).

To add an endpoint: one `Rule` with its allowed roles; `scoped=True` when it concerns a
participant (path or `site` query); `path(world, who)` returns extra path parameters
(creating what they point at for participant `who`), `body(world, who)` a valid body,
`query(world, who)` query parameters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from api.models import Participant, StaffUser
from tests.helpers import PASSWORD, Factory

PUBLIC = ("anyone",)
PARTICIPANT = ("participant",)
STAFF = ("coordinator", "monitor", "admin")
WRITERS = ("coordinator", "admin")
ROLES = ("participant", "coordinator", "monitor", "admin")
IGNORED_ENDPOINTS = {"static", "api-docs.openapi_json"}
# The console's pages sign in with a cookie session, not a bearer token: their access by
# role and site (404 across sites, 403 for monitors' writes) is tested in test_console*.py.
IGNORED_BLUEPRINTS = ("console.",)
MISSING_ID = 2**31 - 7  # a valid id that no test makes
MISSING_SITE = "ZZ999"


@dataclass
class World:
    """Two sites' worth of people: BJ302 is "own", LZU1 is "other"."""

    factory: Factory
    own: Participant
    other: Participant
    staff: dict[str, StaffUser]
    other_coordinator: StaffUser
    cache: dict[str, Any] = field(default_factory=dict)

    def site_code(self, who: Participant) -> str:
        if who.id == self.own.id:
            return "BJ302"
        return "LZU1" if who.id == self.other.id else MISSING_SITE


Builder = Callable[[World, Participant], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    allowed: tuple[str, ...]
    scoped: bool = False
    path: Builder | None = None
    body: Builder | None = None
    query: Builder | None = None


def _enrolment(world: World, who: Participant) -> dict[str, Any]:
    return {
        "site": world.site_code(who),
        "arm": "control",
        "enrolled_on": "2026-01-05",
        "timezone": "Asia/Shanghai",
        "locale": "en",
    }


def _site_query(world: World, who: Participant) -> dict[str, Any]:
    return {"site": world.site_code(who)}


def _diary_entry(world: World, who: Participant) -> dict[str, Any]:
    """A valid diary entry for today (the participant's local day)."""
    from zoneinfo import ZoneInfo

    today = world.factory.clock().astimezone(ZoneInfo(who.timezone)).date()
    return {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": today.isoformat(),
        "abdominal_distension": 1,
        "decreased_appetite": 1,
        "debilitation": 1,
        "leg_edema": 0,
        "discomfort_grade": 1,
        "recorded_at": world.factory.clock().isoformat(),
    }


def _staff_diary_entry(world: World, who: Participant) -> dict[str, Any]:
    return {**_diary_entry(world, who), "reason": "paper diary"}


def _entry_path(world: World, who: Participant) -> dict[str, Any]:
    """An entry of `who`'s, made once per test through the phone endpoint."""
    key = f"entry:{who.id}"
    if key not in world.cache:
        made = world.factory.as_(who).post(
            "/api/v1/me/diary-entries", json=_diary_entry(world, who)
        )
        assert made.status_code == 201, made.json
        world.cache[key] = made.json["id"]
    return {"entry_id": world.cache[key]}


def _in_app(world: World, make: Callable[[], int]) -> int:
    with world.factory.app.app_context():
        from api.extensions import db

        made = make()
        db.session.commit()
        return made


def _event_path(world: World, who: Participant) -> dict[str, Any]:
    """The first lab visit of `who`'s schedule."""
    from sqlalchemy import select

    from api.models import ScheduleEvent

    event_id = world.factory.scalar(
        select(ScheduleEvent.id).where(
            ScheduleEvent.participant_id == who.id,
            ScheduleEvent.kind == "lab_visit",
            ScheduleEvent.number == 1,
        )
    )
    return {"event_id": event_id}


def _alert_path(world: World, who: Participant) -> dict[str, Any]:
    """A missed-diary alert of `who`'s, raised once per test."""
    key = f"alert:{who.id}"
    if key not in world.cache:

        def make() -> int:
            from api.clock import utcnow
            from api.extensions import db
            from api.models import Participant as Model
            from api.services.alerts import raise_alert

            participant = db.session.get(Model, who.id)
            alert = raise_alert(participant, "missed_diary", f"matrix:{who.id}", utcnow())
            assert alert is not None
            return alert.id

        world.cache[key] = _in_app(world, make)
    return {"alert_id": world.cache[key]}


def _adverse_event(world: World, who: Participant) -> dict[str, Any]:
    return {
        "term": "Ascites",
        "onset_date": who.enrolled_on.isoformat(),
        "grade": 2,
        "relation_to_infusion": "unlikely",
        "outcome": "recovering",
    }


def _adverse_event_path(world: World, who: Participant) -> dict[str, Any]:
    """An adverse event of `who`'s, recorded once per test."""
    key = f"ae:{who.id}"
    if key not in world.cache:

        def make() -> int:
            from api.extensions import db
            from api.models import Participant as Model
            from api.services.adverse_events import record

            participant = db.session.get(Model, who.id)
            staff = world.staff["coordinator"]
            values = {**_adverse_event(world, who), "onset_date": who.enrolled_on}
            return record(("staff", staff.id), participant, values).id

        world.cache[key] = _in_app(world, make)
    return {"ae_id": world.cache[key]}


def _device_path(world: World, who: Participant) -> dict[str, Any]:
    """A phone of `who`'s, registered once per test through the phone endpoint."""
    key = f"device:{who.id}"
    if key not in world.cache:
        made = world.factory.as_(who).post(
            "/api/v1/me/devices", json={"token": f"matrix-token-{who.id}", "platform": "ios"}
        )
        assert made.status_code == 201, made.json
        world.cache[key] = made.json["id"]
    return {"device_id": world.cache[key]}


def _notification_path(world: World, who: Participant) -> dict[str, Any]:
    """A reminder sent to `who`, stored once per test."""
    key = f"notification:{who.id}"
    if key not in world.cache:

        def make() -> int:
            from datetime import timedelta

            from api.clock import utcnow
            from api.extensions import db
            from api.models import Reminder

            now = utcnow()
            reminder = Reminder(
                participant_id=who.id,
                kind="diary",
                target=f"diary:{now.date().isoformat()}",
                target_date=now.date(),
                offset_days=0,
                due_at=now,
                expires_at=now + timedelta(hours=4),
                status="sent",
                attempts=1,
                sent_at=now,
                created_at=now,
                updated_at=now,
            )
            db.session.add(reminder)
            db.session.flush()
            return reminder.id

        world.cache[key] = _in_app(world, make)
    return {"reminder_id": world.cache[key]}


def _staff_path(world: World, who: Participant) -> dict[str, Any]:
    """A coordinator account for the admin routes to read and change, made once per test."""
    if "staff" not in world.cache:
        world.cache["staff"] = world.factory.staff("coordinator", sites=("BJ302",)).id
    return {"staff_id": world.cache["staff"]}


def _new_staff(world: World, who: Participant) -> dict[str, Any]:
    email = f"new-{uuid.uuid4().hex[:8]}@example.org"
    return {"email": email, "role": "monitor", "password": "a first password"}


ENDPOINTS: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    # Guarded by METRICS_TOKEN / METRICS_ALLOW, not by role: the test client is loopback.
    # tests/test_operations.py proves the refusals.
    ("GET", "/metrics"): Rule(PUBLIC),
    ("GET", "/api/v1/docs"): Rule(PUBLIC),
    ("GET", "/api/v1/docs/<path:filename>"): Rule(
        PUBLIC, path=lambda w, p: {"filename": "swagger-ui.css"}
    ),
    ("POST", "/api/v1/auth/staff/login"): Rule(
        PUBLIC, body=lambda w, p: {"email": "x@example.org", "password": "x"}
    ),
    ("POST", "/api/v1/auth/participants/activate"): Rule(
        PUBLIC, body=lambda w, p: {"activation_code": "NOT-A-REAL-CODE"}
    ),
    ("POST", "/api/v1/auth/refresh"): Rule(
        PUBLIC, body=lambda w, p: {"refresh_token": "not-a-real-refresh-token"}
    ),
    ("POST", "/api/v1/auth/logout"): Rule(
        PUBLIC, body=lambda w, p: {"refresh_token": "not-a-real-refresh-token"}
    ),
    ("GET", "/api/v1/sites"): Rule(STAFF),
    ("GET", "/api/v1/participants"): Rule(STAFF, scoped=True, query=_site_query),
    ("POST", "/api/v1/participants"): Rule(WRITERS, scoped=True, body=_enrolment),
    ("GET", "/api/v1/participants/<int:participant_id>"): Rule(STAFF, scoped=True),
    ("PATCH", "/api/v1/participants/<int:participant_id>"): Rule(
        WRITERS, scoped=True, body=lambda w, p: {"locale": "en"}
    ),
    ("POST", "/api/v1/participants/<int:participant_id>/activation-code"): Rule(
        WRITERS, scoped=True, body=lambda w, p: {"reason": "lost phone"}
    ),
    ("GET", "/api/v1/compliance"): Rule(STAFF, scoped=True, query=_site_query),
    ("GET", "/api/v1/participants/<int:participant_id>/compliance"): Rule(STAFF, scoped=True),
    ("GET", "/api/v1/participants/<int:participant_id>/excused-days"): Rule(STAFF, scoped=True),
    ("POST", "/api/v1/participants/<int:participant_id>/excused-days"): Rule(
        ("coordinator",),
        scoped=True,
        body=lambda w, p: {
            "from": p.enrolled_on.isoformat(),
            "to": p.enrolled_on.isoformat(),
            "reason": "hospital stay",
        },
    ),
    ("GET", "/api/v1/me/diary-entries"): Rule(PARTICIPANT),
    ("POST", "/api/v1/me/diary-entries"): Rule(PARTICIPANT, body=_diary_entry),
    ("POST", "/api/v1/me/diary-entries/sync"): Rule(
        PARTICIPANT, body=lambda w, p: {"entries": [_diary_entry(w, p)]}
    ),
    ("GET", "/api/v1/me/diary-entries/<int:entry_id>"): Rule(
        PARTICIPANT, scoped=True, path=_entry_path
    ),
    ("PATCH", "/api/v1/me/diary-entries/<int:entry_id>"): Rule(
        PARTICIPANT, scoped=True, path=_entry_path, body=lambda w, p: {"leg_edema": 2}
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/diary-entries"): Rule(STAFF, scoped=True),
    ("POST", "/api/v1/participants/<int:participant_id>/diary-entries"): Rule(
        WRITERS, scoped=True, body=_staff_diary_entry
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/diary-entries/<int:entry_id>"): Rule(
        STAFF, scoped=True, path=_entry_path
    ),
    ("PATCH", "/api/v1/participants/<int:participant_id>/diary-entries/<int:entry_id>"): Rule(
        WRITERS,
        scoped=True,
        path=_entry_path,
        body=lambda w, p: {"leg_edema": 3, "reason": "data query"},
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/schedule"): Rule(STAFF, scoped=True),
    ("PATCH", "/api/v1/participants/<int:participant_id>/schedule/<int:event_id>"): Rule(
        ("coordinator",),
        scoped=True,
        path=_event_path,
        body=lambda w, p: {"actual_date": p.enrolled_on.isoformat()},
    ),
    ("GET", "/api/v1/me/schedule"): Rule(PARTICIPANT),
    ("GET", "/api/v1/alerts"): Rule(STAFF, scoped=True, query=_site_query),
    ("GET", "/api/v1/alerts/<int:alert_id>"): Rule(STAFF, scoped=True, path=_alert_path),
    ("POST", "/api/v1/alerts/<int:alert_id>/acknowledge"): Rule(
        ("coordinator",), scoped=True, path=_alert_path, body=lambda w, p: {"note": "seen"}
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/adverse-events"): Rule(STAFF, scoped=True),
    ("POST", "/api/v1/participants/<int:participant_id>/adverse-events"): Rule(
        ("coordinator",), scoped=True, body=_adverse_event
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/adverse-events/<int:ae_id>"): Rule(
        STAFF, scoped=True, path=_adverse_event_path
    ),
    ("PATCH", "/api/v1/participants/<int:participant_id>/adverse-events/<int:ae_id>"): Rule(
        ("coordinator",),
        scoped=True,
        path=_adverse_event_path,
        body=lambda w, p: {"grade": 3, "reason": "graded again"},
    ),
    ("GET", "/api/v1/exports/diary-entries.csv"): Rule(STAFF, scoped=True, query=_site_query),
    ("GET", "/api/v1/exports/odm.xml"): Rule(STAFF, scoped=True, query=_site_query),
    ("GET", "/api/v1/exports/sdtm.zip"): Rule(STAFF, scoped=True, query=_site_query),
    ("GET", "/api/v1/exports/fhir/<string:resource_type>.ndjson"): Rule(
        STAFF,
        scoped=True,
        path=lambda w, p: {"resource_type": "QuestionnaireResponse"},
        query=_site_query,
    ),
    ("GET", "/api/v1/reports/symptoms"): Rule(("monitor", "admin"), query=_site_query),
    ("GET", "/api/v1/reports/symptoms.csv"): Rule(("monitor", "admin"), query=_site_query),
    ("GET", "/api/v1/me"): Rule(PARTICIPANT),
    ("PATCH", "/api/v1/me"): Rule(PARTICIPANT, body=lambda w, p: {"locale": "en"}),
    ("GET", "/api/v1/me/devices"): Rule(PARTICIPANT),
    ("POST", "/api/v1/me/devices"): Rule(
        PARTICIPANT, body=lambda w, p: {"token": f"matrix-new-{p.id}", "platform": "android"}
    ),
    ("DELETE", "/api/v1/me/devices/<int:device_id>"): Rule(
        PARTICIPANT, scoped=True, path=_device_path
    ),
    ("GET", "/api/v1/me/notifications"): Rule(PARTICIPANT),
    ("POST", "/api/v1/me/notifications/<int:reminder_id>/opened"): Rule(
        PARTICIPANT, scoped=True, path=_notification_path
    ),
    ("GET", "/api/v1/participants/<int:participant_id>/reminders"): Rule(STAFF, scoped=True),
    ("GET", "/api/v1/staff"): Rule(("admin",)),
    ("POST", "/api/v1/staff"): Rule(("admin",), body=_new_staff),
    ("GET", "/api/v1/staff/<int:staff_id>"): Rule(("admin",), path=_staff_path),
    ("PATCH", "/api/v1/staff/<int:staff_id>"): Rule(
        ("admin",), path=_staff_path, body=lambda w, p: {"sites": ["LZU1"], "reason": "moved"}
    ),
    ("POST", "/api/v1/auth/staff/password"): Rule(
        STAFF,
        body=lambda w, p: {"current_password": PASSWORD, "new_password": "a new long password"},
    ),
}


def _routes(app: Flask) -> dict[tuple[str, str], str]:
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in IGNORED_ENDPOINTS or rule.endpoint.startswith(IGNORED_BLUEPRINTS):
            continue
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                found[(method, rule.rule)] = rule.endpoint
    return found


def _declared_roles(app: Flask, endpoint: str, method: str) -> tuple[str, ...] | None:
    view = app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    target = getattr(view_class, method.lower(), None) if view_class else view
    return getattr(target, "_allowed_roles", None)


def test_every_endpoint_has_an_entry(app):
    served = set(_routes(app))
    missing = sorted(served - set(ENDPOINTS))
    stale = sorted(set(ENDPOINTS) - served)
    assert not missing, f"add these endpoints to ENDPOINTS: {missing}"
    assert not stale, f"ENDPOINTS names routes the app no longer serves: {stale}"


def test_views_declare_the_roles_of_the_table(app):
    mismatched = {}
    for (method, rule), endpoint in _routes(app).items():
        if rule in {"/healthz", "/readyz", "/metrics"}:
            continue
        declared = _declared_roles(app, endpoint, method)
        if declared is None or set(declared) != set(ENDPOINTS[(method, rule)].allowed):
            mismatched[f"{method} {rule}"] = declared
    assert not mismatched, f"view roles differ from the table: {mismatched}"


@pytest.fixture
def world(factory: Factory) -> World:
    return make_world(factory)


def make_world(factory: Factory) -> World:
    """Staff of every role at BJ302, one participant there and one at LZU1 (other site)."""
    staff = {
        "coordinator": factory.staff("coordinator", sites=("BJ302",)),
        "monitor": factory.staff("monitor", sites=()),
        "admin": factory.staff("admin", sites=()),
    }
    return World(
        factory=factory,
        own=factory.participant(site="BJ302"),
        other=factory.participant(site="LZU1"),
        staff=staff,
        other_coordinator=factory.staff("coordinator", sites=("LZU1",)),
    )


def _url(rule: str, world: World, who: Participant, spec: Rule) -> str:
    params = {"participant_id": who.id}
    if spec.path:
        params.update(spec.path(world, who))

    def fill(match: re.Match[str]) -> str:
        return str(params[match.group(1)])

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", fill, rule)


def _call(world: World, caller: Any, method: str, rule: str, spec: Rule, target: Participant):
    return _prepared(world, caller, method, rule, spec, target)()


def _prepared(
    world: World, caller: Any, method: str, rule: str, spec: Rule, target: Participant
) -> Callable[[], Any]:
    """The call, ready to send: what its path, query and body point at is made now."""
    client = world.factory.as_(caller)
    url = _url(rule, world, target, spec)
    query = spec.query(world, target) if spec.query else None
    body = spec.body(world, target) if spec.body else None
    kwargs: dict[str, Any] = {"query_string": query}
    if method in {"POST", "PATCH", "PUT"}:
        kwargs["json"] = body if body is not None else {}
    if method == "PATCH":
        kwargs["headers"] = {"If-Match": "*"}
    headers = {**client._headers(None), **kwargs.pop("headers", {})}
    return lambda: getattr(client.client, method.lower())(url, headers=headers, **kwargs)


def _caller(world: World, role: str) -> Any:
    return world.own if role == "participant" else world.staff[role]


CASES = sorted(ENDPOINTS.items())


@pytest.mark.parametrize(("key", "spec"), CASES, ids=[f"{m} {r}" for (m, r), _ in CASES])
def test_access(world: World, key: tuple[str, str], spec: Rule):
    method, rule = key
    if spec.allowed != PUBLIC:
        anonymous = _call(world, None, method, rule, spec, world.own)
        assert anonymous.status_code == 401, anonymous.json
        assert anonymous.json["error"] in {"missing_token", "unauthorized"}
    for role in ROLES:
        response = _call(world, _caller(world, role), method, rule, spec, world.own)
        if spec.allowed != PUBLIC and role not in spec.allowed:
            assert response.status_code == 403, (role, response.json)
            continue
        # A public endpoint's own answer may be 401 (bad credentials); never a role refusal.
        refused = {403, 404, 405, 500} if spec.allowed == PUBLIC else {401, 403, 404, 405, 500}
        assert response.status_code not in refused, (role, response.json)
    if spec.scoped and "coordinator" in spec.allowed:
        response = _call(world, world.other_coordinator, method, rule, spec, world.own)
        assert response.status_code == 404, response.json
    if spec.scoped and "participant" in spec.allowed:
        response = _call(world, world.own, method, rule, spec, world.other)
        assert response.status_code == 404, response.json


READS = [(key, spec) for key, spec in CASES if key[0] == "GET"]
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|UPSERT|MERGE)\b", re.IGNORECASE)


@pytest.mark.parametrize(("key", "spec"), READS, ids=[f"{m} {r}" for (m, r), _ in READS])
def test_reads_write_nothing(app: Flask, world: World, key: tuple[str, str], spec: Rule):
    """No GET writes, for any role allowed: on SQLite a GET begins a deferred transaction
    (`api/sqlite.py`), which a write would have to upgrade, failing under concurrency."""
    from sqlalchemy import event

    from api.extensions import db

    method, rule = key
    written: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if WRITES.match(statement):
            written.append(statement)

    with app.app_context():
        engine = db.engine
    for role in spec.allowed if spec.allowed != PUBLIC else ("participant",):
        send = _prepared(world, _caller(world, role), method, rule, spec, world.own)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            response = send()
            response.get_data()  # a streamed export reads as it is sent
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert response.status_code < 400, (role, response.status_code)
        assert not written, (role, written)


# Probing gets nothing: what a caller learns about another site's participant, or anything
# of theirs, is exactly what it learns about an id that does not exist.
IGNORED_HEADERS = {"date", "x-request-id"}


def _answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (but the request id and date) and body bytes of a response.

    The error body names the request id; it is replaced by a placeholder, so the rest of
    the body is compared byte for byte.
    """
    headers = sorted(
        (k.lower(), v) for k, v in response.headers if k.lower() not in IGNORED_HEADERS
    )
    body = response.get_data()
    request_id = response.headers.get("X-Request-ID")
    if request_id:
        body = body.replace(request_id.encode(), b"<request-id>")
    return response.status_code, headers, body


def _probe(
    world: World,
    caller: Any,
    method: str,
    rule: str,
    spec: Rule,
    target: Participant,
    params: dict[str, Any],
) -> tuple[int, list[tuple[str, str]], bytes]:
    def fill(match: re.Match[str]) -> str:
        return str(params[match.group(1)])

    url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", fill, rule)
    kwargs: dict[str, Any] = {"query_string": spec.query(world, target) if spec.query else None}
    if method in {"POST", "PATCH", "PUT"}:
        kwargs["json"] = spec.body(world, target) if spec.body else {}
    headers = world.factory.as_(caller)._headers(None)
    if method == "PATCH":
        headers["If-Match"] = "*"
    return _answer(getattr(world.factory.client, method.lower())(url, headers=headers, **kwargs))


def _ghost(like: Participant) -> Participant:
    """A participant that does not exist (its site code does not either)."""
    return Participant(
        id=MISSING_ID, enrolled_on=like.enrolled_on, timezone=like.timezone, locale=like.locale
    )


SCOPED = [(key, spec) for key, spec in CASES if spec.scoped]


@pytest.mark.parametrize(("key", "spec"), SCOPED, ids=[f"{m} {r}" for (m, r), _ in SCOPED])
def test_probing_gets_nothing(world: World, key: tuple[str, str], spec: Rule):
    """Another site's (or participant's) things answer byte for byte as missing ids do:
    every id of the path in turn, all of them, an unknown site code, and (staff routes)
    the caller's own participant with the other's nested ids."""
    method, rule = key
    # Ids are what a prober guesses; a path word such as a FHIR resource type is not.
    names = re.findall(r"<int:([a-z_]+)>", rule)
    probers = []
    if "coordinator" in spec.allowed:
        probers.append((world.other_coordinator, world.own, world.other))
    if "participant" in spec.allowed:
        probers.append((world.own, world.other, None))
    assert probers, "a scoped endpoint is for coordinators or participants"
    for caller, target, home in probers:
        theirs = {"participant_id": target.id, **(spec.path(world, target) if spec.path else {})}
        probed = _probe(world, caller, method, rule, spec, target, theirs)
        assert probed[0] == 404, probed
        variants = {"everything missing": {**theirs, **{name: MISSING_ID for name in names}}}
        for name in names:
            variants[f"{name} missing"] = {**theirs, name: MISSING_ID}
        for label, params in variants.items():
            target_or_ghost = _ghost(target) if label == "everything missing" else target
            missing = _probe(world, caller, method, rule, spec, target_or_ghost, params)
            assert missing == probed, (label, missing, probed)
        nested = [name for name in names if name != "participant_id"]
        if home is not None and nested and "participant_id" in names:
            mine = {**theirs, "participant_id": home.id}
            crossed = _probe(world, caller, method, rule, spec, home, mine)
            assert crossed[0] == 404, crossed
            absent = {**mine, **{name: MISSING_ID for name in nested}}
            assert _probe(world, caller, method, rule, spec, home, absent) == crossed


def _symptom_alert(world: World, who: Participant) -> int:
    def make() -> int:
        from api.clock import utcnow
        from api.extensions import db
        from api.models import Participant as Model
        from api.services.alerts import raise_alert

        participant = db.session.get(Model, who.id)
        alert = raise_alert(participant, "symptom", f"matrix-symptom:{who.id}", utcnow())
        assert alert is not None
        return alert.id

    return _in_app(world, make)


def test_ids_in_bodies_and_filters_probe_nothing(world: World):
    """Ids of another site's things named in a body or a filter answer as missing ids."""
    coordinator = world.factory.as_(world.staff["coordinator"])
    theirs_entry = _entry_path(world, world.other)["entry_id"]
    theirs_ae = _adverse_event_path(world, world.other)["ae_id"]
    ae_url = f"/api/v1/participants/{world.own.id}/adverse-events"
    own_ae = _adverse_event_path(world, world.own)["ae_id"]
    alert_id = _symptom_alert(world, world.own)

    def pair(theirs: int, send: Callable[[int], Any]) -> None:
        probed, missing = _answer(send(theirs)), _answer(send(MISSING_ID))
        assert probed[0] < 500 and probed == missing, (probed, missing)

    for theirs, send in (
        (
            theirs_entry,
            lambda i: coordinator.post(
                ae_url, json={**_adverse_event(world, world.own), "diary_entry_id": i}
            ),
        ),
        (
            theirs_entry,
            lambda i: coordinator.patch(
                f"{ae_url}/{own_ae}",
                json={"diary_entry_id": i, "reason": "linked"},
                headers={"If-Match": "*"},
            ),
        ),
        (
            theirs_ae,
            lambda i: coordinator.post(
                f"/api/v1/alerts/{alert_id}/acknowledge",
                json={"note": "seen", "decision": "adverse_event_recorded", "adverse_event_id": i},
            ),
        ),
        (world.other.id, lambda i: coordinator.get(f"/api/v1/alerts?participant_id={i}")),
    ):
        pair(theirs, send)
    by_code = [
        _answer(coordinator.get("/api/v1/participants", query_string={"study_code": code}))
        for code in (world.other.study_code, "LZU1-9999")
    ]
    assert by_code[0] == by_code[1] and by_code[0][0] == 200, by_code
