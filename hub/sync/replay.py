"""Replaying a dead letter: its raw record through the runtime again, as the connector's
organization, under the connector's mapping and the policy in force now.

The record goes through exactly what a run does to one record of a batch (mapped,
validated, matched, stored through the write pipeline, linked to its external id): the
runner's own steps, in one transaction that holds the connector's lease (so it never
writes beside a run in progress). Stored: the dead letter is resolved. Refused again:
it stays open with the new reason and one more attempt. Either way the replay is
audited (``connector.replay_dead_letter``). The connector's checkpoint does not move.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import Record
from hub import audit
from hub.access import access
from hub.db import Database, take_write_lock
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.models.sync import SyncConnector, SyncDeadLetter
from hub.principal import Principal
from hub.sync.admin import DeadLetterView, running_elsewhere
from hub.sync.config import TARGETS, load_connector, mapping_of
from hub.sync.errors import ConnectorConfigError, LeaseHeldError
from hub.sync.lease import new_holder, release, take
from hub.sync.runner import Runner, _Run
from hub.sync.runs import Counts


class ReplayOutcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    QUEUED = "queued"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Replayed:
    """What the replay did, and the dead letter after it (resolved, or its new reason)."""

    outcome: ReplayOutcome
    letter: DeadLetterView


def _outcome(done: Counts) -> ReplayOutcome:
    for outcome in ReplayOutcome:
        if getattr(done, outcome.value):
            return outcome
    return ReplayOutcome.DEAD_LETTERED


async def replay_dead_letter(
    session: AsyncSession,
    principal: Principal,
    letter_id: uuid.UUID,
    *,
    database: Database,
    master_key: bytes,
) -> Replayed:
    """Store the dead letter's record again (see the module docstring). A resolved dead
    letter, a disabled connector, a mapping that no longer parses or a run in progress
    are user errors at ``id``."""
    access.require_admin(principal)
    # On SQLite the transaction must begin with a write, or the savepoints the targets
    # take (one per record) would not nest inside it.
    await take_write_lock(session)
    letter = await session.get(SyncDeadLetter, letter_id, with_for_update=True)
    if letter is None:
        raise NotFoundError("no such dead letter")
    row = await session.get(SyncConnector, letter.connector_id)
    if row is None:  # pragma: no cover — a foreign key keeps it
        raise NotFoundError("no such dead letter")
    if letter.resolved_at is not None:
        message = f"already resolved ({letter.resolved_at.isoformat(timespec='seconds')})"
        raise InvalidInputError([FieldProblem(("id",), message, "RESOLVED")])
    if not row.enabled:
        message = f"the connector {row.name!r} is disabled: enable it to replay its records"
        raise InvalidInputError([FieldProblem(("id",), message, "DISABLED")])
    loaded = await load_connector(session, row.name)
    try:
        mapping = mapping_of(loaded.resource, row.mapping)
    except ConnectorConfigError as error:
        message = f"the connector's mapping is not usable: {error}"
        raise InvalidInputError([FieldProblem(("id",), message)]) from None
    runner = Runner(database, master_key)
    holder = new_holder()
    try:
        await take(session, row.id, holder, runner.lease_seconds)
    except LeaseHeldError:
        raise InvalidInputError([running_elsewhere(("id",))]) from None
    record = Record(
        data=orjson.loads(letter.record), position=letter.position, cursor=letter.cursor
    )
    # The runner's own steps for one record (mapping, the target's checks, the known
    # external ids, the write pipeline, the link, the dead letter updated or resolved),
    # with the run that dead-lettered it as the run of record.
    state = _Run(
        loaded=loaded,
        run_id=letter.run_id,
        holder=holder,
        target=TARGETS[loaded.resource],
        mapping=mapping,
    )
    done = await runner._store(session, state, [record], [runner._prepare(state, record)])
    await release(session, row.id, holder)
    await session.refresh(letter)
    outcome = _outcome(done)
    details = {"connector": row.name, "position": letter.position, "outcome": outcome.value}
    if outcome is ReplayOutcome.DEAD_LETTERED:
        details["reason"] = letter.reason
    await audit.record(
        session, principal, "connector.replay_dead_letter", f"sync_dead_letter:{letter.id}", details
    )
    return Replayed(outcome, DeadLetterView.of(letter, row.name))


__all__ = ["ReplayOutcome", "Replayed", "replay_dead_letter"]
