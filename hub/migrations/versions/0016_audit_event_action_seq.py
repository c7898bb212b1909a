"""audit_event: one index on (action, seq) instead of one on action

The disclosure index reads the ``read`` events after the last one it indexed
(``action = 'read' AND seq > ?``, in seq order). With an index on ``action`` alone,
SQLite's planner searched that index and then read and sorted every ``read`` event of
the log at each indexing: a partner page's cost grew with the log (1.6 to 2.3 ms of CPU
over 30,000 pages). An index on ``(action, seq)`` answers the range in order, and still
serves every lookup by action (its first column), so the old index goes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 13:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action_seq", ["action", "seq"], unique=False)
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.drop_index("ix_audit_event_action_seq")
