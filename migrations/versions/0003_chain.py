"""tamper evidence: hash-chain sequence numbers, chain heads, append-only audit and versions

Revision ID: 0003_chain
Revises: 0002_review
Create Date: 2026-11-26 02:00:00

The audit trail and the diary versions become append-only. On PostgreSQL a row trigger
refuses every UPDATE and DELETE (TRUNCATE stays possible for the table owner, which the
test suite uses between tests); on SQLite the application refuses them (api/chain.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_chain"
down_revision = "0002_review"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("audit_events", "diary_entry_versions")

REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION refuse_append_only_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade():
    op.create_table(
        "chain_heads",
        sa.Column("chain_key", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain_key", name=op.f("pk_chain_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_chain_key_seq"), ["chain_key", "seq"]
        )
    with op.batch_alter_table("diary_entry_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_diary_entry_versions_chain_key_seq"), ["chain_key", "seq"]
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change()"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS refuse_append_only_change()")
    with op.batch_alter_table("diary_entry_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_diary_entry_versions_chain_key_seq"), type_="unique"
        )
        batch_op.drop_column("seq")
        batch_op.drop_column("chain_key")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_chain_key_seq"), type_="unique")
        batch_op.drop_column("seq")
    op.drop_table("chain_heads")
