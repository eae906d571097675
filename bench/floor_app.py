"""The benchmark's floor: Flask + SQLAlchemy + PyJWT doing the least a diary submit can do.

It decodes the bearer token (same algorithm, issuer and audience checks as the service),
reads the JSON body and inserts one row, one transaction per request. Anything the real
endpoint costs above this is validation, rules, versions, audit and serialisation.

Served by `bench/diary_submit.py` as `gunicorn bench.floor_app:app` with DATABASE_URL and
JWT_SECRET in the environment.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime

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


@app.post("/floor")
def submit():  # type: ignore[no-untyped-def]
    token = request.headers.get("Authorization", "").partition(" ")[2]
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    except jwt.PyJWTError:
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


@app.get("/ping")
def ping():  # type: ignore[no-untyped-def]
    """No database, no token: how fast the load generator and gunicorn can go at all."""
    return "ok"
