"""Planning as a diff: no duplicates, cancel what lost its reason, never touch what was sent."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta

from sqlalchemy import select

from api.extensions import db
from api.models import Participant, Reminder, ScheduleEvent
from notifications import planning
from tests.reminders.conftest import at

ENROLLED = date(2026, 1, 5)  # msc arm: infusion 2 and lab visit 2 on 2026-04-05
NOW = "2026-04-01T12:00:00+08:00"  # the "3 days before" reminders are due 2 April 09:00


def plan_at(app, clock, when: str) -> planning.PlanResult:
    clock.set(when)
    with app.app_context():
        return planning.plan(clock())


def reminders(factory, participant: Participant) -> list[Reminder]:
    return factory.scalars(
        select(Reminder)
        .where(Reminder.participant_id == participant.id)
        .order_by(Reminder.due_at, Reminder.kind)
    )


def event(factory, participant: Participant, kind: str, number: int) -> ScheduleEvent:
    return factory.scalar(
        select(ScheduleEvent).where(
            ScheduleEvent.participant_id == participant.id,
            ScheduleEvent.kind == kind,
            ScheduleEvent.number == number,
        )
    )


def enrol(factory, clock, **extra) -> Participant:
    clock.set("2026-01-06T10:00:00+08:00")
    return factory.participant(arm="msc", enrolled_on=ENROLLED, **extra)


def submit_diary(factory, participant: Participant, day: str, when: str):
    factory.clock.set(when)
    response = factory.as_(participant).post(
        "/api/v1/me/diary-entries",
        json={
            "client_entry_id": str(uuid.uuid4()),
            "diary_date": day,
            "abdominal_distension": 0,
            "decreased_appetite": 0,
            "debilitation": 0,
            "leg_edema": 0,
            "discomfort_grade": 0,
            "recorded_at": when,
        },
    )
    assert response.status_code == 201, response.json
    return response


def test_plan_stores_the_due_event_and_diary_reminders(app, factory, clock):
    p = enrol(factory, clock)
    result = plan_at(app, clock, NOW)
    rows = reminders(factory, p)
    assert [(r.kind, r.target_date, r.offset_days, r.status) for r in rows] == [
        ("diary", date(2026, 4, 1), 0, "planned"),
        ("infusion", date(2026, 4, 5), 3, "planned"),
        ("visit", date(2026, 4, 5), 3, "planned"),
    ]
    assert rows[0].due_at == at("2026-04-01T20:00:00+08:00")
    assert rows[0].expires_at == at("2026-04-02T00:00:00+08:00")
    assert rows[1].due_at == at("2026-04-02T09:00:00+08:00")
    assert rows[1].expires_at == at("2026-04-05T00:00:00+08:00")
    infusion = event(factory, p, "infusion", 2)
    assert rows[1].target == f"event:{infusion.id}:2026-04-05"
    assert rows[1].schedule_event_id == infusion.id
    assert result.inserted == 3 and result.participants == 1


def test_replanning_never_duplicates(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    again = plan_at(app, clock, NOW)
    later = plan_at(app, clock, "2026-04-01T18:00:00+08:00")
    assert again.inserted == 0 and later.inserted == 0
    assert len(reminders(factory, p)) == 3


def test_concurrent_planners_store_each_reminder_once(app, factory, clock):
    people = [enrol(factory, clock) for _ in range(5)]
    clock.set(NOW)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                planning.plan(clock())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for p in people:
        assert len(reminders(factory, p)) == 3


def test_a_moved_event_cancels_its_old_reminders_and_plans_the_new_date(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    infusion = event(factory, p, "infusion", 2)
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 3))
    result = plan_at(app, clock, NOW)
    assert result.cancelled == {"event_moved_or_done": 1}
    rows = {(r.target, r.offset_days): r for r in reminders(factory, p)}
    old = rows[(f"event:{infusion.id}:2026-04-05", 3)]
    assert old.status == "cancelled" and old.last_error == "event_moved_or_done"
    # New date 3 April: "3 days before" was due 31 March (not superseded yet: "1 day
    # before" is due 2 April 09:00, within the 24 h horizon), both are planned.
    new3 = rows[(f"event:{infusion.id}:2026-04-03", 3)]
    new1 = rows[(f"event:{infusion.id}:2026-04-03", 1)]
    assert new3.status == new1.status == "planned"
    assert new1.due_at == at("2026-04-02T09:00:00+08:00")


def test_an_event_moved_back_revives_its_cancelled_reminder(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    infusion = event(factory, p, "infusion", 2)
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 20))
    plan_at(app, clock, NOW)
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 5))
    result = plan_at(app, clock, NOW)
    assert result.revived == 1
    rows = [r for r in reminders(factory, p) if r.kind == "infusion"]
    assert [(r.target_date, r.status, r.last_error) for r in rows] == [
        (date(2026, 4, 5), "planned", None)
    ]


def test_completed_or_missed_events_lose_their_reminders(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    factory.update(ScheduleEvent, event(factory, p, "infusion", 2).id, status="completed")
    factory.update(ScheduleEvent, event(factory, p, "lab_visit", 2).id, status="missed")
    plan_at(app, clock, NOW)
    statuses = {r.kind: r.status for r in reminders(factory, p)}
    assert statuses == {"diary": "planned", "infusion": "cancelled", "visit": "cancelled"}


def test_withdrawal_cancels_every_planned_reminder(app, factory, clock):
    p = enrol(factory, clock)
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    plan_at(app, clock, NOW)
    response = factory.as_(coordinator).patch(
        f"/api/v1/participants/{p.id}", json={"status": "withdrawn", "reason": "consent withdrawn"}
    )
    assert response.status_code == 200, response.json
    result = plan_at(app, clock, NOW)
    assert result.inserted == 0
    rows = reminders(factory, p)
    assert {r.status for r in rows} == {"cancelled"}
    assert {r.last_error for r in rows if r.kind == "diary"} == {"participant_not_active"}
    assert plan_at(app, clock, "2026-04-02T12:00:00+08:00").inserted == 0


def test_todays_entry_cancels_the_diary_reminder(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    submit_diary(factory, p, "2026-04-01", "2026-04-01T13:00:00+08:00")
    result = plan_at(app, clock, "2026-04-01T13:05:00+08:00")
    assert result.cancelled == {"diary_entry_present": 1}
    diary = [r for r in reminders(factory, p) if r.kind == "diary"]
    assert [(r.target_date, r.status) for r in diary] == [(date(2026, 4, 1), "cancelled")]


def test_a_day_with_an_entry_gets_no_diary_reminder(app, factory, clock):
    p = enrol(factory, clock)
    submit_diary(factory, p, "2026-04-01", "2026-04-01T08:00:00+08:00")
    plan_at(app, clock, NOW)
    assert [r.kind for r in reminders(factory, p)] == ["infusion", "visit"]


def test_unsent_reminders_expire_when_their_use_has_passed(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    result = plan_at(app, clock, "2026-04-02T00:00:00+08:00")
    assert result.expired == 1
    statuses = {(r.kind, r.target_date): r.status for r in reminders(factory, p)}
    assert statuses[("diary", date(2026, 4, 1))] == "expired"
    assert statuses[("diary", date(2026, 4, 2))] == "planned"
    plan_at(app, clock, "2026-04-05T00:00:00+08:00")
    statuses = {(r.kind, r.target_date): r.status for r in reminders(factory, p)}
    assert statuses[("infusion", date(2026, 4, 5))] == "expired"


def test_a_new_reminder_time_moves_planned_reminders_but_not_sent_ones(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    infusion_row = next(r for r in reminders(factory, p) if r.kind == "infusion")
    factory.update(Reminder, infusion_row.id, status="sent", sent_at=clock())
    response = factory.as_(p).patch(
        "/api/v1/me", json={"reminder_time": "10:30", "diary_reminder_time": "19:00"}
    )
    assert response.status_code == 200, response.json
    result = plan_at(app, clock, NOW)
    rows = {r.kind: r for r in reminders(factory, p)}
    assert result.moved == 2
    assert rows["diary"].due_at == at("2026-04-01T19:00:00+08:00")
    assert rows["visit"].due_at == at("2026-04-02T10:30:00+08:00")
    assert rows["infusion"].status == "sent"
    assert rows["infusion"].due_at == at("2026-04-02T09:00:00+08:00")


def test_a_sent_reminder_is_never_planned_again(app, factory, clock):
    p = enrol(factory, clock)
    plan_at(app, clock, NOW)
    for row in reminders(factory, p):
        factory.update(Reminder, row.id, status="sent", sent_at=clock())
    infusion = event(factory, p, "infusion", 2)
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 20))
    plan_at(app, clock, NOW)
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 5))
    result = plan_at(app, clock, NOW)
    assert result.inserted == 0 and result.revived == 0
    assert {r.status for r in reminders(factory, p)} == {"sent"}
    assert len(reminders(factory, p)) == 3


def test_participants_in_other_zones_are_planned_in_their_own(app, factory, clock):
    p = enrol(factory, clock, timezone="America/New_York", locale="en")
    plan_at(app, clock, "2026-04-01T12:00:00-04:00")
    diary = next(r for r in reminders(factory, p) if r.kind == "diary")
    assert diary.due_at == at("2026-04-01T20:00:00-04:00")
    assert diary.target_date == date(2026, 4, 1)


def test_preview_lists_the_coming_reminders_without_writing(app, factory, clock):
    p = enrol(factory, clock)
    clock.set(NOW)
    with app.app_context():
        participant = db.session.get(Participant, p.id)
        coming = planning.preview(participant, clock(), 14)
    kinds = [(r.kind, r.offset_days, r.target_date) for r in coming if r.kind != "diary"]
    assert kinds == [
        ("infusion", 3, date(2026, 4, 5)),
        ("visit", 3, date(2026, 4, 5)),
        ("infusion", 1, date(2026, 4, 5)),
        ("visit", 1, date(2026, 4, 5)),
    ]
    assert len([r for r in coming if r.kind == "diary"]) == 14
    assert reminders(factory, p) == []
    assert coming[0].due_at >= clock() - timedelta(days=1)
