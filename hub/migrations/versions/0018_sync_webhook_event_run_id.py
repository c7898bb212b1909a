"""sync_webhook_event: an index on run_id, for pruning runs

Runs past ``HUB_SYNC_RUN_RETENTION`` are deleted (hub.sync.runs.prune, every minute),
except those a remembered webhook id names: without an index, that test and the foreign
key's check on each deleted run read the whole table of ids.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 20:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_webhook_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_webhook_event_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_webhook_event_run_id"))
