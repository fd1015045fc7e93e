"""lines and dialplan versions belong to a PBX

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00

``lines.pbx_id`` and ``dialplan_versions.pbx_id``: NULL is the first PBX (``HOTLINE_AMI__*``), so every existing
line and version stays where it was, whatever that PBX's id (see ``Line`` in ``hotline/db/models.py``). A number
is unique per PBX instead of everywhere: unique (pbx_id, number), and a partial unique index on number among the
first PBX's lines (NULLs never collide in a unique constraint).

SQLite cannot drop a unique constraint, so ``lines`` is rebuilt (Alembic batch "recreate": copy, drop, rename).
Dropping a table that other tables reference with ``ON DELETE CASCADE`` (hours, campaigns, exceptions, operator
assignments, scripts, tariffs) or ``SET NULL`` (calls) would empty or detach them while foreign keys are enforced,
so they are switched off around the rebuild — outside any transaction, where SQLite honours the pragma — and the
references are checked before they are switched on again (without this, the upgrade of a database with lines
emptied weekly_hours and operator_lines and set every call's line_id to NULL). ``lines`` has no triggers; the report
triggers of 0003 live on calls, registrations and presence_log, which are not rebuilt. On PostgreSQL everything is
plain ALTERs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_PBX_INDEX = "uq_lines_number_first_pbx"
FIRST_PBX_ONLY = sa.text("pbx_id IS NULL")


@contextmanager
def _foreign_keys_off_on_sqlite() -> Iterator[None]:
    """On SQLite: foreign keys off while a referenced table is rebuilt, checked and on again afterwards."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    context = op.get_context()
    with context.autocommit_block():  # PRAGMA foreign_keys is a no-op inside a transaction
        op.execute("PRAGMA foreign_keys=OFF")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("could not switch SQLite's foreign keys off; lines is not rebuilt (its children would go)")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rebuilding lines broke foreign keys: {broken[:5]}")
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    with _foreign_keys_off_on_sqlite(), op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pbx_id", sa.String(length=40), nullable=True))
        batch_op.drop_constraint("uq_lines_number", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_lines_pbx_id_number"), ["pbx_id", "number"])
    op.create_index(
        FIRST_PBX_INDEX, "lines", ["number"], unique=True, sqlite_where=FIRST_PBX_ONLY, postgresql_where=FIRST_PBX_ONLY
    )
    with op.batch_alter_table("dialplan_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pbx_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    """Refused, before anything changes, while one number is on two PBXs: delete or renumber one line first."""
    shared = op.get_bind().execute(sa.text("SELECT number FROM lines GROUP BY number HAVING count(*) > 1")).all()
    if shared:
        numbers = ", ".join(sorted(row[0] for row in shared))
        raise RuntimeError(f"cannot downgrade below 0004: these numbers are lines on several PBXs: {numbers}")
    op.drop_index(FIRST_PBX_INDEX, table_name="lines")
    with _foreign_keys_off_on_sqlite(), op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_lines_pbx_id_number"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_lines_number"), ["number"])
        batch_op.drop_column("pbx_id")
    with op.batch_alter_table("dialplan_versions", schema=None) as batch_op:
        batch_op.drop_column("pbx_id")
