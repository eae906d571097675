"""The site's review: a serious adverse event due, older alerts acknowledged."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from api.extensions import db
from api.models import Alert, Participant
from api.services import adverse_events
from api.services.alerts import acknowledge
from api.services.demo.base import SiteBase
from api.services.demo.roster import ACK_NOTES, SAE_TERMS, TRAVEL_ZONES, WITHDRAWN_DAYS


class SiteReview(SiteBase):
    """What the site's coordinator has done with the alerts, and what is left to do."""

    def _serious_adverse_event(self) -> None:
        """Every site has one serious event whose 24 h report is due: odd sites overdue."""
        participant = self.cast["steady"]
        term, criteria = SAE_TERMS[self.index % len(SAE_TERMS)]
        hours = 30 if self.index % 2 else 19
        aware = self.now - timedelta(hours=hours)
        self.clock.at(aware + timedelta(minutes=40))
        adverse_events.record(
            self.actor,
            participant,
            {
                "term": term,
                "onset_date": self._local_today(participant) - timedelta(days=2),
                "grade": 4,
                "seriousness": criteria,
                "relation_to_infusion": "possible",
                "outcome": "not_recovered",
                "awareness_at": aware,
                "description": "Admitted through the emergency department.",
            },
        )

    def _review_alerts(self) -> None:
        """The site has worked through its older alerts: one became an adverse event."""
        recent = self.now - timedelta(days=4)
        alerts = db.session.scalars(
            select(Alert)
            .where(
                Alert.site_id == self.site.id,
                Alert.status == "open",
                Alert.kind.in_(("symptom", "symptom_urgent", "missed_diary")),
                Alert.created_at < recent,
            )
            .order_by(Alert.created_at)
        ).all()
        recorded_one = False
        for number, alert in enumerate(alerts):
            when = self.clock.at(alert.created_at + timedelta(hours=self.rng.randint(2, 20)))
            if alert.kind == "missed_diary":
                acknowledge(
                    self.actor,
                    alert,
                    note="Called: the phone was broken; paper diary meanwhile.",
                    decision=None,
                    adverse_event_id=None,
                    now=when,
                )
                continue
            ae_id = None
            if not recorded_one:
                ae_id = self._adverse_event_for(alert)
                recorded_one = True
            acknowledge(
                self.actor,
                alert,
                note=ACK_NOTES[number % len(ACK_NOTES)]
                if ae_id is None
                else "Ascites worse: recorded as an adverse event, diuretics adjusted.",
                decision="adverse_event_recorded" if ae_id else "not_adverse_event",
                adverse_event_id=ae_id,
                now=when,
            )

    def _adverse_event_for(self, alert: Alert) -> int:
        participant = db.session.get(Participant, alert.participant_id)
        assert participant is not None
        ae = adverse_events.record(
            self.actor,
            participant,
            {
                "term": "Ascites, worsening",
                "onset_date": date.fromisoformat((alert.details or {})["diary_date"]),
                "grade": 2,
                "seriousness": [],
                "relation_to_infusion": "unlikely",
                "outcome": "recovered",
                "diary_entry_id": alert.diary_entry_id,
            },
        )
        return ae.id

    def _highlights(self) -> list[str]:
        c = self.cast
        zone = TRAVEL_ZONES[self.index % len(TRAVEL_ZONES)]
        due = "overdue" if self.index % 2 else "due in 5 h"
        return [
            f"{c['steady'].study_code} (id {c['steady'].id}): serious adverse event, 24 h report "
            f"{due}; amendments and a paper-diary entry by the coordinator",
            f"{c['urgent'].study_code} (id {c['urgent'].id}): grade 4 yesterday (urgent alert)",
            f"{c['grade3'].study_code} (id {c['grade3'].id}): grade 3 two days ago; visit tomorrow",
            f"{c['missed'].study_code} (id {c['missed'].id}): 4 days missed, phone unreachable",
            f"{c['abroad'].study_code} (id {c['abroad'].id}): abroad ({zone})",
            f"{c['hospital'].study_code} (id {c['hospital'].id}): excused hospital stay",
            f"{c['withdrawn'].study_code} (id {c['withdrawn'].id}): withdrawn "
            f"{WITHDRAWN_DAYS} days ago",
        ]
