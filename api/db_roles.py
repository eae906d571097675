"""The application's PostgreSQL role: what the service may do to the tables it does not own.

In production the schema belongs to a migration role (`MIGRATION_DATABASE_URL`) and the
service connects as an application role (`DATABASE_URL`) that owns nothing. Owning
nothing is what makes the audit trail's guards hold against the service itself: only an
owner may ``ALTER TABLE … DISABLE TRIGGER`` or drop a trigger, and privileges are all a
non-owner has. `grant_app_role` (re)applies them, idempotently, after every
``db upgrade``:

- ordinary tables: SELECT, INSERT, UPDATE, DELETE (no TRUNCATE, no TRIGGER);
- the append-only tables (audit rows, diary versions): SELECT and INSERT only;
- `chain_heads` and `alembic_version`: SELECT only. Heads are moved by the owner's
  SECURITY DEFINER functions (migration 0008), never by the application's own writes;
- sequences: USAGE; `lock_chain_heads(text[])`: EXECUTE;
- default privileges, so a table a later migration adds is usable at once (ordinary
  privileges: run ``db grant-app-role`` again to narrow a new append-only table).

TRUNCATE of the protected tables is refused by a trigger for every role, the owner's
included, unless the session sets the maintenance switch (`MAINTENANCE_SETTING`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

MAINTENANCE_SETTING = "diary.maintenance"  # SET LOCAL diary.maintenance = 'on'
APPEND_ONLY_TABLES = ("audit_events", "diary_entry_versions")
READ_ONLY_TABLES = ("chain_heads", "alembic_version")
ORDINARY_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY_PRIVILEGES = "SELECT, INSERT"
OWNER_FUNCTIONS = ("lock_chain_heads(text[])",)


class RoleError(RuntimeError):
    """The role cannot safely be the application's role, or the database has no roles."""


@dataclass
class GrantReport:
    role: str
    owner: str
    created: bool
    login: bool
    tables: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        made = "created" if self.created else "updated"
        login = "LOGIN" if self.login else "NOLOGIN"
        kinds: dict[str, list[str]] = {}
        for table, privileges in sorted(self.tables.items()):
            kinds.setdefault(privileges, []).append(table)
        lines = [f"Role {self.role} {made} ({login}); tables owned by {self.owner}:"]
        lines += [f"  {privileges}: {', '.join(names)}" for privileges, names in kinds.items()]
        return "\n".join(lines)


def table_privileges(table: str) -> str:
    """What the application role may do to `table`."""
    if table in APPEND_ONLY_TABLES:
        return APPEND_ONLY_PRIVILEGES
    if table in READ_ONLY_TABLES:
        return "SELECT"
    return ORDINARY_PRIVILEGES


def grant_app_role(connection: Connection, role: str, password: str | None = None) -> GrantReport:
    """Create `role` if missing and (re)apply its privileges on this database's schema.

    Run as the tables' owner. Without a password a new role is NOLOGIN (the operator
    then gives it a login, or makes it a group of the login role); with one it may log in,
    and only the password's SCRAM verifier, computed here, reaches the server.
    """
    if connection.dialect.name != "postgresql":
        raise RoleError("Database roles exist on PostgreSQL only; SQLite has no roles.")
    quote = connection.dialect.identifier_preparer.quote
    owner, schema, database = connection.execute(
        text("SELECT current_user, current_schema(), current_database()")
    ).one()
    created = _ensure_role(connection, role, owner, password)
    _refuse_unsafe(connection, role, owner, schema)
    name, schema_q = quote(role), quote(schema)
    connection.execute(text(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote(database)} TO {name}"))
    connection.execute(text(f"GRANT USAGE ON SCHEMA {schema_q} TO {name}"))
    connection.execute(text(f"REVOKE CREATE ON SCHEMA {schema_q} FROM {name}"))
    report = GrantReport(role, owner, created, _can_login(connection, role))
    tables = connection.scalars(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :schema AND tableowner = :owner "
            "ORDER BY tablename"
        ),
        {"schema": schema, "owner": owner},
    ).all()
    for table in tables:
        table_q = f"{schema_q}.{quote(table)}"
        connection.execute(text(f"REVOKE ALL ON TABLE {table_q} FROM {name}"))
        connection.execute(text(f"GRANT {table_privileges(table)} ON TABLE {table_q} TO {name}"))
        report.tables[table] = table_privileges(table)
    connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema_q} TO {name}"))
    for function in OWNER_FUNCTIONS:
        if _function_exists(connection, function):
            connection.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO {name}"))
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner)} IN SCHEMA {schema_q}"
    connection.execute(text(f"{defaults} GRANT {ORDINARY_PRIVILEGES} ON TABLES TO {name}"))
    connection.execute(text(f"{defaults} GRANT USAGE ON SEQUENCES TO {name}"))
    return report


def _ensure_role(connection: Connection, role: str, owner: str, password: str | None) -> bool:
    if role == owner:
        raise RoleError(
            f"{role} is the role running this command, the tables' owner: the service needs "
            "a role of its own that owns nothing."
        )
    exists = connection.scalar(
        text("SELECT count(*) FROM pg_roles WHERE rolname = :role"), {"role": role}
    )
    name = connection.dialect.identifier_preparer.quote(role)
    login = f"LOGIN PASSWORD '{_verifier(connection, role, password)}'" if password else ""
    # Sent as is: the verifier's colons are not bind parameters.
    if not exists:
        connection.exec_driver_sql(f"CREATE ROLE {name} {login or 'NOLOGIN'}")
        return True
    if login:
        connection.exec_driver_sql(f"ALTER ROLE {name} {login}")
    return False


def _verifier(connection: Connection, role: str, password: str) -> str:
    """The SCRAM verifier of `password`, made by libpq: the plain text never leaves here."""
    driver = connection.connection.driver_connection  # psycopg's connection
    pgconn = driver.pgconn  # type: ignore[union-attr]  # typed Optional: None only once invalidated
    verifier = pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    value: str = verifier.decode("ascii")
    if "'" in value or "\\" in value:  # never: SCRAM verifiers are base64 and separators
        raise RoleError("unexpected password verifier")
    return value


def _refuse_unsafe(connection: Connection, role: str, owner: str, schema: str) -> None:
    """The role must not bypass the guards: no superuser, no owner, no owner's privileges."""
    row = connection.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).one()
    if row.rolsuper or row.rolbypassrls:
        raise RoleError(f"{role} is a superuser (or bypasses row security): it must not be.")
    owned = connection.scalars(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :schema AND tableowner = :role "
            "ORDER BY tablename LIMIT 5"
        ),
        {"schema": schema, "role": role},
    ).all()
    if owned:
        raise RoleError(f"{role} owns tables ({', '.join(owned)}): it must own none.")
    inherits = connection.scalar(
        text("SELECT pg_has_role(:role, :owner, 'USAGE')"), {"role": role, "owner": owner}
    )
    if inherits:
        raise RoleError(f"{role} is a member of {owner} and would act with its privileges.")


def _can_login(connection: Connection, role: str) -> bool:
    return bool(
        connection.scalar(
            text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :role"), {"role": role}
        )
    )


def _function_exists(connection: Connection, signature: str) -> bool:
    return bool(
        connection.scalar(text("SELECT to_regprocedure(:sig) IS NOT NULL"), {"sig": signature})
    )
