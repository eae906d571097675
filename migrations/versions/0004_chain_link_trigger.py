"""tamper evidence: PostgreSQL links audit rows and diary versions as they are inserted

Revision ID: 0004_chain_link_trigger
Revises: 0003_chain
Create Date: 2026-11-26 02:05:00

The application sends each new row with its chain key and the digest of its content (in
`row_hash`); this BEFORE INSERT trigger locks the chain's head, gives the row the next
sequence number, the head's hash as `prev_hash` and sha256(prev_hash:digest:seq) as its
`row_hash`, and moves the head, all inside the INSERT (no round trip of its own). Rows
without a chain key are left alone (the application's switch for a benchmark baseline;
`audit verify` reports such rows). SQLite: the application links rows itself.
"""

from alembic import op

revision = "0004_chain_link_trigger"
down_revision = "0003_chain"
branch_labels = None
depends_on = None

CHAINED_TABLES = ("audit_events", "diary_entry_versions")

LINK_FUNCTION = """
CREATE OR REPLACE FUNCTION link_chain_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq integer;
    head text;
BEGIN
    IF NEW.chain_key IS NULL THEN
        RETURN NEW;
    END IF;
    IF NEW.row_hash IS NULL OR length(NEW.row_hash) <> 64 THEN
        RAISE EXCEPTION '% row without its content digest', TG_TABLE_NAME;
    END IF;
    SELECT seq, head_hash INTO head_seq, head
        FROM chain_heads WHERE chain_key = NEW.chain_key FOR UPDATE;
    IF NOT FOUND THEN
        -- The chain's first row; a concurrent first row makes the insert do nothing.
        INSERT INTO chain_heads (chain_key, seq, head_hash)
            VALUES (NEW.chain_key, 0, repeat('0', 64))
            ON CONFLICT (chain_key) DO NOTHING;
        SELECT seq, head_hash INTO head_seq, head
            FROM chain_heads WHERE chain_key = NEW.chain_key FOR UPDATE;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head;
    NEW.row_hash := encode(
        sha256(convert_to(head || ':' || NEW.row_hash || ':' || NEW.seq::text, 'UTF8')), 'hex'
    );
    UPDATE chain_heads SET seq = NEW.seq, head_hash = NEW.row_hash
        WHERE chain_key = NEW.chain_key;
    RETURN NEW;
END
$$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LINK_FUNCTION)
    for table in CHAINED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_link BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION link_chain_row()"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in CHAINED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_link ON {table}")
    op.execute("DROP FUNCTION IF EXISTS link_chain_row()")
