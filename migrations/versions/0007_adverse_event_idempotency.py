"""adverse events: Idempotency-Key and request hash, unique per participant

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00

Columns are added in place and the uniqueness is a unique index, so SQLite needs no
table rebuild (a rebuild would have to carry every other constraint of the table).
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "uq_adverse_events_participant_id_idempotency_key"


def upgrade():
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_index(INDEX, "adverse_events", ["participant_id", "idempotency_key"], unique=True)


def downgrade():
    op.drop_index(INDEX, table_name="adverse_events")
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_column("request_hash")
        batch_op.drop_column("idempotency_key")
