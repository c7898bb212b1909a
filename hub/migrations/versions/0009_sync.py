"""sync: connectors, sync runs, checkpoints, dead letters and leases (inbound sync, hub.sync)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = hub.models._types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "sync_connector",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", _TEXT(length=64), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("resource", _TEXT(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=True),
        sa.Column("schedule_seconds", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("adhoc", sa.Boolean(), nullable=False),
        # Sealed (hub.models._sealed.EncryptedText): text in the database.
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.Column("updated_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_connector", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_connector_name"), ["name"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_sync_connector_organization_id"), ["organization_id"], unique=False
        )
    op.create_table(
        "sync_checkpoint",
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.PrimaryKeyConstraint("connector_id"),
    )
    op.create_table(
        "sync_lease",
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("holder", _TEXT(length=200), nullable=False),
        sa.Column("acquired_at", _TIME(timezone=True), nullable=False),
        sa.Column("expires_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.PrimaryKeyConstraint("connector_id"),
    )
    op.create_table(
        "sync_record",
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", _TEXT(length=200), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("digest", _TEXT(length=64), nullable=False),
        sa.Column("updated_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.PrimaryKeyConstraint("connector_id", "external_id"),
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("status", _TEXT(length=16), nullable=False),
        sa.Column("holder", _TEXT(length=200), nullable=False),
        sa.Column("started_at", _TIME(timezone=True), nullable=False),
        sa.Column("finished_at", _TIME(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("read", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("dead_lettered", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_run_connector_time", ["connector_id", "started_at"], unique=False
        )
    op.create_table(
        "sync_dead_letter",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("position", _TEXT(length=300), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("reason", _TEXT(length=2000), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),  # sealed
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.Column("updated_at", _TIME(timezone=True), nullable=False),
        sa.Column("resolved_at", _TIME(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connector_id", "position"),
    )
    with op.batch_alter_table("sync_dead_letter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_dead_letter_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_dead_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_dead_letter_run_id"))
    op.drop_table("sync_dead_letter")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_run_connector_time")
    op.drop_table("sync_run")
    op.drop_table("sync_record")
    op.drop_table("sync_lease")
    op.drop_table("sync_checkpoint")
    with op.batch_alter_table("sync_connector", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_connector_organization_id"))
        batch_op.drop_index(batch_op.f("ix_sync_connector_name"))
    op.drop_table("sync_connector")
