"""The benchmark's floor: Flask + SQLAlchemy + PyJWT doing the least a diary submit can do.

`POST /floor` decodes the bearer token (same algorithm, issuer and audience checks as the
service), reads the JSON body and inserts one row, one transaction per request. Anything
the real endpoint costs above this is validation, rules, versions, audit and
serialisation.

`POST /floor/diary-rows` is the same bare app writing what a diary submit must write,
with none of the service's code: it re-reads the participant (a revoked session stops at
once), then, in one statement, the entry (ON CONFLICT DO NOTHING), its version 1 and its
audit row, each with a content digest that the database's trigger links into the
participant's hash chain. What this costs above `/floor` is the database's share of a
submit, which no application code can avoid.

Served by `bench/diary_submit.py` as `gunicorn bench.floor_app:app` with DATABASE_URL and
JWT_SECRET in the environment.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from datetime import UTC, date, datetime
from typing import Any

import jwt
from flask import Flask, jsonify, request
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    text,
)

metadata = MetaData()
floor_entries = Table(
    "bench_floor_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

SECRET = os.environ.get("JWT_SECRET", "")
AUDIENCE = os.environ.get("JWT_AUDIENCE", "symptom-diary-api")
ISSUER = os.environ.get("JWT_ISSUER", "symptom-diary")

app = Flask(__name__)


@functools.cache
def engine() -> Engine:
    # Not importing the service's package (it would load all of it and skew the memory
    # figure): the same psycopg 3 driver spelled out here.
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, pool_pre_ping=True)


def _claims() -> dict[str, Any] | None:
    token = request.headers.get("Authorization", "").partition(" ")[2]
    try:
        claims: dict[str, Any] = jwt.decode(
            token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
        )
    except jwt.PyJWTError:
        return None
    return claims


@app.post("/floor")
def submit():  # type: ignore[no-untyped-def]
    claims = _claims()
    if claims is None:
        return jsonify(error="unauthorized"), 401
    participant_id = int(claims["sub"].partition(":")[2])
    with engine().begin() as conn:
        row_id = conn.execute(
            insert(floor_entries)
            .values(
                participant_id=participant_id,
                body=request.get_json(),
                received_at=datetime.now(UTC),
            )
            .returning(floor_entries.c.id)
        ).scalar_one()
    return jsonify(id=row_id), 201


SCORES = ("abdominal_distension", "decreased_appetite", "debilitation", "leg_edema")
SUBJECT = text("SELECT auth_epoch, status, timezone FROM participants WHERE id = :pid")
DIARY_ROWS = text(
    f"""
    WITH entry AS (
        INSERT INTO diary_entries (participant_id, diary_date, client_entry_id,
            {", ".join(SCORES)}, discomfort_grade, note, recorded_at,
            recorded_offset_minutes, timezone, received_at, late, source, version, updated_at)
        VALUES (:pid, :day, :key, {", ".join(f":{n}" for n in SCORES)}, :discomfort_grade,
            :note, :recorded_at, :offset, :timezone, :now, false, 'participant', 1, :now)
        ON CONFLICT DO NOTHING
        RETURNING id
    ), audit AS (
        INSERT INTO audit_events (at, actor_type, actor_id, action, entity_type, entity_id,
            participant_id, "after", chain_key, row_hash)
        SELECT :now, 'participant', :pid, 'diary_entry.created', 'diary_entry', entry.id,
            :pid, CAST(:after AS json), :chain_key, :audit_digest FROM entry
    )
    INSERT INTO diary_entry_versions (entry_id, participant_id, version, diary_date,
        {", ".join(SCORES)}, discomfort_grade, note, recorded_at, recorded_offset_minutes,
        source, actor_type, actor_id, at, chain_key, row_hash)
    SELECT entry.id, :pid, 1, :day, {", ".join(f":{n}" for n in SCORES)}, :discomfort_grade,
        :note, :recorded_at, :offset, 'participant', 'participant', :pid, :now, :chain_key,
        :version_digest FROM entry
    RETURNING entry_id
    """
)


def _digest(kind: str, content: str) -> str:
    return hashlib.sha256(f"{kind}:{content}".encode()).hexdigest()


@app.post("/floor/diary-rows")
def submit_diary_rows():  # type: ignore[no-untyped-def]
    claims = _claims()
    if claims is None:
        return jsonify(error="unauthorized"), 401
    participant_id = int(claims["sub"].partition(":")[2])
    body = request.get_json()
    recorded_at = datetime.fromisoformat(body["recorded_at"])
    offset = recorded_at.utcoffset()
    content = json.dumps(body, sort_keys=True)
    with engine().begin() as conn:
        subject = conn.execute(SUBJECT, {"pid": participant_id}).one_or_none()
        if subject is None or subject.auth_epoch != claims.get("ep"):
            return jsonify(error="session_revoked"), 401
        if subject.status != "active":
            return jsonify(error="participant_not_active"), 422
        entry_id = conn.execute(
            DIARY_ROWS,
            {
                "pid": participant_id,
                "day": date.fromisoformat(body["diary_date"]),
                "key": uuid.UUID(body["client_entry_id"]),
                **{name: body[name] for name in (*SCORES, "discomfort_grade", "note")},
                "recorded_at": recorded_at,
                "offset": int(offset.total_seconds() // 60) if offset else 0,
                "timezone": subject.timezone,
                "now": datetime.now(UTC),
                "after": content,
                "chain_key": f"participant:{participant_id}",
                "audit_digest": _digest("audit", content),
                "version_digest": _digest("version", content),
            },
        ).scalar_one_or_none()
    if entry_id is None:
        return jsonify(error="entry_exists_for_date"), 409
    return jsonify(id=entry_id), 201


@app.get("/ping")
def ping():  # type: ignore[no-untyped-def]
    """No database, no token: how fast the load generator and gunicorn can go at all."""
    return "ok"
