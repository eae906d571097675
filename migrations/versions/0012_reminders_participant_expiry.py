"""reminders: an index on (participant, expiry) for the planner's still-useful reminders

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:40:00

Each planning pass reads, chunk by chunk, the reminders of a range of participants that
have not yet expired. Sent and expired reminders pile up by the day for three years; with
both columns in one index the expiry is checked in the index, so a chunk visits the heap
only for the reminders still live, not for its participants' whole history.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_reminders_participant_expires", "reminders", ["participant_id", "expires_at"]
    )


def downgrade():
    op.drop_index("ix_reminders_participant_expires", table_name="reminders")
