"""Every day and instant the API and the CLI accept lies in EARLIEST_DAY..LATEST_DAY.

Property-based (Hypothesis) over the extreme values of every date and date-time field
the OpenAPI document lists for requests (bodies and query strings), each sent in an
otherwise valid request of the access matrix (`tests/test_access_matrix.py`), as a role
the route allows: never a 5xx; a value outside the range is a 422 naming the field, one
inside is never refused for that field; and a refused request writes nothing (every
table's row count is unchanged). A sync batch answers one result per entry and keeps
the good entries around a bad one. The CLI's `--now` options: exit 2, no traceback.
The draws come from a fresh seed each run, printed at the start; `FUZZ_SEED=<n>` replays.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.models import Base, DiaryEntry
from api.schemas.base import EARLIEST_DAY, LATEST_DAY
from tests.fuzz_seed import announce, derived_seed, run_seed
from tests.test_access_matrix import ENDPOINTS, Rule, World, _call, _diary_entry, make_world

EXAMPLES = int(os.environ.get("INSTANT_EXAMPLES", "5"))
SEED = run_seed()
NOW = "2026-06-15T04:00:00+00:00"  # 12:00 in Shanghai, mid-month: today and yesterday open

DAY_EXTREMES = ("0001-01-01", "1999-12-31", "2000-01-01", "2100-12-31", "2101-01-01", "9999-12-31")
INSTANT_EXTREMES = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1999-12-31T23:59:59.999999-12:00",
    "2000-01-01T00:00:00+14:00",
    "2100-12-31T23:59:59-12:00",
    "2101-01-01T00:00:00+14:00",
)
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
DAYS = st.dates().map(date.isoformat)
INSTANTS = st.datetimes(timezones=OFFSETS).map(datetime.isoformat)


def in_range(value: str) -> bool:
    """The value's own date, as written (no conversion), within the accepted years."""
    return EARLIEST_DAY <= date.fromisoformat(value[:10]) <= LATEST_DAY


@dataclasses.dataclass(frozen=True)
class DateField:
    method: str
    rule: str  # the matrix's rule, `<int:participant_id>` style
    location: str  # "json" or "query"
    name: str  # as sent (data key)
    kind: str  # "date" or "date-time"

    @property
    def label(self) -> str:
        return f"{self.method} {self.rule} {self.location}:{self.name}"


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def request_date_fields(spec: dict[str, Any]) -> list[DateField]:
    """Every date/date-time a request may carry, from the OpenAPI document."""
    found = []
    for method, rule in ENDPOINTS:
        operation = spec["paths"].get(_openapi_path(rule), {}).get(method.lower())
        if operation is None:
            continue
        for param in operation.get("parameters", []):
            kind = param.get("schema", {}).get("format")
            if param.get("in") == "query" and kind in {"date", "date-time"}:
                found.append(DateField(method, rule, "query", param["name"], kind))
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        body = _resolve(spec, content["schema"])
        for name, prop in body.get("properties", {}).items():
            if prop.get("format") in {"date", "date-time"} and not prop.get("readOnly"):
                found.append(DateField(method, rule, "json", name, prop["format"]))
    return found


def row_counts(world: World) -> dict[str, int]:
    from api.extensions import db

    with world.factory.app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


def _etag_for(world: World, caller: Any, field: DateField, spec: Rule) -> str:
    """A PATCH goes with the resource's current ETag, so the request reaches the rules."""
    read = dataclasses.replace(spec, body=None, query=None)
    response = _call(world, caller, "GET", field.rule, read, world.own)
    return response.headers.get("ETag", "*")


def send(world: World, field: DateField, value: str):  # type: ignore[no-untyped-def]
    """The matrix's valid request for the route with `value` in the field."""
    spec = ENDPOINTS[(field.method, field.rule)]
    role = next(r for r in ("coordinator", "participant", "admin", "monitor") if r in spec.allowed)
    caller = world.own if role == "participant" else world.staff[role]
    if field.location == "json":
        base = spec.body or (lambda w, p: {})
        spec = dataclasses.replace(spec, body=lambda w, p: {**base(w, p), field.name: value})
    else:
        base_query = spec.query or (lambda w, p: {})
        spec = dataclasses.replace(spec, query=lambda w, p: {**base_query(w, p), field.name: value})
    client = world.factory.as_(caller)
    if field.method == "PATCH":
        etag = _etag_for(world, caller, field, spec)
        original = client._headers

        def with_etag(headers: dict[str, str] | None) -> dict[str, str]:
            return {**original(headers), "If-Match": etag}

        client._headers = with_etag  # type: ignore[method-assign]
        world.factory.as_ = lambda who: client  # type: ignore[method-assign]
        try:
            return _call(world, caller, field.method, field.rule, spec, world.own)
        finally:
            del world.factory.as_
    return _call(world, caller, field.method, field.rule, spec, world.own)


def check_value(world: World, field: DateField, value: str) -> None:
    before = row_counts(world)
    response = send(world, field, value)
    status, body = response.status_code, response.get_json(silent=True) or {}
    assert status < 500, (field.label, value, status, body)
    named = status == 422 and field.name in (body.get("errors") or {})
    if in_range(value):
        assert not named, (field.label, value, body)
    else:
        assert named, (field.label, value, status, body)
    if status >= 400:
        assert row_counts(world) == before, (field.label, value, status, body)


@pytest.fixture
def world(factory, clock) -> World:
    clock.set(NOW)
    return make_world(factory)


@pytest.fixture(scope="module", autouse=True)
def _announce_seed(pytestconfig: pytest.Config) -> None:
    announce(pytestconfig, "instants in range", SEED, EXAMPLES)


def _settings(*draw: str):  # type: ignore[no-untyped-def]
    """Hypothesis's settings and this run's seed for the draws named by `draw`."""

    def apply(test):  # type: ignore[no-untyped-def]
        chosen = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        return seed(derived_seed(SEED, *draw))(chosen(test))

    return apply


def test_every_request_date_field_is_bounded(app, world: World):
    """Each request field of format date/date-time: extremes, then Hypothesis draws."""
    fields_ = request_date_fields(app.test_client().get("/api/v1/openapi.json").json)
    labels = {f.label for f in fields_}
    # The document lists them all; these are the ones the issue names, at least.
    for expected in (
        "POST /api/v1/me/diary-entries json:recorded_at",
        "POST /api/v1/me/diary-entries json:diary_date",
        "PATCH /api/v1/me/diary-entries/<int:entry_id> json:recorded_at",
        "POST /api/v1/participants/<int:participant_id>/adverse-events json:awareness_at",
        "POST /api/v1/participants/<int:participant_id>/adverse-events json:onset_date",
        "POST /api/v1/participants/<int:participant_id>/excused-days json:from",
        "PATCH /api/v1/participants/<int:participant_id>/schedule/<int:event_id> json:target_date",
        "GET /api/v1/participants/<int:participant_id>/reminders query:to",
        "GET /api/v1/compliance query:from",
        "POST /api/v1/participants json:enrolled_on",
    ):
        assert expected in labels, (expected, sorted(labels))
    for spec in ENDPOINTS.values():  # what the paths point at exists before any count
        if spec.path:
            spec.path(world, world.own)
    failures: dict[str, str] = {}
    for field in fields_:
        extremes = INSTANT_EXTREMES if field.kind == "date-time" else DAY_EXTREMES
        try:
            for value in extremes:
                check_value(world, field, value)
            _drawn(world, field)
        except AssertionError as exc:  # every field's failure, then report them all
            failures[field.label] = str(exc)[:1500]
    assert not failures, f"replay with FUZZ_SEED={SEED}\n\n" + "\n\n".join(
        f"{k}\n{v}" for k, v in failures.items()
    )


def _drawn(world: World, field: DateField) -> None:
    @_settings(field.label)
    @given(value=INSTANTS if field.kind == "date-time" else DAYS)
    def drawn(value: str) -> None:
        check_value(world, field, value)

    drawn()


SYNC = "/api/v1/me/diary-entries/sync"


def _good(world: World, day: str) -> dict[str, Any]:
    return {**_diary_entry(world, world.own), "diary_date": day}


@pytest.mark.parametrize("name", ["recorded_at", "diary_date"])
def test_sync_answers_each_entry_and_keeps_the_good_ones(world: World, name: str):
    """A bad entry between two good ones: three results, the good ones stored, no 5xx;
    the same batch resent replays the good ones and rejects the bad one again."""
    phone = world.factory.as_(world.own)
    strategy = INSTANTS if name == "recorded_at" else DAYS

    extremes = INSTANT_EXTREMES if name == "recorded_at" else DAY_EXTREMES

    @_settings("sync", name)
    @given(value=st.one_of(st.sampled_from(extremes), strategy))
    def batch(value: str) -> None:
        before = world.factory.scalar(select(func.count()).select_from(DiaryEntry))
        entries = [
            _good(world, "2026-06-15"),
            {**_diary_entry(world, world.own), name: value},
            _good(world, "2026-06-14"),
        ]
        created = 0
        for attempt in range(2):
            response = phone.post(SYNC, json={"entries": entries})
            assert response.status_code == 200, response.json
            results = response.json["results"]
            assert [r["index"] for r in results] == [0, 1, 2]
            statuses = [r["status"] for r in results]
            assert all(s in {"created", "replayed", "conflict"} for s in statuses[::2]), results
            if not in_range(value):
                assert statuses[1] == "rejected" and name in results[1]["errors"], results[1]
            if attempt == 0:
                created = statuses.count("created")
            else:
                assert "created" not in statuses, results
        after = world.factory.scalar(select(func.count()).select_from(DiaryEntry))
        assert after - before == created

    batch()


def test_sync_item_failure_after_a_commit_is_that_items_result(world: World, monkeypatch):
    """An unexpected failure in the second entry (a bug, simulated): the queue's one
    transaction fails, the queue is stored one entry at a time, and the second entry fails
    again after the first was committed: 200, the first created, the second rejected, the
    third created."""
    from api.services import diary as service

    real = service._entry_row

    def failing_day(participant, values, *args):  # type: ignore[no-untyped-def]
        if values["diary_date"].isoformat() == "2026-06-14":
            raise OverflowError("simulated conversion failure")
        return real(participant, values, *args)

    monkeypatch.setattr(service, "_entry_row", failing_day)
    phone = world.factory.as_(world.own)
    entries = [_good(world, "2026-06-15"), _good(world, "2026-06-14"), _good(world, "2026-06-13")]
    response = phone.post(SYNC, json={"entries": entries})
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["error"] == "internal_error" and results[1]["errors"]
    stored = {e["client_entry_id"] for e in phone.get("/api/v1/me/diary-entries").json}
    assert stored == {entries[0]["client_entry_id"], entries[2]["client_entry_id"]}


def test_sync_entry_of_any_shape_gets_a_result(world: World):
    """Non-objects, wrong types and extreme values: one `rejected` result each."""
    phone = world.factory.as_(world.own)
    odd: list[Any] = [
        None,
        7,
        "entry",
        [],
        {"client_entry_id": 5},
        {**_good(world, "2026-06-15"), "recorded_at": "9999-12-31T23:59:59-12:00"},
        {**_good(world, "2026-06-15"), "diary_date": "0001-01-01"},
        {**_good(world, "2026-06-15"), "recorded_at": "2026-06-15T12:00:00+25:00"},
        {**_good(world, "2026-06-15"), "client_entry_id": str(uuid.uuid4()) + "x"},
    ]
    response = phone.post(SYNC, json={"entries": odd})
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert len(results) == len(odd)
    assert all(r["status"] == "rejected" and r["errors"] for r in results), results
    assert world.factory.scalar(select(func.count()).select_from(DiaryEntry)) == 0


# A future --now writes only with --force; --dry-run runs the same pass and writes nothing.
NOW_COMMANDS = (
    ("alerts", "check", "--dry-run"),
    ("notifications", "preview", "{study_code}", "--days", "2"),
    ("notifications", "run", "--dry-run"),
)


@pytest.mark.parametrize("command", NOW_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_cli_now_is_bounded(app, world: World, command: tuple[str, ...]):
    """`--now` outside the range: a click usage error (exit 2) naming --now, no traceback;
    inside it the command runs (exit 0)."""
    runner = app.test_cli_runner()
    args = [part.format(study_code=world.own.study_code) for part in command]

    def run(value: str) -> None:
        result = runner.invoke(args=[*args, "--now", value])
        if in_range(value):
            assert result.exit_code == 0, (value, result.output, result.exception)
        else:
            assert result.exit_code == 2, (value, result.output, result.exception)
            assert "--now" in result.output and "Traceback" not in result.output
            assert isinstance(result.exception, SystemExit), result.exception

    for value in INSTANT_EXTREMES:
        run(value)
    if command[:2] != ("notifications", "run"):  # a whole worker pass per draw: extremes only

        @_settings("cli", *command)
        @given(value=INSTANTS)
        def drawn(value: str) -> None:
            run(value)

        drawn()
