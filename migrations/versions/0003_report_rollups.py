"""report roll-ups: finished hours' report building blocks, and triggers that mark changed hours

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:30:00

The triggers live in the database, not in the application, so that every write path marks the hours it changes:
the AMI listener's upserts, the console's registrations, presence changes, admin deletions cascading, and bulk loads
(PostgreSQL fires statement triggers for ``COPY``). PostgreSQL uses statement-level triggers with transition tables
(one dirty-range upsert per statement, not per row); SQLite only has row-level triggers.

A presence entry changes the intervals from its own hour to the hour of the operator's next entry (or, when it is
the latest, every hour after it: those are not finished and so never cached).

A later migration that rebuilds one of these tables on SQLite (Alembic batch mode "recreate") drops its triggers and
must create them again; ``tests/test_report_rollups.py`` fails if a change no longer marks its hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hotline.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_END = 2**31 - 1
"""``to_hour`` of a range that runs to the end of time."""

# Columns whose change alters a report (a change of ``ended_at`` alone or of the recording path does not).
CALL_COLUMNS = ("arrived_at", "line_id", "operator", "outcome", "wait_s", "talk_s", "callback_of_id")
REGISTRATION_COLUMNS = ("call_id", "topic_id")


def _pg_bucket(column: str) -> str:
    return f"floor(extract(epoch FROM {column}) / 3600)::int"


def _sqlite_bucket(column: str) -> str:
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 3600)"


def _pg_mark(select: str) -> str:
    """Upsert the ranges ``select`` yields (columns f, t); ordered so concurrent writers lock rows in one order."""
    return (
        "INSERT INTO report_dirty (from_hour, to_hour, version) "
        f"SELECT f, t, nextval('report_dirty_version') FROM ({select}) AS marks ORDER BY f, t "
        "ON CONFLICT (from_hour, to_hour) DO UPDATE SET version = EXCLUDED.version;"
    )


def _changed(columns: Sequence[str]) -> str:
    return " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in columns)


def _postgresql_up() -> None:
    op.execute("CREATE SEQUENCE report_dirty_version")
    b = _pg_bucket
    calls_changed = _changed(CALL_COLUMNS)
    regs_changed = _changed(REGISTRATION_COLUMNS)
    next_entry = (
        "coalesce((SELECT {b} FROM presence_log p WHERE p.user_id = r.user_id AND p.at > r.at ORDER BY p.at LIMIT 1),"
        f" {OPEN_END})"
    ).format(b=b("p.at"))
    op.execute(f"""
CREATE FUNCTION report_dirty_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_mark(f"SELECT DISTINCT {b('arrived_at')} AS f, {b('arrived_at')} AS t FROM new_rows")}
  ELSIF TG_OP = 'UPDATE' THEN
    {_pg_mark(f'''SELECT {b('o.arrived_at')} AS f, {b('o.arrived_at')} AS t
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {calls_changed}
      UNION SELECT {b('n.arrived_at')}, {b('n.arrived_at')}
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {calls_changed}''')}
  ELSE
    {_pg_mark(f"SELECT DISTINCT {b('arrived_at')} AS f, {b('arrived_at')} AS t FROM old_rows")}
  END IF;
  RETURN NULL;
END $$""")
    op.execute(f"""
CREATE FUNCTION report_dirty_registrations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_mark(f"SELECT DISTINCT {b('c.arrived_at')} AS f, {b('c.arrived_at')} AS t "
              "FROM new_rows r JOIN calls c ON c.id = r.call_id")}
  ELSIF TG_OP = 'UPDATE' THEN
    {_pg_mark(f'''SELECT DISTINCT {b('c.arrived_at')} AS f, {b('c.arrived_at')} AS t
        FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN calls c ON c.id IN (o.call_id, n.call_id)
        WHERE {regs_changed}''')}
  ELSE
    {_pg_mark(f"SELECT DISTINCT {b('c.arrived_at')} AS f, {b('c.arrived_at')} AS t "
              "FROM old_rows r JOIN calls c ON c.id = r.call_id")}
  END IF;
  RETURN NULL;
END $$""")
    op.execute(f"""
CREATE FUNCTION report_dirty_presence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_mark(f"SELECT DISTINCT {b('r.at')} AS f, {next_entry} AS t FROM new_rows r")}
  ELSE
    {_pg_mark(f"SELECT DISTINCT {b('r.at')} AS f, {OPEN_END} AS t FROM old_rows r")}
  END IF;
  RETURN NULL;
END $$""")
    for table, function in (
        ("calls", "report_dirty_calls"),
        ("registrations", "report_dirty_registrations"),
        ("presence_log", "report_dirty_presence"),
    ):
        op.execute(
            f"CREATE TRIGGER {table}_report_dirty_insert AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_report_dirty_update AFTER UPDATE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_report_dirty_delete AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def _sqlite_mark(f: str, t: str, source: str = "") -> str:
    """One range upsert; ``source`` (a FROM … WHERE …) may yield no row. A WHERE clause is SQLite's required
    disambiguation between ``INSERT … SELECT … ON CONFLICT`` and a join's ON."""
    return (
        f"INSERT INTO report_dirty (from_hour, to_hour, version) SELECT {f}, {t}, 1 {source or 'WHERE true'} "
        "ON CONFLICT (from_hour, to_hour) DO UPDATE SET version = report_dirty.version + 1;"
    )


def _sqlite_up() -> None:
    b = _sqlite_bucket
    calls_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in CALL_COLUMNS)
    regs_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in REGISTRATION_COLUMNS)
    statements = [
        f"""CREATE TRIGGER calls_report_dirty_insert AFTER INSERT ON calls BEGIN
            {_sqlite_mark(b("NEW.arrived_at"), b("NEW.arrived_at"))} END""",
        f"""CREATE TRIGGER calls_report_dirty_update AFTER UPDATE ON calls WHEN {calls_changed} BEGIN
            {_sqlite_mark(b("OLD.arrived_at"), b("OLD.arrived_at"))}
            {_sqlite_mark(b("NEW.arrived_at"), b("NEW.arrived_at"))} END""",
        f"""CREATE TRIGGER calls_report_dirty_delete AFTER DELETE ON calls BEGIN
            {_sqlite_mark(b("OLD.arrived_at"), b("OLD.arrived_at"))} END""",
        f"""CREATE TRIGGER registrations_report_dirty_insert AFTER INSERT ON registrations BEGIN
            {_sqlite_mark(b("c.arrived_at"), b("c.arrived_at"), "FROM calls c WHERE c.id = NEW.call_id")} END""",
        f"""CREATE TRIGGER registrations_report_dirty_update AFTER UPDATE ON registrations WHEN {regs_changed} BEGIN
            {_sqlite_mark(b("c.arrived_at"), b("c.arrived_at"), "FROM calls c WHERE c.id = OLD.call_id")}
            {_sqlite_mark(b("c.arrived_at"), b("c.arrived_at"), "FROM calls c WHERE c.id = NEW.call_id")} END""",
        f"""CREATE TRIGGER registrations_report_dirty_delete AFTER DELETE ON registrations BEGIN
            {_sqlite_mark(b("c.arrived_at"), b("c.arrived_at"), "FROM calls c WHERE c.id = OLD.call_id")} END""",
        f"""CREATE TRIGGER presence_log_report_dirty_insert AFTER INSERT ON presence_log BEGIN
            {_sqlite_mark(b("NEW.at"), f'''coalesce((SELECT {b("p.at")} FROM presence_log p
                WHERE p.user_id = NEW.user_id AND p.at > NEW.at ORDER BY p.at LIMIT 1), {OPEN_END})''')} END""",
        f"""CREATE TRIGGER presence_log_report_dirty_update AFTER UPDATE ON presence_log BEGIN
            {_sqlite_mark(b("min(OLD.at, NEW.at)"), str(OPEN_END))} END""",
        f"""CREATE TRIGGER presence_log_report_dirty_delete AFTER DELETE ON presence_log BEGIN
            {_sqlite_mark(b("OLD.at"), str(OPEN_END))} END""",
    ]
    for statement in statements:
        op.execute(statement)


TRIGGERS = [
    f"{table}_report_dirty_{event}"
    for table in ("calls", "registrations", "presence_log")
    for event in ("insert", "update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "report_hours",
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("config", sa.String(length=200), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_report_hours")),
    )
    op.create_table(
        "report_dirty",
        sa.Column("from_hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("to_hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("from_hour", "to_hour", name=op.f("pk_report_dirty")),
    )
    with op.batch_alter_table("presence_log", schema=None) as batch_op:
        batch_op.create_index("ix_presence_log_at", ["at"], unique=False)
        batch_op.create_index("ix_presence_log_state_at", ["state", "at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_up()
    else:
        _sqlite_up()
    # Existing data: every hour is unknown to the roll-up, so nothing needs marking; the refresher fills them.


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        table = name.rsplit("_report_dirty_", 1)[0]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgresql else f"DROP TRIGGER IF EXISTS {name}")
    if postgresql:
        for function in ("report_dirty_calls", "report_dirty_registrations", "report_dirty_presence"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        op.execute("DROP SEQUENCE IF EXISTS report_dirty_version")
    with op.batch_alter_table("presence_log", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_log_state_at")
        batch_op.drop_index("ix_presence_log_at")
    op.drop_table("report_dirty")
    op.drop_table("report_hours")
