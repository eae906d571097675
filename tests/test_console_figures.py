"""The compliance page's figures on hand-made data whose answers are stated here.

Daily on-time rates reuse the compliance review's data set (tests/test_compliance.py,
whose docstring states each participant's days); per day at BJ302 they are:

  Feb 10-14  C only: 1 expected, 1 on time
  Feb 15-19  A and C: 2 expected, A on time            (C misses them)
  Feb 20     A and B on time (C withdrawn that day: no longer expected)
  Feb 21-22  A late, then missing; B on time: 2 expected, 1 on time
  Feb 23-24  A excused without entry (not expected); B on time: 1, 1
  Feb 25     A excused but entered on time (expected); B: 2, 2
  Feb 26-27  A missing, B on time: 2, 1
  Feb 28     A missing; B's own yesterday is Feb 27: 1, 0
  Mar 1      nobody's yesterday yet: 0, 0
Summed, these are the site's figures in the compliance report (30 expected, 20 on time).

The reminder funnel's data set is made below, reminder by reminder.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from api.extensions import db
from api.models import Device, Participant, Reminder, ReminderDelivery, Site
from api.services.figures import daily_on_time_rates, reminder_funnel
from tests.diary_rows import add_entry
from tests.test_compliance import NOW, trial  # noqa: F401 (the shared data set)


def _site_ids(app, *codes: str) -> list[int]:
    with app.app_context():
        return [db.session.query(Site.id).filter(Site.code == c).scalar() for c in codes]


def test_daily_on_time_rates_give_the_stated_days(app, clock, trial):  # noqa: F811
    clock.set(NOW)
    bj302 = _site_ids(app, "BJ302")
    with app.app_context():
        rows = daily_on_time_rates(bj302, clock(), date(2026, 2, 9), date(2026, 3, 1))
    got = {row.day.isoformat(): (row.expected, row.on_time) for row in rows}
    stated = {"2026-02-09": (0, 0)}
    stated |= {f"2026-02-{d:02d}": (1, 1) for d in range(10, 15)}
    stated |= {f"2026-02-{d:02d}": (2, 1) for d in range(15, 20)}
    stated |= {"2026-02-20": (2, 2), "2026-02-21": (2, 1), "2026-02-22": (2, 1)}
    stated |= {"2026-02-23": (1, 1), "2026-02-24": (1, 1), "2026-02-25": (2, 2)}
    stated |= {"2026-02-26": (2, 1), "2026-02-27": (2, 1), "2026-02-28": (1, 0)}
    stated |= {"2026-03-01": (0, 0)}
    assert got == stated
    assert [row.day for row in rows] == sorted(row.day for row in rows)
    assert rows[6].rate == 0.5
    assert rows[0].rate is None


def test_daily_rates_sum_to_the_compliance_report(app, clock, factory, trial):  # noqa: F811
    clock.set(NOW)
    report = factory.as_(trial["coordinator"]).get("/api/v1/compliance?site=BJ302").json
    bj302 = _site_ids(app, "BJ302")
    with app.app_context():
        rows = daily_on_time_rates(bj302, clock(), date(2026, 1, 1), date(2026, 3, 1))
    site = report["sites"][0]
    assert sum(r.expected for r in rows) == site["expected"] == 30
    assert sum(r.on_time for r in rows) == site["on_time"] == 20


def test_daily_rates_of_a_site_without_participants_are_zero_days(app, clock):
    clock.set(NOW)
    empty_site = _site_ids(app, "HNBOAO")
    with app.app_context():
        rows = daily_on_time_rates(empty_site, clock(), date(2026, 2, 27), date(2026, 3, 1))
        assert daily_on_time_rates(empty_site, clock(), date(2026, 3, 2), date(2026, 3, 1)) == []
    assert [(r.expected, r.on_time, r.rate) for r in rows] == [(0, 0, None)] * 3


def _reminder(
    participant: Participant, kind: str, day: str, sent_at: datetime | None, *, opened: bool = False
) -> Reminder:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    reminder = Reminder(
        participant_id=participant.id,
        kind=kind,
        target=f"{kind}:{day}:{uuid.uuid4().hex[:6]}",
        target_date=date.fromisoformat(day),
        offset_days=0,
        due_at=sent_at or now,
        expires_at=(sent_at or now) + timedelta(hours=6),
        status="sent" if sent_at else "planned",
        attempts=1 if sent_at else 0,
        sent_at=sent_at,
        opened_at=sent_at + timedelta(minutes=5) if opened else None,
        created_at=now,
        updated_at=now,
    )
    db.session.add(reminder)
    db.session.flush()
    return reminder


def _delivery(reminder: Reminder, device: Device, *, accepted: bool, attempt: int = 1) -> None:
    db.session.add(
        ReminderDelivery(
            reminder_id=reminder.id,
            device_id=device.id,
            attempt=attempt,
            at=reminder.sent_at,
            message_id=f"projects/x/messages/{uuid.uuid4().hex}" if accepted else None,
            error_code=None if accepted else "UNAVAILABLE",
        )
    )


def _device(participant: Participant, token: str) -> Device:
    now = datetime(2026, 2, 1, tzinfo=UTC)
    device = Device(
        participant_id=participant.id,
        token=token,
        platform="android",
        active=True,
        created_at=now,
        updated_at=now,
    )
    db.session.add(device)
    db.session.flush()
    return device


@pytest.fixture
def funnel_data(app, factory, clock):
    """Entries are received at 13:01 UTC of their day (21:01 in Shanghai).

    BJ302, participant A:
      r1 diary    sent 12:01, FCM accepted, opened, entry at 13:01 (1 h)   -> all four
      r2 diary    sent 09:01, only FCM errors, not opened, entry 4 h later -> sent only
      r3 diary    planned, never sent                                       -> nothing
      r4 infusion sent, accepted twice (two phones), opened, no entry that day
                  -> sent, delivered, opened
      r5 diary    sent 10:02, one error then accepted, entry 2 h 59 min later
                  -> sent, delivered, filled
      r6 diary    sent 13:11, ten minutes after that day's entry            -> sent only
      r7 visit    sent Jan 10, accepted                                     -> only without a range
    LZU1, participant D: r8 diary sent, accepted, opened, entry 1 h later -> other site
    """
    clock.set("2026-02-01T10:00:00+08:00")
    a = factory.participant(enrolled_on=date(2026, 1, 1))
    d = factory.participant(site="LZU1", enrolled_on=date(2026, 1, 1))
    for day in ("2026-02-10", "2026-02-11", "2026-02-13", "2026-02-14"):
        add_entry(app, a, day)
    add_entry(app, d, "2026-02-10")

    def at(day: str, hh: int, mm: int) -> datetime:
        return datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}:00+00:00")

    with app.app_context():
        phone, tablet, d_phone = _device(a, "tok-a1"), _device(a, "tok-a2"), _device(d, "tok-d")
        r1 = _reminder(a, "diary", "2026-02-10", at("2026-02-10", 12, 1), opened=True)
        _delivery(r1, phone, accepted=True)
        r2 = _reminder(a, "diary", "2026-02-11", at("2026-02-11", 9, 1))
        _delivery(r2, phone, accepted=False)
        _delivery(r2, tablet, accepted=False)
        _reminder(a, "diary", "2026-02-12", None)
        r4 = _reminder(a, "infusion", "2026-02-12", at("2026-02-12", 1, 0), opened=True)
        _delivery(r4, phone, accepted=True)
        _delivery(r4, tablet, accepted=True)
        r5 = _reminder(a, "diary", "2026-02-13", at("2026-02-13", 10, 2))
        _delivery(r5, phone, accepted=False)
        _delivery(r5, phone, accepted=True, attempt=2)
        _reminder(a, "diary", "2026-02-14", at("2026-02-14", 13, 11))
        r7 = _reminder(a, "visit", "2026-01-10", at("2026-01-10", 1, 0))
        _delivery(r7, phone, accepted=True)
        r8 = _reminder(d, "diary", "2026-02-10", at("2026-02-10", 12, 1), opened=True)
        _delivery(r8, d_phone, accepted=True)
        db.session.commit()


def test_reminder_funnel_gives_the_stated_counts(app, funnel_data):
    bj302 = _site_ids(app, "BJ302")
    with app.app_context():
        rows = reminder_funnel(bj302)
    assert [(r.kind, r.sent, r.delivered, r.opened, r.filled_within_3h) for r in rows] == [
        ("infusion", 1, 1, 1, 0),
        ("visit", 1, 1, 0, 0),
        ("diary", 4, 2, 1, 2),
    ]


def test_reminder_funnel_in_a_sending_range_and_across_sites(app, funnel_data):
    both, empty_site = _site_ids(app, "BJ302", "LZU1"), _site_ids(app, "HNBOAO")
    with app.app_context():
        feb = reminder_funnel(
            both,
            sent_from=datetime(2026, 2, 1, tzinfo=UTC),
            sent_to=datetime(2026, 3, 1, tzinfo=UTC),
        )
        other = reminder_funnel(empty_site)
    by_kind = {r.kind: (r.sent, r.delivered, r.opened, r.filled_within_3h) for r in feb}
    assert by_kind == {
        "infusion": (1, 1, 1, 0),
        "visit": (0, 0, 0, 0),
        "diary": (5, 3, 2, 3),
    }
    assert all((r.sent, r.delivered, r.opened, r.filled_within_3h) == (0, 0, 0, 0) for r in other)
