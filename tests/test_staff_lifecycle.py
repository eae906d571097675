"""Staff lifecycle through the admin API, the own-password route and the CLI.

Disabling ends every session at once; a reset password must be changed at the next
sign-in; role and site changes apply on the next request; the last active admin stays;
every change is audited; passwords are re-hashed at sign-in when argon2 parameters change.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text

from api.models import AuditEvent, StaffUser
from tests.helpers import PASSWORD

STAFF = "/api/v1/staff"
LOGIN = "/api/v1/auth/staff/login"
REFRESH = "/api/v1/auth/refresh"
OWN_PASSWORD = "/api/v1/auth/staff/password"
NEW_PASSWORD = "a brand new passphrase"


def login(client, email, password=PASSWORD):
    return client.post(LOGIN, json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def audit_rows(factory, staff_id, action=None):
    stmt = select(AuditEvent).where(
        AuditEvent.entity_type == "staff", AuditEvent.entity_id == staff_id
    )
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return factory.scalars(stmt.order_by(AuditEvent.id))


def stored(factory, staff_id) -> StaffUser:
    return factory.scalar(select(StaffUser).where(StaffUser.id == staff_id))


def staff_count(factory) -> int:
    return factory.scalar(select(func.count()).select_from(StaffUser))


# --- list, read, create ---------------------------------------------------------------


def test_admin_lists_and_reads_staff_without_password_hashes(factory):
    admin = factory.staff("admin", sites=())
    coordinator = factory.staff("coordinator", sites=("BJ302", "LZU1"))
    factory.staff("monitor", sites=())
    api = factory.as_(admin)

    listed = api.get(STAFF, query_string={"page_size": 2})
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json] == [admin.id, coordinator.id]
    assert json.loads(listed.headers["X-Pagination"])["total"] == 3
    assert "hash" not in listed.get_data(as_text=True)
    assert set(listed.json[1]) == {
        "id",
        "email",
        "role",
        "sites",
        "is_active",
        "must_change_password",
        "created_at",
        "last_sign_in_at",
    }
    assert listed.json[1]["sites"] == ["BJ302", "LZU1"]
    monitors = api.get(STAFF, query_string={"role": "monitor"}).json
    assert [s["role"] for s in monitors] == ["monitor"]

    one = api.get(f"{STAFF}/{coordinator.id}")
    assert one.status_code == 200 and one.json["email"] == coordinator.email
    assert api.get(f"{STAFF}/999999").status_code == 404


def test_an_account_made_by_an_admin_must_change_its_first_password(client, factory):
    admin = factory.staff("admin", sites=())
    made = factory.as_(admin).post(
        STAFF,
        json={
            "email": "New.Coord@Example.org",
            "role": "coordinator",
            "sites": ["BJ302"],
            "password": "first password 1",
        },
    )
    assert made.status_code == 201, made.json
    assert made.json["email"] == "new.coord@example.org"
    assert made.json["must_change_password"] is True
    (created,) = audit_rows(factory, made.json["id"], "staff.created")
    assert (created.actor_type, created.actor_id) == ("staff", admin.id)
    assert created.after["sites"] == ["BJ302"]

    pair = login(client, "new.coord@example.org", "first password 1").json
    blocked = client.get("/api/v1/sites", headers=bearer(pair["access_token"]))
    assert blocked.status_code == 403
    assert blocked.json["error"] == "password_change_required"
    changed = client.post(
        OWN_PASSWORD,
        json={"current_password": "first password 1", "new_password": NEW_PASSWORD},
        headers=bearer(pair["access_token"]),
    )
    assert changed.status_code == 200, changed.json
    sites = client.get("/api/v1/sites", headers=bearer(changed.json["access_token"]))
    assert sites.status_code == 200
    # Replaying the creation is a conflict, not a second account.
    again = factory.as_(admin).post(
        STAFF, json={"email": "new.coord@example.org", "role": "monitor", "password": "x" * 12}
    )
    assert again.status_code == 409 and again.json["error"] == "staff_exists"


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"email": "a@example.org", "role": "monitor", "password": "short"}, "password", None),
        ({"email": "not-an-email", "role": "monitor", "password": "x" * 12}, "email", None),
        ({"email": "a@example.org", "role": "superuser", "password": "x" * 12}, "role", None),
        ({"email": "a@example.org", "role": "monitor", "password": "x" * 12, "x": 1}, "x", None),
        ({"email": "a@example.org", "role": "monitor"}, "password", None),
        # Well-formed, refused by a rule: 409 with the rule's code, naming the field.
        (
            {"email": "a@example.org", "role": "coordinator", "password": "x" * 12},
            "sites",
            "sites_required",
        ),
        (
            {"email": "a@example.org", "role": "monitor", "sites": ["BJ302"], "password": "x" * 12},
            "sites",
            "sites_not_allowed",
        ),
        (
            {
                "email": "a@example.org",
                "role": "coordinator",
                "sites": ["NOPE"],
                "password": "x" * 12,
            },
            "sites",
            "unknown_site",
        ),
    ],
)
def test_creation_refuses_bad_input_naming_the_field(factory, body, field, error):
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).post(STAFF, json=body)
    assert response.status_code == (409 if error else 422), response.json
    assert response.json["error"] == (error or "validation_failed")
    assert field in response.json["errors"]
    assert staff_count(factory) == 1


# --- disable and enable ---------------------------------------------------------------


def test_disabling_ends_every_session_at_once_and_enabling_lets_them_sign_in(client, factory):
    admin = factory.staff("admin", sites=())
    person = factory.staff("coordinator", sites=("BJ302",))
    phone, laptop = login(client, person.email).json, login(client, person.email).json

    disabled = factory.as_(admin).patch(
        f"{STAFF}/{person.id}", json={"is_active": False, "reason": "left the study team"}
    )
    assert disabled.status_code == 200 and disabled.json["is_active"] is False
    for pair in (phone, laptop):
        refused = client.get("/api/v1/sites", headers=bearer(pair["access_token"]))
        assert refused.status_code == 401 and refused.json["error"] == "session_revoked"
        refresh = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert refresh.status_code == 401
    assert login(client, person.email).json["error"] == "invalid_credentials"

    (row,) = audit_rows(factory, person.id, "staff.disabled")
    assert (row.actor_type, row.actor_id, row.reason) == ("staff", admin.id, "left the study team")
    assert row.before["is_active"] is True and row.after["is_active"] is False

    # A replay changes nothing and writes nothing.
    replay = factory.as_(admin).patch(
        f"{STAFF}/{person.id}", json={"is_active": False, "reason": "left the study team"}
    )
    assert replay.status_code == 200
    assert len(audit_rows(factory, person.id, "staff.disabled")) == 1

    enabled = factory.as_(admin).patch(
        f"{STAFF}/{person.id}", json={"is_active": True, "reason": "came back"}
    )
    assert enabled.status_code == 200 and enabled.json["is_active"] is True
    assert len(audit_rows(factory, person.id, "staff.enabled")) == 1
    fresh = login(client, person.email)
    assert fresh.status_code == 200
    assert (
        client.get("/api/v1/sites", headers=bearer(fresh.json["access_token"])).status_code == 200
    )
    # The sessions ended by the disabling stay ended.
    assert client.post(REFRESH, json={"refresh_token": phone["refresh_token"]}).status_code == 401


# --- own password ---------------------------------------------------------------------


def test_own_password_change_needs_the_current_one_and_ends_other_sessions(client, factory):
    person = factory.staff("monitor", sites=())
    other, mine = login(client, person.email).json, login(client, person.email).json

    wrong = client.post(
        OWN_PASSWORD,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=bearer(mine["access_token"]),
    )
    assert wrong.status_code == 401
    assert wrong.json["error"] == "wrong_password" and "current_password" in wrong.json["errors"]
    short = client.post(
        OWN_PASSWORD,
        json={"current_password": PASSWORD, "new_password": "too short"},
        headers=bearer(mine["access_token"]),
    )
    assert short.status_code == 422 and list(short.json["errors"]) == ["new_password"]
    same = client.post(
        OWN_PASSWORD,
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=bearer(mine["access_token"]),
    )
    assert same.status_code == 409 and same.json["error"] == "password_unchanged"
    assert "new_password" in same.json["errors"]
    # Nothing was written by the refusals.
    assert login(client, person.email).status_code == 200
    assert audit_rows(factory, person.id) == []

    changed = client.post(
        OWN_PASSWORD,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(mine["access_token"]),
    )
    assert changed.status_code == 200, changed.json
    assert set(changed.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    for pair in (other, mine):
        assert client.get("/api/v1/sites", headers=bearer(pair["access_token"])).status_code == 401
        assert (
            client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401
        )
    assert (
        client.get("/api/v1/sites", headers=bearer(changed.json["access_token"])).status_code == 200
    )
    assert login(client, person.email).status_code == 401
    assert login(client, person.email, NEW_PASSWORD).status_code == 200

    (row,) = audit_rows(factory, person.id, "staff.password_changed")
    assert (row.actor_type, row.actor_id) == ("staff", person.id)
    assert NEW_PASSWORD not in json.dumps([row.before, row.after])
    assert "$argon2" not in json.dumps([row.before, row.after])

    # A replay of the same change: the "current" password is no longer current.
    replay = client.post(
        OWN_PASSWORD,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(changed.json["access_token"]),
    )
    assert replay.status_code == 401 and replay.json["error"] == "wrong_password"


def test_wrong_current_passwords_are_throttled_like_sign_ins(client, factory):
    person = factory.staff("monitor", sites=())
    token = login(client, person.email).json["access_token"]
    body = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    for _ in range(5):
        assert client.post(OWN_PASSWORD, json=body, headers=bearer(token)).status_code == 401
    limited = client.post(OWN_PASSWORD, json=body, headers=bearer(token))
    assert limited.status_code == 429 and limited.json["error"] == "too_many_attempts"
    assert int(limited.headers["Retry-After"]) > 0
    # The same counters as the sign-in: this client waits there too, the owner elsewhere not.
    assert login(client, person.email).status_code == 429
    elsewhere = client.post(
        LOGIN,
        json={"email": person.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert elsewhere.status_code == 200


# --- admin reset ----------------------------------------------------------------------


def test_an_admin_reset_ends_sessions_and_forces_a_change_at_next_sign_in(client, factory):
    admin = factory.staff("admin", sites=())
    person = factory.staff("coordinator", sites=("BJ302",))
    old = login(client, person.email).json

    reset = factory.as_(admin).patch(
        f"{STAFF}/{person.id}",
        json={"password": "temporary password", "reason": "forgot the password"},
    )
    assert reset.status_code == 200 and reset.json["must_change_password"] is True
    assert client.get("/api/v1/sites", headers=bearer(old["access_token"])).status_code == 401
    assert client.post(REFRESH, json={"refresh_token": old["refresh_token"]}).status_code == 401
    assert login(client, person.email).status_code == 401

    pair = login(client, person.email, "temporary password").json
    for method, url in (("get", "/api/v1/sites"), ("get", "/api/v1/participants")):
        blocked = getattr(client, method)(url, headers=bearer(pair["access_token"]))
        assert blocked.status_code == 403 and blocked.json["error"] == "password_change_required"
    # A refreshed token is still only good for the change.
    refreshed = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).json
    blocked = client.get("/api/v1/sites", headers=bearer(refreshed["access_token"]))
    assert blocked.json["error"] == "password_change_required"

    changed = client.post(
        OWN_PASSWORD,
        json={"current_password": "temporary password", "new_password": NEW_PASSWORD},
        headers=bearer(refreshed["access_token"]),
    )
    assert changed.status_code == 200
    assert stored(factory, person.id).must_change_password is False
    assert (
        client.get("/api/v1/sites", headers=bearer(changed.json["access_token"])).status_code == 200
    )

    (row,) = audit_rows(factory, person.id, "staff.password_reset")
    assert (row.actor_id, row.reason) == (admin.id, "forgot the password")
    assert row.after["must_change_password"] is True
    assert "temporary password" not in json.dumps([row.before, row.after])


def test_an_admin_resets_no_own_password_through_the_admin_route(factory):
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).patch(
        f"{STAFF}/{admin.id}", json={"password": "another password", "reason": "mine"}
    )
    assert response.status_code == 409 and response.json["error"] == "own_password_reset"


# --- role and sites -------------------------------------------------------------------


def test_role_and_site_changes_are_audited_and_apply_on_the_next_request(factory):
    admin = factory.staff("admin", sites=())
    person = factory.staff("coordinator", sites=("BJ302",))
    beijing, lanzhou = factory.participant(site="BJ302"), factory.participant(site="LZU1")
    as_person = factory.as_(person)  # one token, kept across the changes
    assert as_person.get(f"/api/v1/participants/{beijing.id}").status_code == 200
    assert as_person.get(f"/api/v1/participants/{lanzhou.id}").status_code == 404

    moved = factory.as_(admin).patch(
        f"{STAFF}/{person.id}", json={"sites": ["LZU1"], "reason": "moved to Lanzhou"}
    )
    assert moved.status_code == 200 and moved.json["sites"] == ["LZU1"]
    assert as_person.get(f"/api/v1/participants/{beijing.id}").status_code == 404
    assert as_person.get(f"/api/v1/participants/{lanzhou.id}").status_code == 200

    promoted = factory.as_(admin).patch(
        f"{STAFF}/{person.id}", json={"role": "admin", "reason": "new data manager"}
    )
    assert promoted.status_code == 200
    assert promoted.json["role"] == "admin" and promoted.json["sites"] == []
    assert as_person.get(STAFF).status_code == 200
    assert as_person.get(f"/api/v1/participants/{beijing.id}").status_code == 200

    demoted = factory.as_(admin).patch(
        f"{STAFF}/{person.id}",
        json={"role": "coordinator", "sites": ["TJSH"], "reason": "back to a site"},
    )
    assert demoted.status_code == 200 and demoted.json["sites"] == ["TJSH"]
    assert as_person.get(STAFF).status_code == 403

    rows = audit_rows(factory, person.id, "staff.role_changed")
    assert [
        (r.before["role"], r.before["sites"], r.after["role"], r.after["sites"]) for r in rows
    ] == [
        ("coordinator", ["BJ302"], "coordinator", ["LZU1"]),
        ("coordinator", ["LZU1"], "admin", []),
        ("admin", [], "coordinator", ["TJSH"]),
    ]
    assert [r.reason for r in rows] == ["moved to Lanzhou", "new data manager", "back to a site"]


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"password": "too short", "is_active": False, "reason": "x" * 5}, "password", None),
        ({"role": "root", "is_active": False, "reason": "x" * 5}, "role", None),
        ({"is_active": False}, "reason", None),
        ({"is_active": False, "reason": "x"}, "reason", None),
        ({"is_active": "perhaps", "reason": "x" * 5}, "is_active", None),
        ({"is_active": False, "reason": "x" * 5, "email": "b@example.org"}, "email", None),
        ({"sites": ["BJ302", 7], "is_active": False, "reason": "x" * 5}, "sites", None),
        ({"role": "coordinator", "is_active": False, "reason": "x" * 5}, "sites", "sites_required"),
        ({"sites": ["BJ302"], "is_active": False, "reason": "x" * 5}, "sites", "sites_not_allowed"),
        (
            {"role": "coordinator", "sites": ["NOPE"], "is_active": False, "reason": "x" * 5},
            "sites",
            "unknown_site",
        ),
    ],
)
def test_changes_refuse_bad_input_naming_the_field_and_write_nothing(factory, body, field, error):
    admin = factory.staff("admin", sites=())
    person = factory.staff("monitor", sites=())
    response = factory.as_(admin).patch(f"{STAFF}/{person.id}", json=body)
    assert response.status_code == (409 if error else 422), response.json
    assert response.json["error"] == (error or "validation_failed")
    assert field in response.json["errors"]
    after = stored(factory, person.id)
    assert (after.is_active, after.role, after.auth_epoch) == (True, "monitor", 0)
    assert audit_rows(factory, person.id) == []


def test_a_change_to_nothing_new_writes_nothing(factory):
    admin = factory.staff("admin", sites=())
    person = factory.staff("coordinator", sites=("BJ302",))
    api = factory.as_(admin)
    for body in (
        {"reason": "nothing to change"},
        {"is_active": True, "role": "coordinator", "sites": ["BJ302"], "reason": "as is"},
    ):
        response = api.patch(f"{STAFF}/{person.id}", json=body)
        assert response.status_code == 200 and response.json["sites"] == ["BJ302"]
    assert stored(factory, person.id).auth_epoch == 0
    assert audit_rows(factory, person.id) == []


def test_an_unknown_account_is_404(factory):
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).patch(
        f"{STAFF}/424242", json={"is_active": False, "reason": "gone"}
    )
    assert response.status_code == 404 and response.json["error"] == "staff_not_found"


@pytest.mark.parametrize("role", ["participant", "coordinator", "monitor"])
def test_only_admins_reach_the_staff_routes(factory, role):
    target = factory.staff("monitor", sites=())
    who = (
        factory.participant()
        if role == "participant"
        else factory.staff(role, sites=("BJ302",) if role == "coordinator" else ())
    )
    api = factory.as_(who)
    calls = [
        api.get(STAFF),
        api.post(STAFF, json={"email": "z@example.org", "role": "monitor", "password": "x" * 12}),
        api.get(f"{STAFF}/{target.id}"),
        api.patch(f"{STAFF}/{target.id}", json={"is_active": False, "reason": "not mine"}),
    ]
    assert [c.status_code for c in calls] == [403] * 4
    assert stored(factory, target.id).is_active is True
    assert staff_count(factory) == (2 if role != "participant" else 1)


# --- the last admin -------------------------------------------------------------------


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(factory):
    admin = factory.staff("admin", sites=())
    retired = factory.staff("admin", sites=())
    factory.update(StaffUser, retired.id, is_active=False)
    api = factory.as_(admin)
    for body in (
        {"is_active": False, "reason": "leaving"},
        {"role": "monitor", "reason": "stepping down"},
        {"role": "coordinator", "sites": ["BJ302"], "reason": "stepping down"},
    ):
        refused = api.patch(f"{STAFF}/{admin.id}", json=body)
        assert refused.status_code == 409 and refused.json["error"] == "last_admin"
    assert stored(factory, admin.id).role == "admin"
    assert audit_rows(factory, admin.id) == []

    colleague = factory.staff("admin", sites=())
    stepped_down = api.patch(f"{STAFF}/{admin.id}", json={"role": "monitor", "reason": "handover"})
    assert stepped_down.status_code == 200
    last = factory.as_(colleague).patch(
        f"{STAFF}/{colleague.id}", json={"is_active": False, "reason": "leaving"}
    )
    assert last.status_code == 409 and last.json["error"] == "last_admin"


def _wait_until_blocked(app, timeout: float = 10.0) -> None:
    """Until some session of this database waits on a row lock (PostgreSQL)."""
    from api.extensions import db

    deadline = time.monotonic() + timeout
    with app.app_context(), db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second demotion never waited for the first")


@pytest.mark.postgres_only
def test_two_concurrent_demotions_of_the_two_last_admins_leave_one(app, factory):
    """The first demotion holds the admins' rows; the second waits, re-reads, is refused."""
    from api.extensions import db
    from api.services.staff import set_role

    first, second = factory.staff("admin", sites=()), factory.staff("admin", sites=())
    results: dict[str, int] = {}
    in_first = threading.Event()
    release = threading.Event()

    def demote_first() -> None:
        with app.app_context():
            set_role(("staff", second.id), first.id, "monitor", None, "stepping down")
            in_first.set()
            release.wait(10)
            db.session.commit()

    def demote_second() -> None:
        response = factory.as_(first).patch(
            f"{STAFF}/{second.id}", json={"role": "monitor", "reason": "stepping down"}
        )
        results["second"] = response.status_code
        results["error"] = response.json.get("error")

    one = threading.Thread(target=demote_first)
    one.start()
    assert in_first.wait(10)
    two = threading.Thread(target=demote_second)
    two.start()
    _wait_until_blocked(app)
    release.set()
    one.join(10)
    two.join(10)
    assert results == {"second": 409, "error": "last_admin"}
    admins = factory.scalars(
        select(StaffUser.id).where(StaffUser.role == "admin", StaffUser.is_active.is_(True))
    )
    assert admins == [second.id]


@pytest.mark.postgres_only
def test_racing_demotions_through_the_api_keep_an_admin(app, factory):
    first, second = factory.staff("admin", sites=()), factory.staff("admin", sites=())
    tokens = {first.id: factory.token(first), second.id: factory.token(second)}
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def demote(me: int, other: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.patch(
            f"{STAFF}/{other}",
            json={"is_active": False, "reason": "race"},
            headers=bearer(tokens[me]),
        )
        codes.append(response.status_code)

    threads = [
        threading.Thread(target=demote, args=(first.id, second.id)),
        threading.Thread(target=demote, args=(second.id, first.id)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The loser is refused as the last admin, or (disabled a moment before) as a revoked session.
    assert sorted(codes) in ([200, 401], [200, 409])
    active = factory.scalars(
        select(StaffUser.id).where(StaffUser.role == "admin", StaffUser.is_active.is_(True))
    )
    assert len(active) == 1


# --- sign-in: authenticate_staff, rehash ----------------------------------------------


def test_sign_in_rehashes_a_password_made_with_older_parameters(client, factory, clock):
    from api.auth import password_needs_rehash

    person = factory.staff("monitor", sites=())
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    factory.update(StaffUser, person.id, password_hash=weak)
    with factory.app.app_context():
        assert password_needs_rehash(weak)

    at = clock.set("2026-03-02T08:00:00+08:00")
    assert login(client, person.email).status_code == 200
    row = stored(factory, person.id)
    assert row.password_hash != weak and row.password_hash.startswith("$argon2id$")
    assert not password_needs_rehash(row.password_hash)
    assert row.last_sign_in_at == at
    assert login(client, person.email).status_code == 200  # the new hash verifies
    assert stored(factory, person.id).password_hash == row.password_hash  # no second rehash


def test_a_refused_sign_in_rehashes_nothing(client, factory):
    person = factory.staff("monitor", sites=())
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    factory.update(StaffUser, person.id, password_hash=weak, is_active=False)
    assert login(client, person.email).status_code == 401
    assert login(client, person.email, "wrong password").status_code == 401
    row = stored(factory, person.id)
    assert (row.password_hash, row.last_sign_in_at) == (weak, None)


def test_authenticate_staff_is_the_console_s_sign_in(app, factory, clock):
    from api.errors import Unauthorized
    from api.extensions import db
    from api.services.sessions import authenticate_staff

    person = factory.staff("coordinator", sites=("BJ302",))
    disabled = factory.staff("monitor", sites=())
    factory.update(StaffUser, disabled.id, is_active=False)
    at = clock.set("2026-03-02T08:00:00+00:00")
    with app.app_context():
        for email, password in (
            ("nobody@example.org", PASSWORD),
            (person.email, "wrong password"),
            (disabled.email, PASSWORD),
        ):
            with pytest.raises(Unauthorized) as refused:
                authenticate_staff(email, password)
            assert refused.value.error == "invalid_credentials"
        signed_in = authenticate_staff(f"  {person.email.upper()} ", PASSWORD)
        assert signed_in.id == person.id
        db.session.commit()
    assert stored(factory, person.id).last_sign_in_at == at


# --- the CLI --------------------------------------------------------------------------


def _cli(app, *args, stdin=None):
    return app.test_cli_runner().invoke(args=["staff", *args], input=stdin)


def test_the_operators_commands_run_the_lifecycle(app, client, factory):
    added = _cli(
        app,
        "add",
        "ops.admin@example.org",
        "--role",
        "admin",
        "--password-stdin",
        stdin="an operator password\n",
    )
    assert added.exit_code == 0, added.output
    person = factory.staff("coordinator", sites=("BJ302",), email="li.na@example.org")
    pair = login(client, person.email).json

    listed = _cli(app, "list")
    assert listed.exit_code == 0
    lines = {line.split("\t")[1]: line.split("\t") for line in listed.output.splitlines()}
    assert lines["li.na@example.org"][2:5] == ["coordinator", "BJ302", "active"]
    assert lines["ops.admin@example.org"][2:5] == ["admin", "all-sites", "active"]

    disabled = _cli(app, "disable", "LI.NA@example.org", "--reason", "on leave")
    assert (disabled.exit_code, disabled.output) == (0, "")
    assert client.get("/api/v1/sites", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert "disabled" in _cli(app, "list").output
    enabled = _cli(app, "enable", "li.na@example.org", "--reason", "back from leave")
    assert (enabled.exit_code, enabled.output) == (0, "")
    assert login(client, person.email).status_code == 200

    reset = _cli(
        app,
        "set-password",
        "li.na@example.org",
        "--password-stdin",
        "--reason",
        "locked out",
        stdin="a reset password\n",
    )
    assert (reset.exit_code, reset.output) == (0, "")
    assert stored(factory, person.id).must_change_password is True
    assert login(client, person.email, "a reset password").status_code == 200
    kept = _cli(
        app,
        "set-password",
        "li.na@example.org",
        "--password-stdin",
        "--no-change-required",
        "--reason",
        "operator's choice",
        stdin="another password\n",
    )
    assert kept.exit_code == 0
    assert stored(factory, person.id).must_change_password is False

    moved = _cli(
        app,
        "set-role",
        "li.na@example.org",
        "--role",
        "coordinator",
        "--site",
        "LZU1",
        "--site",
        "TJSH",
        "--reason",
        "covers two sites",
    )
    assert (moved.exit_code, moved.output) == (0, "")
    assert stored(factory, person.id).site_codes == ["LZU1", "TJSH"]
    promoted = _cli(
        app, "set-role", "li.na@example.org", "--role", "monitor", "--reason", "sponsor"
    )
    assert promoted.exit_code == 0
    assert (stored(factory, person.id).role, stored(factory, person.id).site_codes) == (
        "monitor",
        [],
    )

    actions = [(r.action, r.actor_type, r.reason) for r in audit_rows(factory, person.id)]
    assert actions == [
        ("staff.disabled", "system", "on leave"),
        ("staff.enabled", "system", "back from leave"),
        ("staff.password_reset", "system", "locked out"),
        ("staff.password_reset", "system", "operator's choice"),
        ("staff.role_changed", "system", "covers two sites"),
        ("staff.role_changed", "system", "sponsor"),
    ]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("disable", "ops@example.org", "--reason", "leaving"), None, "last active admin"),
        (
            ("set-role", "ops@example.org", "--role", "monitor", "--reason", "x y z"),
            None,
            "last active admin",
        ),
        (
            ("set-password", "ops@example.org", "--password-stdin", "--reason", "reset"),
            "short\n",
            "password: At least 12",
        ),
        (
            ("set-role", "ops@example.org", "--role", "coordinator", "--reason", "x y z"),
            None,
            "sites: A coordinator needs",
        ),
        (("disable", "nobody@example.org", "--reason", "gone"), None, "No staff account"),
    ],
)
def test_the_commands_refuse_with_a_message_and_change_nothing(app, factory, args, stdin, message):
    admin = factory.staff("admin", sites=(), email="ops@example.org")
    result = _cli(app, *args, stdin=stdin)
    assert result.exit_code == 1, result.output
    assert message in result.output
    row = stored(factory, admin.id)
    assert (row.is_active, row.role, row.auth_epoch, row.must_change_password) == (
        True,
        "admin",
        0,
        False,
    )
    assert audit_rows(factory, admin.id) == []


def test_the_commands_need_a_reason_and_a_piped_password(app, factory):
    factory.staff("monitor", sites=(), email="m@example.org")
    assert _cli(app, "disable", "m@example.org").exit_code == 2
    no_stdin = _cli(app, "set-password", "m@example.org", "--reason", "reset")
    assert no_stdin.exit_code == 2 and "--password-stdin" in no_stdin.output
    assert stored(factory, factory.scalar(select(StaffUser.id))).is_active is True
