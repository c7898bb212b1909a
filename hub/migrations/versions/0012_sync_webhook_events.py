"""sync_webhook_event: the inbound webhook messages each connector stored (idempotence
on webhook-id)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_webhook_event",
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("received_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["sync_connector.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"]),
        sa.PrimaryKeyConstraint("connector_id", "webhook_id"),
    )


def downgrade() -> None:
    op.drop_table("sync_webhook_event")
