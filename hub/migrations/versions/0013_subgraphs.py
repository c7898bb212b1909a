"""subgraph: remote GraphQL subgraphs composed into the hub (URL, authentication with
the secret sealed, timeout, status, the accepted SDL)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._sealed
import hub.models._types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subgraph",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("auth_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("auth", sa.JSON(), nullable=False),
        sa.Column("secret", hub.models._sealed.EncryptedText("subgraph.secret"), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sdl", sa.Text(), nullable=True),
        sa.Column("sdl_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("checked_at", hub.models._types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", hub.models._types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subgraph_name"), "subgraph", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_subgraph_name"), table_name="subgraph")
    op.drop_table("subgraph")
