"""sync_webhook_event: an index on received_at, for pruning

The ids of inbound webhook messages are remembered for ``HUB_WEBHOOK_EVENT_RETENTION``
seconds (hub.sync.inbound.prune, every minute): without an index the pruning read the
whole table each time.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 18:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_webhook_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_webhook_event_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_webhook_event_received_at"))
