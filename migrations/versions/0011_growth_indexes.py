"""diary entries: a participant's days with their lateness, read from the index alone

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:50:00

A participant's calendar, the compliance counts and the reminder planner read
(participant, day, late, id) of one participant's range of days. With all four in one
index PostgreSQL answers them by an index-only scan: the cost follows that participant's
rows, never the table's, however the entries of a three-year trial lie on disk.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEX = "ix_diary_entries_participant_day_late"


def upgrade():
    op.create_index(INDEX, "diary_entries", ["participant_id", "diary_date", "late", "id"])


def downgrade():
    op.drop_index(INDEX, table_name="diary_entries")
