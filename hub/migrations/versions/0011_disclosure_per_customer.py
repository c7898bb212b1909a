"""disclosure: one index row per read event and customer (was: per record)

The disclosure index is derived from the ``read`` audit events, which keep the records
and fields; an index row now only says which event disclosed something of which
customer, and reports read the rest from the event. The old rows are dropped and rebuilt
from the events by the next indexing (the writer's, or the first report's).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM disclosure")
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.drop_column("fields")
        batch_op.drop_column("record_id")
        batch_op.drop_column("resource")


def downgrade() -> None:
    # Rebuilt from the events by the next indexing, as on the way up.
    op.execute("DELETE FROM disclosure")
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False)
        )
        batch_op.add_column(sa.Column("record_id", sa.Uuid(), nullable=False))
        batch_op.add_column(sa.Column("fields", sa.JSON(), nullable=False))
