"""database guards: CHECK constraints, a TRUNCATE guard, chain heads only the owner moves

Revision ID: 0008
Revises: 0004_chain_link_trigger
Create Date: 2026-12-02 14:40:00

Both databases: a named CHECK constraint (``ck_<table>_<name>``) on every bounded value
(scores 0-4, statuses, kinds, platforms, roles, arms, sources, locales, local times,
counters), so a writer that skips the application's validation is refused by the
database. SQLite gets them by recreating each table (batch mode).

PostgreSQL, so that the service can run as an application role that does not own the
tables (`flask --app wsgi db grant-app-role`):
- a statement-level trigger refuses TRUNCATE of the audit trail, the diary versions and
  the chain heads for everyone, the owner included, unless the session has switched
  maintenance on with ``SET LOCAL diary.maintenance = 'on'`` (the test suite's clean-up
  does; nothing in the service does);
- the chain-linking trigger function runs as its owner (SECURITY DEFINER), and a new
  function `lock_chain_heads(text[])` locks (and creates) heads for a flush that extends
  several chains, so the application role needs no UPDATE on `chain_heads`: only these
  functions, owned by the migration role, move a head.

The values are written out here as they were when this migration was made (a migration
must not change meaning when the models do later).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCORES = ("abdominal_distension", "decreased_appetite", "debilitation", "leg_edema",
          "discomfort_grade")
OFFSET_MAX = 24 * 60 - 1
PROTECTED_TABLES = ("audit_events", "diary_entry_versions", "chain_heads")
MAINTENANCE_SETTING = "diary.maintenance"


def _one_of(column, values):
    return column, f"{column} IN ({', '.join(repr(v) for v in values)})"


def _between(column, low, high=None):
    if high is None:
        return column, f"{column} >= {low}"
    return column, f"{column} BETWEEN {low} AND {high}"


def _local_time(column):
    hours = ", ".join(f"'{h:02d}'" for h in range(24))
    minutes = ", ".join(f"'{m:02d}'" for m in range(60))
    return column, (
        f"length({column}) = 5 AND substr({column}, 3, 1) = ':' "
        f"AND substr({column}, 1, 2) IN ({hours}) AND substr({column}, 4, 2) IN ({minutes})"
    )


def _entry_checks():
    return [
        *(_between(name, 0, 4) for name in SCORES),
        _one_of("source", ("participant", "staff")),
        _between("recorded_offset_minutes", -OFFSET_MAX, OFFSET_MAX),
        _between("version", 1),
    ]


CHECKS = {
    "sites": [_between("next_participant_number", 1)],
    "staff_users": [
        _one_of("role", ("coordinator", "monitor", "admin")),
        _between("auth_epoch", 0),
    ],
    "refresh_tokens": [_one_of("subject_type", ("staff", "participant"))],
    "participants": [
        _one_of("arm", ("msc", "control")),
        _one_of("status", ("active", "withdrawn", "completed", "deceased")),
        _one_of("locale", ("zh-CN", "en")),
        _local_time("reminder_time"),
        _local_time("diary_reminder_time"),
        _between("auth_epoch", 0),
        _between("version", 1),
    ],
    "audit_events": [
        _one_of("actor_type", ("staff", "participant", "system")),
        _between("seq", 1),
    ],
    "chain_heads": [_between("seq", 0), ("head_hash", "length(head_hash) = 64")],
    "devices": [_one_of("platform", ("android", "ios")), _one_of("locale", ("zh-CN", "en"))],
    "diary_entries": _entry_checks(),
    "diary_entry_versions": [
        *_entry_checks(),
        _one_of("actor_type", ("participant", "staff")),
        _between("seq", 1),
    ],
    "schedule_events": [
        _one_of("kind", ("infusion", "lab_visit", "follow_up")),
        _one_of("status", ("scheduled", "completed", "missed", "cancelled")),
        _between("number", 1),
        _between("month", 0),
        _between("version", 1),
        ("window", "window_start <= window_end"),
    ],
    "adverse_events": [
        _between("grade", 0, 4),
        _one_of(
            "relation_to_infusion", ("not_related", "unlikely", "possible", "probable", "definite")
        ),
        _one_of(
            "outcome",
            ("recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal",
             "unknown"),
        ),
        _between("version", 1),
    ],
    "reminders": [
        _one_of("kind", ("infusion", "visit", "diary")),
        _one_of(
            "status",
            ("planned", "sending", "sent", "expired", "cancelled", "failed", "undeliverable"),
        ),
        _between("attempts", 0),
        _between("offset_days", 0),
    ],
    "alerts": [
        _one_of("kind", ("symptom", "symptom_urgent", "missed_diary", "serious_adverse_event")),
        _one_of("status", ("open", "acknowledged")),
        _one_of("decision", ("not_adverse_event", "adverse_event_recorded")),
    ],
    "reminder_deliveries": [_between("attempt", 1)],
}

REFUSE_TRUNCATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('{MAINTENANCE_SETTING}', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only a maintenance session may truncate it: '
                     'SET LOCAL {MAINTENANCE_SETTING} = ''on''';
END
$$
"""

LOCK_HEADS_FUNCTION = """
CREATE OR REPLACE FUNCTION lock_chain_heads(keys text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    -- A chain's first row: create its head (a concurrent creator's insert does nothing).
    INSERT INTO chain_heads (chain_key, seq, head_hash)
        SELECT k, 0, repeat('0', 64) FROM unnest(keys) AS k
        ORDER BY k
        ON CONFLICT (chain_key) DO NOTHING;
    -- Lock them in one sorted order, so two flushes of several chains never deadlock.
    PERFORM 1 FROM chain_heads WHERE chain_key = ANY(keys) ORDER BY chain_key FOR UPDATE;
END
$$
"""


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _schema_path() -> str:
    """The schema of the tables, fixed into the owner-run functions (no search_path tricks)."""
    bind = op.get_bind()
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    return f"{bind.dialect.identifier_preparer.quote(schema)}, pg_temp"


def upgrade():
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate="auto") as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), condition)
    if not _postgresql():
        return
    op.execute(REFUSE_TRUNCATE_FUNCTION)
    for table in PROTECTED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()"
        )
    path = _schema_path()
    op.execute(LOCK_HEADS_FUNCTION)
    for function in ("lock_chain_heads(text[])", "link_chain_row()"):
        op.execute(f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = {path}")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")


def downgrade():
    if _postgresql():
        op.execute("ALTER FUNCTION link_chain_row() SECURITY INVOKER RESET search_path")
        op.execute("GRANT EXECUTE ON FUNCTION link_chain_row() TO PUBLIC")
        op.execute("DROP FUNCTION IF EXISTS lock_chain_heads(text[])")
        for table in PROTECTED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS refuse_truncate()")
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate="auto") as batch_op:
            for name, _condition in checks:
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
