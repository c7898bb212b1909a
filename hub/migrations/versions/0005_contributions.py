"""contributions: encryption, audit chain, disclosures, idempotency, proposals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 03:07:25.440805
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.models._types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _chain_existing_events() -> None:
    """Number and hash-chain the policy events written before the chain existed, in the
    order they happened (the hash definition is hub.audit's, so verify accepts them)."""
    from hub.audit import GENESIS, event_hash

    bind = op.get_bind()
    table = sa.table(
        "audit_event",
        sa.column("id", sa.Uuid()),
        sa.column("at", hub.models._types.UTCDateTime(timezone=True)),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    rows = bind.execute(sa.select(table).order_by(table.c.at, table.c.id)).all()
    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        digest = event_hash(
            seq=seq,
            prev_hash=prev,
            at=row.at,
            actor=row.actor,
            organization=None,
            client=None,
            action=row.action,
            target=row.target,
            details=row.details,
        )
        bind.execute(
            table.update().where(table.c.id == row.id).values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest


def upgrade() -> None:
    op.create_table(
        "data_key",
        sa.Column("kid", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("wrapped", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid"),
    )
    with op.batch_alter_table("data_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_key_created_at"), ["created_at"], unique=False)

    op.create_table(
        "disclosure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("organization", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disclosure_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_disclosure_event_seq"), ["event_seq"], unique=False)

    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "key"),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_key_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "proposed_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("organization", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", hub.models._types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", hub.models._types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("proposed_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposed_change_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_proposed_change_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_proposed_change_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_proposed_change_status"), ["status"], unique=False)

    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("organization", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    _chain_existing_events()
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column(
            "prev_hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.alter_column(
            "hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_audit_event_organization"), ["organization"])
        batch_op.create_unique_constraint("uq_audit_event_seq", ["seq"])

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_index", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("phone_index", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.alter_column(
            "email", existing_type=sa.VARCHAR(length=254), type_=sa.Text(), existing_nullable=True
        )
        batch_op.alter_column(
            "phone", existing_type=sa.VARCHAR(length=32), type_=sa.Text(), existing_nullable=True
        )
        batch_op.create_index(batch_op.f("ix_customer_email_index"), ["email_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_phone_index"), ["phone_index"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_phone_index"))
        batch_op.drop_index(batch_op.f("ix_customer_email_index"))
        batch_op.alter_column(
            "phone", existing_type=sa.Text(), type_=sa.VARCHAR(length=32), existing_nullable=True
        )
        batch_op.alter_column(
            "email", existing_type=sa.Text(), type_=sa.VARCHAR(length=254), existing_nullable=True
        )
        batch_op.drop_column("phone_index")
        batch_op.drop_column("email_index")

    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_event_seq", type_="unique")
        batch_op.drop_index(batch_op.f("ix_audit_event_organization"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("client")
        batch_op.drop_column("organization")
        batch_op.drop_column("seq")

    with op.batch_alter_table("proposed_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposed_change_status"))
        batch_op.drop_index(batch_op.f("ix_proposed_change_organization_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_change_customer_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_change_created_at"))

    op.drop_table("proposed_change")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_created_at"))

    op.drop_table("idempotency_key")
    with op.batch_alter_table("disclosure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosure_event_seq"))
        batch_op.drop_index(batch_op.f("ix_disclosure_customer_id"))

    op.drop_table("disclosure")
    with op.batch_alter_table("data_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_key_created_at"))

    op.drop_table("data_key")
