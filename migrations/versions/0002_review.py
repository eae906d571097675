"""coordinator review: local day of a participant's status change

Revision ID: 0002_review
Revises: 0001
Create Date: 2026-11-26 01:40:00

"""
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0002_review"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_changed_on", sa.Date(), nullable=True))
    # Existing status changes: their local day, from the instant and the participant's zone.
    participants = sa.table(
        "participants",
        sa.column("id", sa.Integer()),
        sa.column("timezone", sa.String()),
        sa.column("status_changed_at", sa.DateTime(timezone=True)),
        sa.column("status_changed_on", sa.Date()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(participants.c.id, participants.c.timezone, participants.c.status_changed_at)
        .where(participants.c.status_changed_at.is_not(None))
    ).all()
    for pid, zone, changed_at in rows:
        if changed_at.tzinfo is None:
            from datetime import UTC

            changed_at = changed_at.replace(tzinfo=UTC)
        conn.execute(
            participants.update()
            .where(participants.c.id == pid)
            .values(status_changed_on=changed_at.astimezone(ZoneInfo(zone)).date())
        )


def downgrade():
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("status_changed_on")
