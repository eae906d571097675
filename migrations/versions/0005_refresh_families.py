"""refresh sessions: the family's start (absolute lifetime) and each link's predecessor

Revision ID: 0005
Revises: 0004_chain_link_trigger
Create Date: 2026-12-02 14:40:00

`family_started_at` bounds a family's lifetime (REFRESH_FAMILY_MAX_DAYS): existing rows
get their family's earliest `issued_at`. `parent_id` records which link's rotation issued
a link, so a retried rotation within the grace period is traceable.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_chain_link_trigger"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("family_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_refresh_tokens_parent_id_refresh_tokens"),
            "refresh_tokens",
            ["parent_id"],
            ["id"],
        )
    op.execute(
        "UPDATE refresh_tokens SET family_started_at = (SELECT MIN(f.issued_at) "
        "FROM refresh_tokens AS f WHERE f.family_id = refresh_tokens.family_id)"
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "family_started_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )


def downgrade():
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_refresh_tokens_parent_id_refresh_tokens"), type_="foreignkey"
        )
        batch_op.drop_column("parent_id")
        batch_op.drop_column("family_started_at")
