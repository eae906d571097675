"""Compliance on a hand-made data set whose right answers are stated here.

The same numbers must come out of SQLite and PostgreSQL (the suite runs on both).

The clock stands at 2026-03-01 12:00 in Shanghai (04:00 UTC; 20:00 on Feb 28 in Los
Angeles). "Yesterday" is each participant's own: Feb 28 in Shanghai, Feb 27 in LA.

A (BJ302, Shanghai, msc), enrolled Feb 15: 14 days Feb 15-28.
  Feb 15-20 on time, Feb 21 late, Feb 22 missing, Feb 23-24 excused (no entry),
  Feb 25 excused but entered on time (the entry counts), Feb 26-28 missing,
  Mar 1 (today) on time — not counted yet.
  expected 12, on time 7, late 1, missing 4, rate 7/12, any 8/12, run 3
  (Feb 26-28), last entry Mar 1; below 80 % over the last 14 days.
B (BJ302, Los Angeles, control), enrolled Feb 20: Feb 20-27 expected, all on time,
  and Feb 28 (its today): expected 8, on time 8, rate 1, run 0.
C (BJ302, Shanghai, control), enrolled Feb 10, withdrawn on Feb 20: expected Feb 10-19
  = 10; Feb 10-14 on time, Feb 15-19 missing, Feb 20 entry not counted.
  expected 10, on time 5, missing 5, run 0 (inactive), never "below threshold".
D (LZU1, Shanghai, msc), enrolled Feb 27: Feb 27 late, Feb 28 missing:
  expected 2, late 1, missing 1, run 1, below threshold.
E (BJ302, Shanghai, msc), enrolled today: nothing expected, no rates, run 0.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from api.models import AuditEvent, ExcusedDay
from tests.diary_rows import add_entries, add_entry

NOW = "2026-03-01T12:00:00+08:00"


@pytest.fixture
def trial(app, factory, clock):
    clock.set("2026-02-20T10:00:00+08:00")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    c = factory.participant(arm="control", enrolled_on=date(2026, 2, 10))
    add_entries(app, c, "2026-02-10", "2026-02-14")
    add_entry(app, c, "2026-02-20")
    response = factory.as_(coordinator).patch(
        f"/api/v1/participants/{c.id}", json={"status": "withdrawn", "reason": "moved away"}
    )
    assert response.status_code == 200, response.json

    clock.set(NOW)
    a = factory.participant(enrolled_on=date(2026, 2, 15))
    add_entries(app, a, "2026-02-15", "2026-02-20")
    add_entry(app, a, "2026-02-21", late=True)
    add_entry(app, a, "2026-02-25")
    add_entry(app, a, "2026-03-01")
    response = factory.as_(coordinator).post(
        f"/api/v1/participants/{a.id}/excused-days",
        json={"from": "2026-02-23", "to": "2026-02-25", "reason": "hospital stay"},
    )
    assert response.status_code == 201, response.json

    b = factory.participant(
        arm="control", enrolled_on=date(2026, 2, 20), timezone="America/Los_Angeles"
    )
    add_entries(app, b, "2026-02-20", "2026-02-28")
    d = factory.participant(site="LZU1", enrolled_on=date(2026, 2, 27))
    add_entry(app, d, "2026-02-27", late=True)
    e = factory.participant(enrolled_on=date(2026, 3, 1))
    return {"A": a, "B": b, "C": c, "D": d, "E": e, "coordinator": coordinator}


def _by_code(report):
    return {row["study_code"]: row for row in report["participants"]}


def test_report_gives_the_stated_answers(factory, trial):
    monitor = factory.staff("monitor", sites=())
    response = factory.as_(monitor).get("/api/v1/compliance")
    assert response.status_code == 200, response.json
    rows = _by_code(response.json)
    a = rows[trial["A"].study_code]
    assert (a["expected"], a["on_time"], a["late"], a["missing"], a["excused"]) == (12, 7, 1, 4, 2)
    assert a["rate"] == pytest.approx(7 / 12, abs=1e-4)
    assert a["any_rate"] == pytest.approx(8 / 12, abs=1e-4)
    assert a["current_missed_run"] == 3
    assert a["last_entry_date"] == "2026-03-01"
    assert a["below_threshold"] is True
    b = rows[trial["B"].study_code]
    assert (b["expected"], b["on_time"], b["late"], b["missing"]) == (8, 8, 0, 0)
    assert (b["rate"], b["current_missed_run"], b["below_threshold"]) == (1.0, 0, False)
    c = rows[trial["C"].study_code]
    assert (c["expected"], c["on_time"], c["late"], c["missing"]) == (10, 5, 0, 5)
    assert (c["status"], c["current_missed_run"], c["below_threshold"]) == ("withdrawn", 0, False)
    d = rows[trial["D"].study_code]
    assert (d["expected"], d["on_time"], d["late"], d["missing"]) == (2, 0, 1, 1)
    assert (d["current_missed_run"], d["below_threshold"], d["rate"]) == (1, True, 0.0)
    e = rows[trial["E"].study_code]
    assert (e["expected"], e["missing"], e["rate"], e["any_rate"]) == (0, 0, None, None)
    assert e["current_missed_run"] == 0 and e["last_entry_date"] is None

    sites = {s["site"]: s for s in response.json["sites"]}
    bj = sites["BJ302"]
    assert (bj["participants"], bj["expected"], bj["on_time"], bj["late"], bj["missing"]) == (
        4,
        30,
        20,
        1,
        9,
    )
    assert bj["rate"] == pytest.approx(20 / 30, abs=1e-4)
    assert bj["any_rate"] == pytest.approx(21 / 30, abs=1e-4)
    assert (bj["participants_below_threshold"], bj["participants_with_missed_run"]) == (1, 1)
    lz = sites["LZU1"]
    assert (lz["expected"], lz["on_time"], lz["late"], lz["missing"]) == (2, 0, 1, 1)
    below = {row["study_code"] for row in response.json["below_threshold"]}
    assert below == {trial["A"].study_code, trial["D"].study_code}


def test_range_limits_the_counts(factory, trial):
    response = factory.as_(trial["coordinator"]).get(
        "/api/v1/compliance", query_string={"from": "2026-02-20", "to": "2026-02-24"}
    )
    a = _by_code(response.json)[trial["A"].study_code]
    # Feb 20 on time, 21 late, 22 missing, 23-24 excused.
    assert (a["expected"], a["on_time"], a["late"], a["missing"], a["excused"]) == (3, 1, 1, 1, 2)
    assert response.json["from"] == "2026-02-20" and response.json["to"] == "2026-02-24"


def test_coordinator_sees_only_own_site_and_other_site_is_404(factory, trial):
    client = factory.as_(trial["coordinator"])
    report = client.get("/api/v1/compliance").json
    assert {row["site"] for row in report["participants"]} == {"BJ302"}
    assert [s["site"] for s in report["sites"]] == ["BJ302"]
    response = client.get("/api/v1/compliance", query_string={"site": "LZU1"})
    assert response.status_code == 404
    response = client.get(f"/api/v1/participants/{trial['D'].id}/compliance")
    assert response.status_code == 404


def test_site_filter_for_all_site_staff(factory, trial):
    admin = factory.staff("admin", sites=())
    report = factory.as_(admin).get("/api/v1/compliance", query_string={"site": "LZU1"}).json
    assert [row["study_code"] for row in report["participants"]] == [trial["D"].study_code]


def test_calendar_of_a_participant(factory, trial):
    response = factory.as_(trial["coordinator"]).get(
        f"/api/v1/participants/{trial['A'].id}/compliance",
        query_string={"from": "2026-02-19", "to": "2026-03-02"},
    )
    assert response.status_code == 200, response.json
    days = {d["date"]: d["status"] for d in response.json["days"]}
    assert days == {
        "2026-02-19": "on_time",
        "2026-02-20": "on_time",
        "2026-02-21": "late",
        "2026-02-22": "missing",
        "2026-02-23": "excused",
        "2026-02-24": "excused",
        "2026-02-25": "on_time",
        "2026-02-26": "missing",
        "2026-02-27": "missing",
        "2026-02-28": "missing",
        "2026-03-01": "on_time",
        "2026-03-02": "not_yet_due",
    }
    excused = [d for d in response.json["days"] if d["status"] == "excused"]
    assert excused[0]["excused_reason"] == "hospital stay"
    summary = response.json["summary"]
    # Feb 19-28 (the summary stops at yesterday): 10 days, 2 excused without an entry.
    assert (summary["expected"], summary["on_time"], summary["late"], summary["missing"]) == (
        8,
        3,
        1,
        4,
    )


def test_calendar_defaults_to_enrolment_through_yesterday(factory, trial):
    response = factory.as_(trial["coordinator"]).get(
        f"/api/v1/participants/{trial['C'].id}/compliance"
    )
    body = response.json
    # Withdrawn on Feb 20: the calendar ends the day before.
    assert (body["from"], body["to"]) == ("2026-02-10", "2026-02-19")
    assert [d["status"] for d in body["days"]] == ["on_time"] * 5 + ["missing"] * 5


def test_diary_period_ends_at_month_36_from_a_leap_day(app, factory, clock):
    """Feb 29 2024 + 36 months = Feb 28 2027 (clamped): the last diary day."""
    clock.set("2024-03-01T12:00:00+08:00")
    p = factory.participant(enrolled_on=date(2024, 2, 29))
    clock.set("2027-03-10T12:00:00+08:00")
    admin = factory.staff("admin", sites=())
    report = factory.as_(admin).get("/api/v1/compliance").json
    row = _by_code(report)[p.study_code]
    assert row["expected"] == (date(2027, 2, 28) - date(2024, 2, 29)).days + 1 == 1096
    assert row["missing"] == 1096
    assert row["current_missed_run"] == 1096
    calendar = factory.as_(admin).get(f"/api/v1/participants/{p.id}/compliance").json
    assert (calendar["from"], calendar["to"]) == ("2024-02-29", "2027-02-28")


def test_diary_period_end_from_jan_31_with_a_one_month_diary(app, factory, clock):
    """With a one-month diary, Jan 31 + 1 month = Feb 28: the SQL clamps like Python."""
    import dataclasses

    original = app.extensions["study"]
    app.extensions["study"] = dataclasses.replace(original, diary_months=1)
    try:
        clock.set("2026-01-31T12:00:00+08:00")
        p = factory.participant(enrolled_on=date(2026, 1, 31))
        clock.set("2026-03-10T12:00:00+08:00")
        report = factory.as_(factory.staff("admin", sites=())).get("/api/v1/compliance").json
    finally:
        app.extensions["study"] = original
    assert _by_code(report)[p.study_code]["expected"] == 29  # Jan 31 - Feb 28


def test_excused_days_bad_input_is_refused_and_writes_nothing(app, factory, trial):
    """422 for what the schema refuses; 409 with the rule's code for a well-formed range
    that the participant's dates refuse."""
    client = factory.as_(trial["coordinator"])
    url = f"/api/v1/participants/{trial['A'].id}/excused-days"
    bad = [
        ({"from": "2026-02-26", "to": "2026-02-25", "reason": "hospital"}, "to", 409),
        ({"from": "2026-02-01", "to": "2026-02-02", "reason": "hospital"}, "from", 409),
        ({"from": "2026-02-26", "to": "2030-02-27", "reason": "hospital"}, "to", 409),
        ({"from": "2026-02-26", "reason": "hospital"}, "to", 422),
        ({"from": "2026-02-26", "to": "2026-02-27"}, "reason", 422),
        ({"from": "2026-02-26", "to": "2026-02-27", "reason": "x", "extra": 1}, "extra", 422),
        ({"from": "2026-02-26", "to": "yesterday", "reason": "hospital"}, "to", 422),
    ]
    for body, field, status in bad:
        response = client.post(url, json=body)
        assert response.status_code == status, body
        assert field in response.json["errors"], response.json
        if status == 409:
            assert response.json["error"] in {
                "date_range_reversed",
                "before_enrolment",
                "date_range_too_long",
            }
    count = factory.scalar(select(func.count()).select_from(ExcusedDay))
    assert count == 3


def test_excusing_again_is_a_replay(factory, trial):
    client = factory.as_(trial["coordinator"])
    url = f"/api/v1/participants/{trial['A'].id}/excused-days"
    body = {"from": "2026-02-23", "to": "2026-02-25", "reason": "hospital stay"}
    response = client.post(url, json=body)
    assert response.status_code == 200
    assert [d["day"] for d in response.json] == ["2026-02-23", "2026-02-24", "2026-02-25"]
    audits = factory.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "excused_days.added")
    )
    assert audits == 1
    listed = client.get(url).json
    assert len(listed) == 3


def test_concurrent_overlapping_excuses_store_each_day_once(app, factory, trial):
    url = f"/api/v1/participants/{trial['B'].id}/excused-days"
    token = factory.token(trial["coordinator"])
    ranges = [("2026-02-21", "2026-02-25"), ("2026-02-23", "2026-02-27")] * 3
    statuses = []

    def excuse(first, last):
        response = app.test_client().post(
            url,
            json={"from": first, "to": last, "reason": "hospital stay"},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=excuse, args=r) for r in ranges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 201} and 201 in statuses
    days = factory.scalars(select(ExcusedDay.day).where(ExcusedDay.participant_id == trial["B"].id))
    assert sorted(days) == [date(2026, 2, d) for d in range(21, 28)]
    audited = factory.scalars(
        select(AuditEvent.after).where(
            AuditEvent.action == "excused_days.added",
            AuditEvent.participant_id == trial["B"].id,
        )
    )
    logged = sorted(day for after in audited for day in after["days"])
    # Each day was audited by exactly the request that added it.
    assert logged == [f"2026-02-{d}" for d in range(21, 28)]


def test_excusing_is_for_coordinators_of_the_site(factory, trial):
    url = f"/api/v1/participants/{trial['A'].id}/excused-days"
    body = {"from": "2026-02-26", "to": "2026-02-27", "reason": "hospital stay"}
    for role in ("monitor", "admin"):
        assert factory.as_(factory.staff(role, sites=())).post(url, json=body).status_code == 403
    assert factory.as_(trial["A"]).post(url, json=body).status_code == 403
    other = factory.staff("coordinator", sites=("LZU1",))
    assert factory.as_(other).post(url, json=body).status_code == 404
