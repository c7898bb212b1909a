"""outbox: outbox_event (one row per committed change) and outbox_reader

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00.000000

Changes made before this revision have no events: readers start from the first change
after the upgrade (hub.outbox).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_event",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("position"),
    )
    op.create_index(op.f("ix_outbox_event_at"), "outbox_event", ["at"], unique=False)
    op.create_table(
        "outbox_reader",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("outbox_reader")
    op.drop_index(op.f("ix_outbox_event_at"), table_name="outbox_event")
    op.drop_table("outbox_event")
