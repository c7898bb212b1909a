"""audit anchor: the signed checkpoint of the audit chain's head

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

No row is written here: a migration does not hold the master key that signs it. The
first append after the upgrade anchors the existing log, recording in an
``audit.anchor`` event that the events before it had no anchor (hub.audit_anchor).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mac", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("audit_anchor")
