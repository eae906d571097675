"""diary entries and schedule events: indexes that keep a site's reads to its own rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:50:00

A participant's calendar, the compliance counts and the reminder planner read
(participant, day, late, id) of one participant's range of days. With all four in one
index PostgreSQL answers them by an index-only scan: the cost follows that participant's
rows, never the table's, however the entries of a three-year trial lie on disk.

A participant's scheduled events by date (the worklist's events of the week, the reminder
planner's chunks) are found by (participant, status, target date) instead of a scan.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_diary_entries_participant_day_late": (
        "diary_entries",
        ["participant_id", "diary_date", "late", "id"],
    ),
    "ix_schedule_events_participant_status_target": (
        "schedule_events",
        ["participant_id", "status", "target_date"],
    ),
}


def upgrade():
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade():
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
