"""cases: support_case and case_note (support cases and their notes' thread)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "support_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("opened_by_id", sa.Uuid(), nullable=False),
        sa.Column("feedback_id", sa.Uuid(), nullable=True),
        sa.Column("product", _TEXT(length=120), nullable=True),
        sa.Column("subject", _TEXT(length=200), nullable=False),
        sa.Column("description", _TEXT(length=5000), nullable=False),
        sa.Column("priority", _TEXT(length=16), nullable=False),
        sa.Column("status", _TEXT(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"]),
        sa.ForeignKeyConstraint(["opened_by_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("support_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_case_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_support_case_customer_time", ["customer_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_case_organization_id"), ["organization_id"], unique=False
        )
    op.create_table(
        "case_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("text", _TEXT(length=5000), nullable=False),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["support_case.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.create_index("ix_case_note_case_time", ["case_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_note_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_note_customer_id"))
        batch_op.drop_index("ix_case_note_case_time")
    op.drop_table("case_note")
    with op.batch_alter_table("support_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_case_organization_id"))
        batch_op.drop_index("ix_support_case_customer_time")
        batch_op.drop_index(batch_op.f("ix_support_case_created_at"))
    op.drop_table("support_case")
