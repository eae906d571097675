"""Test factories and an authenticated client per role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from api.auth import PARTICIPANT, hash_password, issue_access_token
from api.extensions import db
from api.models import Participant, Site, StaffUser
from api.services import participants as participant_service

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH: str | None = None


@contextmanager
def statements_sent(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine sends inside the block, in order."""
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _password_hash() -> str:
    """One argon2 hash per test run: every factory-made account shares this password."""
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = hash_password(PASSWORD)
    return _PASSWORD_HASH


@dataclass
class ApiClient:
    """The Flask test client with a bearer token on every request."""

    client: FlaskClient
    token: str | None

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.token:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self._headers(headers), **kw)

    def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.post(url, json=json, headers=self._headers(headers), **kw)

    def patch(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.patch(url, json=json, headers=self._headers(headers), **kw)

    def delete(self, url: str, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.delete(url, headers=self._headers(headers), **kw)


def _detach(obj: Any) -> Any:
    """Load an object's columns and drop it from the session, so it outlives the context."""
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


class Factory:
    """Makes staff, participants and tokens straight through the domain layer.

    Each call runs in an app context of its own and returns detached objects: requests
    made by the test then run in their own contexts and sessions, as in production.
    """

    def __init__(self, app: Flask, client: FlaskClient, clock: Any) -> None:
        self.app = app
        self.client = client
        self.clock = clock

    def scalar(self, stmt: Any) -> Any:
        with self.app.app_context():
            return db.session.scalar(stmt)

    def scalars(self, stmt: Any) -> list[Any]:
        with self.app.app_context():
            return list(db.session.scalars(stmt))

    def update(self, model: type, ident: int, **values: Any) -> None:
        """Change a row behind the API's back (set-up for a test)."""
        with self.app.app_context():
            obj = db.session.get(model, ident)
            for name, value in values.items():
                setattr(obj, name, value)
            db.session.commit()

    def site(self, code: str) -> Site:
        with self.app.app_context():
            return _detach(self._site(code))

    @staticmethod
    def _site(code: str) -> Site:
        site = db.session.scalar(select(Site).where(Site.code == code))
        assert site is not None, code
        return site

    def staff(
        self,
        role: str = "coordinator",
        sites: tuple[str, ...] = ("BJ302",),
        email: str | None = None,
    ) -> StaffUser:
        from api.clock import utcnow

        with self.app.app_context():
            staff = StaffUser(
                email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.org",
                password_hash=_password_hash(),
                role=role,
                is_active=True,
                created_at=utcnow(),
                auth_epoch=0,
                sites=[self._site(code) for code in sites] if role == "coordinator" else [],
            )
            db.session.add(staff)
            db.session.commit()
            return _detach(staff)

    def participant(
        self,
        site: str = "BJ302",
        arm: str = "msc",
        enrolled_on: date | None = None,
        timezone: str = "Asia/Shanghai",
        locale: str = "zh-CN",
        **extra: Any,
    ) -> Participant:
        from api.clock import utcnow

        with self.app.app_context():
            enrolment = participant_service.enrol(
                ("system", None),
                site=self._site(site),
                arm=arm,
                enrolled_on=enrolled_on or utcnow().date().replace(day=1),
                timezone=timezone,
                locale=locale,
                **extra,
            )
            db.session.commit()
            participant = _detach(enrolment.participant)
        participant.activation_code = enrolment.activation_code  # type: ignore[attr-defined]
        return participant

    def token(self, who: StaffUser | Participant) -> str:
        with self.app.app_context():
            if isinstance(who, StaffUser):
                return issue_access_token("staff", who.id, who.role, who.auth_epoch)[0]
            return issue_access_token("participant", who.id, PARTICIPANT, who.auth_epoch)[0]

    def as_(self, who: StaffUser | Participant | None) -> ApiClient:
        return ApiClient(self.client, self.token(who) if who is not None else None)
