"""Verifying the audit log: the hash chain, and its head against the anchor.

:func:`verify_log` walks the chain (:func:`hub.audit.walk_chain`), then checks what the
chain cannot show by itself: that the table reaches the head the anchor signed
(:mod:`hub.audit_anchor`), and, given a checkpoint exported earlier, the head kept
outside the database. It also reads back the ``audit.anchor`` events in which appends
recorded an anchor that did not vouch for the table when they ran.

Problems make the log fail verification; notes are said but do not (a log from before
the anchor existed, events appended by an older hub during a rollout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit_anchor
from hub.audit import ChainBreak, EventView, walk_chain
from hub.audit_anchor import Checkpoint, Finding, Head


@dataclass(frozen=True)
class Verification:
    """The verdict: the chain's walk, and each anchor problem and note as one line."""

    checked: int
    broken: ChainBreak | None
    head: Head
    anchor: Checkpoint | None
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return self.broken is None and not self.problems


def _when(event: EventView) -> str:
    return event.at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _recorded(events: tuple[EventView, ...]) -> tuple[list[str], list[str]]:
    """Problems and notes from the ``audit.anchor`` events in the chain."""
    problems: list[str] = []
    notes: list[str] = []
    started: int | None = None  # the first event anchoring is known to cover
    for event in events:
        finding = Finding.from_details(event.details)
        said = f"event {event.seq} ({_when(event)})"
        if finding is None:
            problems.append(f"{said} is an {audit_anchor.ANCHOR_ACTION} event that cannot be read")
        elif finding.kind == "none" and started is None:
            notes.append(
                f"the log is anchored since {said}; the {event.seq - 1} events before it had "
                "no anchor (written before the hub had one, or its anchor row was deleted)"
            )
        elif finding.kind == "none":
            problems.append(
                f"{said} recorded that the anchor was gone though the log had been anchored "
                f"since event {started}: the anchor row was deleted, and events before "
                f"event {event.seq} may have been removed"
            )
        elif finding.kind == "behind":
            notes.append(f"{said} recorded: {finding.describe()}")
        else:
            problems.append(f"{said} recorded: {finding.describe()}")
        if started is None:
            started = event.seq
    return problems, notes


async def _against_anchor(
    session: AsyncSession, key: bytes, anchor: Checkpoint | None, walk_head: Head, anchored: bool
) -> tuple[list[str], list[str]]:
    """The table's head (after the walk) against the anchor read before it."""
    if anchor is None:
        if walk_head.seq == 0:
            return [], []
        if anchored:
            return [
                "the audit anchor is missing (deleted?) though the chain records anchoring: "
                "the newest events may have been removed"
            ], []
        return [], [
            f"not anchored yet: the next append anchors the {walk_head.seq} events (or run "
            "`hub audit anchor`); until then removing the newest events cannot be detected"
        ]
    finding = await audit_anchor.examine(session, key, anchor, walk_head)
    if finding is None:
        return [], []
    if finding.kind != "behind":
        return [finding.describe()], []
    # Appends during the walk moved the anchor past the one read before it: not a lag.
    now = await audit_anchor.read(session)
    if now is not None and now.authentic(key) and now.seq >= walk_head.seq:
        return [], []
    return [], [f"{finding.describe()}; the next append covers them"]


async def _against_export(
    session: AsyncSession, key: bytes, exported: Checkpoint, anchor: Checkpoint | None, head: Head
) -> list[str]:
    source = "the exported anchor"
    finding = await audit_anchor.examine(session, key, exported, head)
    if finding is not None and finding.kind != "behind":
        return [finding.describe(source)]
    if anchor is not None and anchor.authentic(key) and anchor.seq < exported.seq:
        return [
            f"the database's anchor (seq {anchor.seq}) is older than {source} (seq "
            f"{exported.seq}): the database was restored from an older copy"
        ]
    return []


async def verify_log(
    session: AsyncSession,
    key: bytes,
    *,
    exported: Checkpoint | None = None,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Verify the chain, and its head against the anchor and against ``exported`` (a
    checkpoint kept elsewhere), with ``key`` (:func:`hub.audit_anchor.key_for`)."""
    # Read before the walk: every event up to it was committed with it, so the walk
    # sees them all; appends during the walk only make the table longer.
    anchor = await audit_anchor.read(session)
    walk = await walk_chain(session, batch=batch, progress=progress)
    if walk.broken is not None:
        return Verification(walk.checked, walk.broken, walk.head, anchor, (), ())
    # The state now first, then what appends recorded earlier, oldest first.
    problems, notes = await _against_anchor(
        session, key, anchor, walk.head, anchored=bool(walk.anchor_events)
    )
    recorded, said = _recorded(walk.anchor_events)
    problems += recorded
    notes += said
    if exported is not None:
        problems += await _against_export(session, key, exported, anchor, walk.head)
    return Verification(walk.checked, None, walk.head, anchor, tuple(problems), tuple(notes))
