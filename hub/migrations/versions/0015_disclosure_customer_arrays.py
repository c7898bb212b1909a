"""disclosure: one index row per read event on PostgreSQL, its customers in a GIN-indexed uuid[]

A partner's page is one ``read`` event naming about fifty customers. The index held a row
per event and customer under three b-trees (id, event_seq, customer_id: random, in a
table of millions of rows): fifty rows and 150 index entries a page, most of the
PostgreSQL CPU the read audit cost. Now PostgreSQL keeps one row per event with its
customers in ``customer_ids`` (``uuid[]``) under a GIN index, whose pending list takes an
event's entries in one append and merges them into the tree sorted, in bulk. SQLite
cannot index array elements: it keeps one row per event and customer, ``customer_ids``
naming that one (a JSON array) under a b-tree. On both, ``id`` is the event's seq shifted
24 bits left plus the customer's position (SQLite) or 0 (PostgreSQL): it says how far the
index goes, so the separate ``event_seq`` index goes.

The index is derived from the events: the old rows are dropped, and the next indexing
(the writer's, or the first report's) rebuilds it from the events, as on the way down.
Merges made before are not lost: reports follow the ``customer.merge`` events.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models._types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column("at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    op.drop_table("disclosure")  # its indexes with it
    postgres = op.get_bind().dialect.name == "postgresql"
    customers = postgresql.ARRAY(sa.Uuid()) if postgres else sa.JSON()
    op.create_table(
        "disclosure",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        *_common(),
        sa.Column("customer_ids", customers, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_disclosure_customer_ids", "disclosure", ["customer_ids"], postgresql_using="gin"
    )


def downgrade() -> None:
    # Rebuilt from the events by the next indexing, as on the way up.
    op.drop_table("disclosure")
    op.create_table(
        "disclosure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        *_common(),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disclosure_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_disclosure_event_seq"), ["event_seq"], unique=False)
