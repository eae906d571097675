"""staff: the console language each staff member chose (zh-CN or en; none = browser's)

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 14:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"

LOCALE_CHECK = "locale IN ('zh-CN', 'en')"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=10), nullable=True))
        batch_op.create_check_constraint(op.f("ck_staff_users_locale"), LOCALE_CHECK)


def downgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_locale"), type_="check")
        batch_op.drop_column("locale")
