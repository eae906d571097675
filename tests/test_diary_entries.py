"""The symptom diary: submit, replay, conflicts, day rules, lateness, corrections, staff entries."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from api.models import Alert, AuditEvent, DiaryEntry, DiaryEntryVersion, Participant
from tests.helpers import statements_sent

MINE = "/api/v1/me/diary-entries"
NOW = "2026-03-10T12:00:00+08:00"  # 10 March, noon in Shanghai
ENROLLED = date(2026, 3, 1)


def body(diary_date: str = "2026-03-10", **over: Any) -> dict[str, Any]:
    values = {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": diary_date,
        "abdominal_distension": 1,
        "decreased_appetite": 0,
        "debilitation": 2,
        "leg_edema": 0,
        "discomfort_grade": 1,
        "note": "walked in the park",
        "recorded_at": f"{diary_date}T11:55:00+08:00",
    }
    values.update(over)
    return {k: v for k, v in values.items() if v is not ...}


def staff_url(participant: Participant, entry_id: int | None = None) -> str:
    url = f"/api/v1/participants/{participant.id}/diary-entries"
    return f"{url}/{entry_id}" if entry_id is not None else url


def count(factory, model=DiaryEntry) -> int:
    return factory.scalar(select(func.count()).select_from(model))


@pytest.fixture
def participant(factory, clock):
    clock.set(NOW)
    return factory.participant(enrolled_on=ENROLLED)


class FreshClient:
    """An authenticated client whose token is issued per request, so tests can move the
    clock by days without the 15-minute access token expiring."""

    def __init__(self, factory, who) -> None:
        self.factory, self.who = factory, who

    def __getattr__(self, method: str):
        return getattr(self.factory.as_(self.who), method)


@pytest.fixture
def phone(factory, participant):
    return FreshClient(factory, participant)


@pytest.fixture
def coordinator(factory):
    return factory.staff("coordinator", sites=("BJ302",))


# --- create, replay, conflict -------------------------------------------------------------


def test_a_submit_reads_the_participant_once_without_its_site(app, phone):
    """The request's principal is one lean query: no join of the site, no second read."""
    with statements_sent(app) as sent:
        assert phone.post(MINE, json=body()).status_code == 201
    reads = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "participants" in s]
    assert len(reads) == 1, sent
    assert "sites" not in reads[0], reads[0]


def test_create_returns_201_with_the_stored_entry_and_an_etag(phone, participant):
    sent = body(recorded_at="2026-03-10T11:55:00+08:00")
    response = phone.post(MINE, json=sent)
    assert response.status_code == 201, response.json
    entry = response.json
    assert entry["client_entry_id"] == sent["client_entry_id"]
    assert entry["participant_id"] == participant.id
    assert entry["diary_date"] == "2026-03-10"
    assert [entry[k] for k in ("abdominal_distension", "debilitation", "discomfort_grade")] == [
        1,
        2,
        1,
    ]
    # The device's offset is kept; the receipt time is the server's, in UTC.
    assert entry["recorded_at"] == "2026-03-10T11:55:00+08:00"
    assert entry["received_at"] == "2026-03-10T04:00:00+00:00"
    assert entry["timezone"] == "Asia/Shanghai"
    assert entry["late"] is False
    assert entry["source"] == "participant"
    assert entry["version"] == 1
    etag = response.headers["ETag"]
    assert etag
    read = phone.get(f"{MINE}/{entry['id']}")
    assert read.status_code == 200
    assert read.headers["ETag"] == etag
    assert read.json == entry


@pytest.mark.parametrize(
    "over",
    [
        {"recorded_at": "2026-03-10T06:55:00.123456+03:00", "note": "腹胀 🙂, “quoted”"},
        {"recorded_at": "2026-03-10T11:59:59.999999+08:00", "note": ...},
    ],
    ids=["microseconds-and-unicode", "no-note"],
)
def test_the_create_answer_is_the_entry_as_stored(phone, clock, over):
    """The 201 answer is what a read and a replay (both from the database) give back,
    to the microsecond, whatever the device's offset and note."""
    clock.set("2026-03-10T04:00:00.654321+00:00")
    sent = body(**over)
    created = phone.post(MINE, json=sent)
    assert created.status_code == 201, created.json
    read = phone.get(f"{MINE}/{created.json['id']}")
    replay = phone.post(MINE, json=sent)
    assert replay.status_code == 200
    assert read.json == replay.json == created.json
    assert read.headers["ETag"] == replay.headers["ETag"] == created.headers["ETag"]
    assert created.json["received_at"] == "2026-03-10T04:00:00.654321+00:00"


def test_replay_returns_200_with_the_stored_entry_and_never_a_second_row(phone, factory):
    sent = body()
    first = phone.post(MINE, json=sent)
    again = phone.post(MINE, json=sent)
    assert again.status_code == 200
    assert again.json == first.json
    assert again.headers["ETag"] == first.headers["ETag"]
    # A replay with other values is still the stored entry: the first submission is the record.
    changed = phone.post(MINE, json={**sent, "discomfort_grade": 4, "note": "different"})
    assert changed.status_code == 200
    assert changed.json == first.json
    assert count(factory) == 1
    assert count(factory, DiaryEntryVersion) == 1
    assert count(factory, Alert) == 0


def test_another_entry_for_the_same_day_is_409_naming_the_existing_entry(phone, factory):
    first = phone.post(MINE, json=body()).json
    response = phone.post(MINE, json=body())
    assert response.status_code == 409
    assert response.json["error"] == "entry_exists_for_date"
    assert response.json["existing_entry_id"] == first["id"]
    assert count(factory) == 1


def test_entries_of_different_participants_do_not_collide(factory, participant, phone):
    other = factory.participant(enrolled_on=ENROLLED)
    sent = body()
    assert phone.post(MINE, json=sent).status_code == 201
    # Same day and even the same client key: another participant's row, not a replay.
    assert factory.as_(other).post(MINE, json=sent).status_code == 201
    assert count(factory) == 2


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("abdominal_distension", 5),
        ("decreased_appetite", -1),
        ("debilitation", "2"),
        ("leg_edema", 1.5),
        ("discomfort_grade", True),
        ("discomfort_grade", None),
        ("client_entry_id", "not-a-uuid"),
        ("note", "x" * 1001),
        ("recorded_at", "2026-03-10T11:55:00"),
        ("recorded_at", "yesterday"),
        ("diary_date", "2026-02-30"),
        ("diary_date", ...),
        ("client_entry_id", ...),
        ("recorded_at", ...),
        ("leg_edema", ...),
        ("mood", 3),
        ("late", False),
        ("source", "staff"),
    ],
)
def test_invalid_input_is_422_naming_the_field_and_writes_nothing(phone, factory, field, value):
    response = phone.post(MINE, json=body(**{field: value}))
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_failed"
    assert field in response.json["errors"]
    assert count(factory) == 0
    assert count(factory, AuditEvent) == 1  # the enrolment only


def test_note_is_optional_and_may_be_1000_characters(phone):
    assert phone.post(MINE, json=body(note=...)).json["note"] is None
    assert phone.post(MINE, json=body("2026-03-09", note="字" * 1000)).status_code == 201


# --- diary day rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diary_date", "error"),
    [
        ("2026-03-11", "diary_date_in_future"),
        ("2026-02-28", "diary_date_before_enrolment"),
        ("2026-03-07", "backfill_window_closed"),
    ],
)
def test_days_outside_the_diary_are_refused_with_their_own_code(phone, factory, diary_date, error):
    # Well-formed, but not a day this diary can take now: 409 with the rule's code.
    response = phone.post(MINE, json=body(diary_date))
    assert response.status_code == 409
    assert response.json["error"] == error
    assert "diary_date" in response.json["errors"]
    assert count(factory) == 0


def test_today_and_two_days_back_are_accepted(phone):
    for day in ("2026-03-10", "2026-03-09", "2026-03-08"):
        assert phone.post(MINE, json=body(day)).status_code == 201, day


def test_the_backfill_window_is_configuration(app, phone):
    study = app.extensions["study"]
    app.extensions["study"] = type(study)(**{**study.__dict__, "backfill_days": 5})
    try:
        assert phone.post(MINE, json=body("2026-03-05")).status_code == 201
    finally:
        app.extensions["study"] = study


def test_the_diary_ends_36_months_after_enrolment(factory, clock):
    clock.set("2029-03-03T12:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    assert phone.post(MINE, json=body("2029-03-01")).status_code == 201
    response = phone.post(MINE, json=body("2029-03-02"))
    assert response.status_code == 409
    assert response.json["error"] == "diary_period_ended"


def test_an_inactive_participant_is_refused_but_a_replay_still_answers(
    factory, participant, phone, coordinator
):
    sent = body()
    stored = phone.post(MINE, json=sent).json
    factory.as_(coordinator).patch(
        f"/api/v1/participants/{participant.id}",
        json={"status": "withdrawn", "reason": "consent withdrawn"},
    )
    response = phone.post(MINE, json=body("2026-03-09"))
    assert response.status_code == 409
    assert response.json["error"] == "participant_inactive"
    replay = phone.post(MINE, json=sent)
    assert replay.status_code == 200
    assert replay.json["id"] == stored["id"]
    # Staff cannot enter days for a withdrawn participant either.
    staff_entry = factory.as_(coordinator).post(
        staff_url(participant), json={**body("2026-03-08"), "reason": "paper diary"}
    )
    assert staff_entry.json["error"] == "participant_inactive"


def test_a_retry_after_the_backfill_window_moved_on_is_still_a_replay(phone, clock):
    sent = body("2026-03-08")
    stored = phone.post(MINE, json=sent)
    assert stored.status_code == 201
    clock.set("2026-03-11T00:30:00+08:00")  # 8 March is now out of the window
    replay = phone.post(MINE, json=sent)
    assert replay.status_code == 200
    assert replay.json["id"] == stored.json["id"]


def test_the_diary_day_is_the_participants_local_date(factory, clock):
    # 03:00 UTC on 10 March is 23:00 on 9 March in New York (EDT since 8 March).
    clock.set("2026-03-10T03:00:00+00:00")
    participant = factory.participant(enrolled_on=ENROLLED, timezone="America/New_York")
    phone = factory.as_(participant)
    response = phone.post(MINE, json=body("2026-03-10", recorded_at="2026-03-09T23:00:00-04:00"))
    assert response.json["error"] == "diary_date_in_future"
    created = phone.post(MINE, json=body("2026-03-09", recorded_at="2026-03-09T23:00:00-04:00"))
    assert created.status_code == 201
    assert created.json["timezone"] == "America/New_York"
    assert created.json["late"] is False


# --- lateness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "recorded", "late"),
    [
        # Completed on the day, sent the next morning (offline): on time.
        ("2026-03-11T08:00:00+08:00", "2026-03-10T21:00:00+08:00", False),
        # Completed after midnight: late.
        ("2026-03-11T08:00:00+08:00", "2026-03-11T00:10:00+08:00", True),
        # No device evidence of completion before midnight (received after): late.
        ("2026-03-11T00:01:00+08:00", "2026-03-11T00:01:00+08:00", True),
        # Device clock ahead, within the 5 minutes of skew: believed (so late).
        ("2026-03-10T23:58:00+08:00", "2026-03-11T00:02:00+08:00", True),
        # Device clock further ahead than the skew allows: the receipt time counts.
        ("2026-03-10T23:58:00+08:00", "2026-03-11T00:10:00+08:00", False),
        # An offset other than the participant's zone is the same instant.
        ("2026-03-11T08:00:00+08:00", "2026-03-10T15:30:00+00:00", False),
        ("2026-03-11T08:00:00+08:00", "2026-03-10T16:30:00+00:00", True),
    ],
)
def test_late_means_completed_after_the_diary_day_ended(phone, clock, received, recorded, late):
    clock.set(received)
    response = phone.post(MINE, json=body("2026-03-10", recorded_at=recorded))
    assert response.status_code == 201, response.json
    assert response.json["late"] is late
    assert response.json["recorded_at"] == recorded.replace("+00:00", "+00:00")


@pytest.mark.parametrize(
    ("received_utc", "late"),
    # 8 March 2026 in New York has 23 hours: it ends at 04:00 UTC, not 05:00.
    [("2026-03-09T03:59:00+00:00", False), ("2026-03-09T04:01:00+00:00", True)],
)
def test_a_dst_day_ends_at_local_midnight(factory, clock, received_utc, late):
    clock.set(received_utc)
    participant = factory.participant(enrolled_on=ENROLLED, timezone="America/New_York")
    response = factory.as_(participant).post(
        MINE, json=body("2026-03-08", recorded_at=received_utc)
    )
    assert response.status_code == 201, response.json
    assert response.json["late"] is late


# --- participant corrections --------------------------------------------------------------


def test_a_correction_needs_if_match_and_makes_a_new_version(phone, participant, factory, clock):
    created = phone.post(MINE, json=body())
    entry_id, etag = created.json["id"], created.headers["ETag"]
    url = f"{MINE}/{entry_id}"
    missing = phone.patch(url, json={"debilitation": 3})
    assert missing.status_code == 428
    assert missing.json["error"] == "precondition_required"
    stale = phone.patch(url, json={"debilitation": 3}, headers={"If-Match": '"nope"'})
    assert stale.status_code == 412
    assert stale.json["error"] == "precondition_failed"

    clock.set("2026-03-10T21:00:00+08:00")
    fixed = phone.patch(
        url,
        json={"debilitation": 3, "note": None, "recorded_at": "2026-03-10T20:59:00+08:00"},
        headers={"If-Match": etag},
    )
    assert fixed.status_code == 200, fixed.json
    assert fixed.json["debilitation"] == 3
    assert fixed.json["note"] is None
    assert fixed.json["version"] == 2
    # The entry keeps its first completion and receipt times.
    assert fixed.json["recorded_at"] == created.json["recorded_at"]
    assert fixed.json["received_at"] == created.json["received_at"]
    assert fixed.headers["ETag"] not in (etag, "")
    assert phone.get(url).headers["ETag"] == fixed.headers["ETag"]
    # The old ETag is now stale.
    again = phone.patch(url, json={"debilitation": 1}, headers={"If-Match": etag})
    assert again.status_code == 412
    # Staff see both versions, oldest first, with who, when and why.
    staff = factory.as_(factory.staff("monitor", sites=()))
    versions = staff.get(staff_url(participant)).json[0]["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["debilitation"] == 2 and versions[0]["note"] == "walked in the park"
    assert versions[1]["debilitation"] == 3 and versions[1]["note"] is None
    assert versions[1]["actor"] == {"type": "participant", "id": participant.id}
    assert versions[1]["source"] == "participant"
    assert versions[1]["at"] == "2026-03-10T13:00:00+00:00"
    assert versions[1]["recorded_at"] == "2026-03-10T20:59:00+08:00"
    assert versions[0]["at"] == "2026-03-10T04:00:00+00:00"
    audit = factory.scalars(select(AuditEvent).where(AuditEvent.action == "diary_entry.amended"))
    assert len(audit) == 1
    assert audit[0].before["debilitation"] == 2 and audit[0].after["debilitation"] == 3


@pytest.mark.parametrize("change", [{"debilitation": 2}, {}])
def test_a_correction_without_changes_makes_no_version(phone, factory, change):
    created = phone.post(MINE, json=body())
    response = phone.patch(
        f"{MINE}/{created.json['id']}", json=change, headers={"If-Match": created.headers["ETag"]}
    )
    assert response.status_code == 200
    assert response.json["version"] == 1
    assert response.headers["ETag"] == created.headers["ETag"]
    assert count(factory, DiaryEntryVersion) == 1


def test_a_participant_cannot_correct_after_the_diary_day_ended(phone, clock, factory):
    created = phone.post(MINE, json=body("2026-03-09"))
    response = phone.patch(
        f"{MINE}/{created.json['id']}",
        json={"debilitation": 3},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert response.status_code == 409
    assert response.json["error"] == "entry_locked"
    assert count(factory, DiaryEntryVersion) == 1


def test_the_lock_falls_at_local_midnight(phone, clock):
    created = phone.post(MINE, json=body())
    url, etag = f"{MINE}/{created.json['id']}", created.headers["ETag"]
    clock.set("2026-03-10T23:59:59+08:00")
    fixed = phone.patch(url, json={"leg_edema": 1}, headers={"If-Match": etag})
    assert fixed.status_code == 200
    clock.set("2026-03-11T00:00:00+08:00")
    locked = phone.patch(url, json={"leg_edema": 2}, headers={"If-Match": fixed.headers["ETag"]})
    assert locked.json["error"] == "entry_locked"


@pytest.mark.parametrize(
    "change",
    [{"debilitation": 7}, {"diary_date": "2026-03-09"}, {"source": "staff"}, {"note": 5}],
)
def test_an_invalid_correction_is_422_and_changes_nothing(phone, factory, change):
    created = phone.post(MINE, json=body())
    response = phone.patch(
        f"{MINE}/{created.json['id']}", json=change, headers={"If-Match": created.headers["ETag"]}
    )
    assert response.status_code == 422
    assert set(response.json["errors"]) == set(change)
    assert count(factory, DiaryEntryVersion) == 1


def test_another_participants_entry_is_404(factory, phone):
    other = factory.as_(factory.participant(enrolled_on=ENROLLED))
    theirs = other.post(MINE, json=body())
    url = f"{MINE}/{theirs.json['id']}"
    assert phone.get(url).status_code == 404
    patched = phone.patch(url, json={"leg_edema": 3}, headers={"If-Match": theirs.headers["ETag"]})
    assert patched.status_code == 404
    assert phone.get(f"{MINE}/999999").status_code == 404
    assert phone.get(MINE).json == []


# --- listing ------------------------------------------------------------------------------


def test_my_entries_are_listed_newest_first_within_from_and_to(phone):
    for day in ("2026-03-08", "2026-03-09", "2026-03-10"):
        phone.post(MINE, json=body(day))
    listed = phone.get(MINE)
    assert [e["diary_date"] for e in listed.json] == ["2026-03-10", "2026-03-09", "2026-03-08"]
    assert "versions" not in listed.json[0]
    ranged = phone.get(MINE, query_string={"from": "2026-03-09", "to": "2026-03-09"})
    assert [e["diary_date"] for e in ranged.json] == ["2026-03-09"]
    paged = phone.get(MINE, query_string={"page": 2, "page_size": 2})
    assert [e["diary_date"] for e in paged.json] == ["2026-03-08"]
    assert '"total": 3' in paged.headers["X-Pagination"]
    empty = phone.get(MINE, query_string={"from": "2026-03-10", "to": "2026-03-01"})
    assert empty.status_code == 200 and empty.json == []
    assert phone.get(MINE, query_string={"from": "March"}).json["errors"].keys() == {"from"}


# --- symptom alerts and audit -------------------------------------------------------------


def test_grade_3_and_4_raise_alerts_in_the_entrys_transaction(phone, factory, clock):
    created = phone.post(MINE, json=body(discomfort_grade=3))
    alerts = factory.scalars(select(Alert))
    assert [(a.kind, a.diary_entry_id) for a in alerts] == [("symptom", created.json["id"])]
    phone.patch(
        f"{MINE}/{created.json['id']}",
        json={"discomfort_grade": 4},
        headers={"If-Match": created.headers["ETag"]},
    )
    kinds = sorted(a.kind for a in factory.scalars(select(Alert)))
    assert kinds == ["symptom", "symptom_urgent"]
    phone.post(MINE, json=body("2026-03-09", discomfort_grade=2))
    assert count(factory, Alert) == 2


def test_creation_is_audited(phone, participant, factory):
    created = phone.post(MINE, json=body()).json
    event = factory.scalar(select(AuditEvent).where(AuditEvent.action == "diary_entry.created"))
    assert (event.actor_type, event.actor_id) == ("participant", participant.id)
    assert (event.entity_type, event.entity_id) == ("diary_entry", created["id"])
    assert event.after["discomfort_grade"] == 1 and event.after["late"] is False


# --- staff: entries on behalf, amendments, versions ---------------------------------------


def test_staff_enter_on_behalf_for_any_day_since_enrolment_with_a_reason(
    factory, participant, coordinator
):
    site = FreshClient(factory, coordinator)
    no_reason = site.post(staff_url(participant), json=body("2026-03-02"))
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    sent = body("2026-03-02", client_entry_id=..., recorded_at=...)
    response = site.post(staff_url(participant), json={**sent, "reason": "paper diary"})
    assert response.status_code == 201, response.json
    entry = response.json
    assert entry["source"] == "staff"
    assert entry["created_by_staff_id"] == coordinator.id
    assert entry["late"] is True  # received days after the day ended
    assert entry["recorded_at"] == "2026-03-10T04:00:00+00:00"
    assert response.headers["ETag"]
    [version] = entry["versions"]
    assert version["reason"] == "paper diary"
    assert version["actor"] == {"type": "staff", "id": coordinator.id}
    assert version["source"] == "staff"
    # Not before enrolment, not in the future, even for staff.
    early = site.post(staff_url(participant), json={**body("2026-02-27"), "reason": "paper"})
    assert early.json["error"] == "diary_date_before_enrolment"
    future = site.post(staff_url(participant), json={**body("2026-03-11"), "reason": "paper"})
    assert future.json["error"] == "diary_date_in_future"
    # A day that has an entry is a conflict for staff too.
    clash = site.post(staff_url(participant), json={**body("2026-03-02"), "reason": "paper"})
    assert clash.status_code == 409 and clash.json["existing_entry_id"] == entry["id"]


def test_staff_entry_with_a_paper_time_is_on_time(factory, participant, coordinator):
    sent = body("2026-03-03", recorded_at="2026-03-03T20:00:00+08:00", reason="paper diary")
    entry = factory.as_(coordinator).post(staff_url(participant), json=sent).json
    assert entry["late"] is False


def test_staff_amend_any_time_with_a_reason_and_the_version_says_so(
    factory, participant, phone, coordinator, clock
):
    created = phone.post(MINE, json=body())
    clock.set("2026-04-20T10:00:00+08:00")  # long after the day ended
    site = FreshClient(factory, coordinator)
    url = staff_url(participant, created.json["id"])
    read = site.get(url)
    assert read.headers["ETag"] == created.headers["ETag"]
    no_reason = site.patch(url, json={"leg_edema": 2}, headers={"If-Match": read.headers["ETag"]})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    assert site.patch(url, json={"leg_edema": 2, "reason": "data query"}).status_code == 428
    amended = site.patch(
        url,
        json={"leg_edema": 2, "reason": "data-change request 17"},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.json
    body_ = amended.json
    assert body_["leg_edema"] == 2 and body_["version"] == 2
    assert body_["source"] == "participant"  # who made the entry
    assert [v["source"] for v in body_["versions"]] == ["participant", "staff"]
    assert body_["versions"][1]["actor"] == {"type": "staff", "id": coordinator.id}
    assert body_["versions"][1]["reason"] == "data-change request 17"
    assert body_["versions"][0]["leg_edema"] == 0
    # The phone sees the new version and its ETag.
    mine = phone.get(f"{MINE}/{created.json['id']}")
    assert mine.json["version"] == 2 and mine.headers["ETag"] == amended.headers["ETag"]
    event = factory.scalar(select(AuditEvent).where(AuditEvent.action == "diary_entry.amended"))
    assert (event.actor_type, event.reason) == ("staff", "data-change request 17")


def test_version_history_names_staff_by_email_and_participants_by_study_code(
    factory, participant, phone, coordinator, clock
):
    created = phone.post(MINE, json=body())
    clock.set("2026-04-20T10:00:00+08:00")
    site = FreshClient(factory, coordinator)
    url = staff_url(participant, created.json["id"])
    amended = site.patch(
        url,
        json={"leg_edema": 2, "reason": "data query"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.json
    expected = [participant.study_code, coordinator.email]
    assert [v["actor_label"] for v in amended.json["versions"]] == expected
    assert amended.json["versions"][1]["actor"] == {"type": "staff", "id": coordinator.id}
    assert [v["actor_label"] for v in site.get(url).json["versions"]] == expected
    (listed,) = site.get(staff_url(participant)).json
    assert [v["actor_label"] for v in listed["versions"]] == expected
    assert "versions" not in phone.get(f"{MINE}/{created.json['id']}").json


def test_staff_may_move_an_entry_to_a_free_day_only(factory, participant, phone, coordinator):
    first = phone.post(MINE, json=body("2026-03-09")).json
    second = phone.post(MINE, json=body("2026-03-10"))
    site = FreshClient(factory, coordinator)
    url = staff_url(participant, second.json["id"])
    etag = second.headers["ETag"]
    clash = site.patch(
        url, json={"diary_date": "2026-03-09", "reason": "wrong day"}, headers={"If-Match": etag}
    )
    assert clash.status_code == 409
    assert clash.json["existing_entry_id"] == first["id"]
    moved = site.patch(
        url, json={"diary_date": "2026-03-05", "reason": "wrong day"}, headers={"If-Match": etag}
    )
    assert moved.status_code == 200
    assert [v["diary_date"] for v in moved.json["versions"]] == ["2026-03-10", "2026-03-05"]
    before = site.patch(
        url,
        json={"diary_date": "2026-02-01", "reason": "wrong day"},
        headers={"If-Match": moved.headers["ETag"]},
    )
    assert before.json["error"] == "diary_date_before_enrolment"


def test_staff_access_rules(factory, participant, phone):
    created = phone.post(MINE, json=body())
    url = staff_url(participant, created.json["id"])
    headers = {"If-Match": created.headers["ETag"]}
    change = {"leg_edema": 1, "reason": "data query"}
    monitor = factory.as_(factory.staff("monitor", sites=()))
    assert monitor.get(url).status_code == 200
    assert monitor.patch(url, json=change, headers=headers).status_code == 403
    assert (
        monitor.post(staff_url(participant), json={**body(), "reason": "x" * 5}).status_code == 403
    )
    elsewhere = factory.as_(factory.staff("coordinator", sites=("LZU1",)))
    assert elsewhere.get(url).status_code == 404
    assert elsewhere.get(staff_url(participant)).status_code == 404
    assert elsewhere.patch(url, json=change, headers=headers).status_code == 404
    admin = factory.as_(factory.staff("admin", sites=()))
    assert admin.patch(url, json=change, headers=headers).status_code == 200
    # An entry id of another participant under this participant's path is 404.
    other = factory.participant(enrolled_on=ENROLLED)
    theirs = factory.as_(other).post(MINE, json=body()).json
    assert admin.get(staff_url(participant, theirs["id"])).status_code == 404
    # Participants cannot use the staff endpoints.
    assert phone.get(staff_url(participant)).status_code == 403


def test_staff_list_shows_versions_within_from_and_to(factory, participant, phone):
    for day in ("2026-03-08", "2026-03-10"):
        phone.post(MINE, json=body(day))
    monitor = factory.as_(factory.staff("monitor", sites=()))
    listed = monitor.get(staff_url(participant), query_string={"from": "2026-03-09"})
    assert [e["diary_date"] for e in listed.json] == ["2026-03-10"]
    assert [v["version"] for v in listed.json[0]["versions"]] == [1]
