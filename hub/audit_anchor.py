"""The audit chain's head, anchored outside the chain.

The hash chain (:mod:`hub.audit`) shows any change, removal or reordering of events
*before* its newest one, but a shorter chain checks out as well as a long one: deleting
the newest events, or putting back an older copy of ``audit_event``, leaves no broken
link. The anchor closes that gap. One row of its own table (``audit_anchor``) holds the
``seq`` and ``hash`` of the newest event, when they were anchored, and an HMAC-SHA256
over the three under a key derived from the hub's master key, which the database never
holds. Every append batch updates it in its own transaction, under the chain's lock (one
UPDATE), so the table and its anchor never disagree unless someone made them.

Someone who can write the database but lacks the master key cannot sign a newer head:
truncating the table, or restoring an older copy of it, leaves the anchor ahead of the
table; rewriting events (hashes recomputed) leaves the anchor's hash unmatched; editing
the anchor breaks its MAC. What the database alone cannot show is a consistent older
state: the table *and* its anchor restored together from a backup, or the anchor row
deleted (a log without an anchor is what a database upgraded from a hub without one
looks like). Checkpoints exported with ``hub audit anchor`` and kept elsewhere catch
those (``hub audit verify --anchor FILE``).

An append that finds the anchor not vouching for the table's head (:func:`examine`)
never silently re-anchors: it records what it found in an ``audit.anchor`` event at the
front of its batch and anchors the new head after it, so the evidence stays in the chain
(removing that event means rewriting the chain, which the new anchor shows) and writes
go on. ``hub.audit_verify`` reads these events back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto import derive_key
from hub.models import AuditAnchor, AuditEvent
from hub.models._sealed import ANCHOR_PURPOSE, vault
from hub.models._types import utcnow
from hub.settings import load_settings

ANCHOR_ACTION = "audit.anchor"
"""The action of the events that record what an append found wrong with the anchor."""
ANCHOR_TARGET = "audit_anchor"
FORMAT = "hub-audit-anchor/1"
"""Names the checkpoint format: in exported files and in every signed message."""

_ROW = 1  # the table's only row
_HASH = re.compile(r"[0-9a-f]{64}")
_anchor = AuditAnchor.__table__  # type: ignore[attr-defined]
_events = AuditEvent.__table__  # type: ignore[attr-defined]


class AnchorFileError(ValueError):
    """An exported checkpoint file that cannot be read; the message says what is wrong."""


def key_for(master_key: bytes) -> bytes:
    """The key that signs checkpoints, derived from the hub's master key."""
    return derive_key(master_key, ANCHOR_PURPOSE)


def current_key() -> bytes:
    """The signing key for appends: the vault's, loaded with the database's data keys
    (servers, ``hub init`` and ``hub migrate``, the tests), else derived from this
    process's settings (CLI commands that append without loading the data keys)."""
    if vault.anchor_key is not None:
        return vault.anchor_key
    return key_for(load_settings().master_key)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _mac(key: bytes, seq: int, digest: str, at: datetime) -> str:
    message = f"{FORMAT}\n{seq}\n{digest}\n{_iso(at)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def short(digest: str) -> str:
    """A hash as messages show it: enough to compare by eye, one line."""
    return f"{digest[:16]}…"


@dataclass(frozen=True)
class Head:
    """The table's newest event: ``seq`` 0 (and the genesis hash) when it is empty."""

    seq: int
    hash: str

    def describe(self) -> str:
        return "the table is empty" if self.seq == 0 else f"the table ends at seq {self.seq}"


@dataclass(frozen=True)
class Checkpoint:
    """A signed head: ``mac`` is HMAC-SHA256 over format, ``seq``, ``hash`` and ``at``."""

    seq: int
    hash: str
    at: datetime
    mac: str

    @classmethod
    def sign(cls, key: bytes, head: Head, at: datetime | None = None) -> Checkpoint:
        # Microseconds, UTC: what both backends store, so the MAC recomputes from the row.
        when = (at or utcnow()).astimezone(UTC)
        return cls(head.seq, head.hash, when, _mac(key, head.seq, head.hash, when))

    def authentic(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, self.seq, self.hash, self.at))

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seq": self.seq,
            "hash": self.hash,
            "at": _iso(self.at),
            "mac": self.mac,
        }

    @classmethod
    def from_json(cls, data: object) -> Checkpoint:
        """Read an exported checkpoint (its MAC is checked by the caller, with its key)."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise AnchorFileError(f"not an audit anchor (a JSON object with format {FORMAT!r})")
        seq, digest, at, mac = (data.get(name) for name in ("seq", "hash", "at", "mac"))
        if type(seq) is not int or seq < 0:
            raise AnchorFileError("its seq is not a whole number of at least 0")
        for name, value in (("hash", digest), ("mac", mac)):
            if not isinstance(value, str) or _HASH.fullmatch(value) is None:
                raise AnchorFileError(f"its {name} is not 64 hexadecimal digits")
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError:
            raise AnchorFileError("its at is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise AnchorFileError("its at has no time zone")
        return cls(seq, str(digest), when, str(mac))

    def describe(self) -> str:
        return f"seq {self.seq} (hash {short(self.hash)}, anchored {_iso(self.at)})"


FindingKind = Literal["none", "invalid", "truncated", "replaced", "behind"]
_KINDS: frozenset[str] = frozenset(get_args(FindingKind))
TAMPERING: frozenset[str] = frozenset({"invalid", "truncated", "replaced"})
"""Findings no legitimate operation produces (``none`` and ``behind`` have benign causes)."""


@dataclass(frozen=True)
class Finding:
    """Why an anchor does not vouch for the table's head.

    - ``none``: there is no anchor, but there are events;
    - ``invalid``: the anchor's MAC does not verify (forged or edited);
    - ``truncated``: the anchor is ahead of the table (newest events deleted, or an
      older copy of the table put back);
    - ``replaced``: the table's event at the anchor's ``seq`` has another hash;
    - ``behind``: events were appended after the anchor without updating it (a hub older
      than the anchor during a rollout, or rows written straight into the database).
    """

    kind: FindingKind
    anchor: Checkpoint | None
    head: Head
    # replaced/behind: the hash of the table's event at the anchor's seq (None: no event).
    hash_at_anchor: str | None = None

    @property
    def tampering(self) -> bool:
        return self.kind in TAMPERING

    def describe(self, source: str = "the anchor") -> str:
        """One line naming what is wrong; ``source`` names the checkpoint compared."""
        anchor, head = self.anchor, self.head
        if self.kind == "none" or anchor is None:
            return f"no anchor for the {head.seq} events up to seq {head.seq}"
        if self.kind == "invalid":
            return (
                f"{source} is tampered: its MAC does not verify under this hub's key (it claims "
                f"seq {anchor.seq}); it was forged or edited, or HUB_SECRET_KEY is not the key "
                "this hub writes with"
            )
        if self.kind == "truncated":
            return (
                f"audit log truncated: {source} expects events up to seq {anchor.seq} "
                f"(hash {short(anchor.hash)}, anchored {_iso(anchor.at)}); {head.describe()}"
            )
        if self.kind == "replaced":
            found = "none" if self.hash_at_anchor is None else short(self.hash_at_anchor)
            return (
                f"audit log replaced: {source} expects event {anchor.seq} to have hash "
                f"{short(anchor.hash)} (anchored {_iso(anchor.at)}), the table's has {found} "
                "(an older copy of the table was put back, or events were rewritten)"
            )
        return (
            f"events {anchor.seq + 1} to {head.seq} were appended without updating the anchor "
            f"(at seq {anchor.seq}): by a hub older than the anchor during a rollout, or "
            "written straight into the database"
        )

    def details(self) -> dict[str, Any]:
        """The details of the ``audit.anchor`` event that records this finding."""
        anchor = self.anchor
        return {
            "found": self.kind,
            "anchor": None
            if anchor is None
            else {"seq": anchor.seq, "hash": anchor.hash, "at": _iso(anchor.at)},
            "table": {"seq": self.head.seq, "hash": self.head.hash},
            "table_hash_at_anchor": self.hash_at_anchor,
        }

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Finding | None:
        """The finding an ``audit.anchor`` event recorded; ``None`` if unreadable."""
        try:
            kind, found, table = details["found"], details["anchor"], details["table"]
            anchor = None
            if found is not None:
                at = datetime.fromisoformat(found["at"])
                anchor = Checkpoint(int(found["seq"]), str(found["hash"]), at, "")
            head = Head(int(table["seq"]), str(table["hash"]))
            at_anchor = details.get("table_hash_at_anchor")
        except (KeyError, TypeError, ValueError):
            return None
        if kind not in _KINDS:
            return None
        return cls(kind, anchor, head, None if at_anchor is None else str(at_anchor))


async def read(session: AsyncSession) -> Checkpoint | None:
    """The stored checkpoint, or ``None`` when the log has never been anchored."""
    row = (
        await session.execute(
            select(_anchor.c.seq, _anchor.c.hash, _anchor.c.at, _anchor.c.mac).where(
                _anchor.c.id == _ROW
            )
        )
    ).first()
    return None if row is None else Checkpoint(int(row.seq), row.hash, row.at, row.mac)


async def write(session: AsyncSession, checkpoint: Checkpoint) -> None:
    """Store ``checkpoint`` (the caller holds the chain's lock)."""
    values = {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": checkpoint.at,
        "mac": checkpoint.mac,
    }
    done = await session.execute(update(_anchor).where(_anchor.c.id == _ROW).values(**values))
    if getattr(done, "rowcount", 0) == 0:
        await session.execute(insert(_anchor).values(id=_ROW, **values))


async def hash_at(session: AsyncSession, seq: int) -> str | None:
    """The stored hash of event ``seq``, or ``None`` when there is no such event."""
    found = await session.execute(select(_events.c.hash).where(_events.c.seq == seq))
    value = found.scalar_one_or_none()
    return None if value is None else str(value)


async def examine(
    session: AsyncSession, key: bytes, anchor: Checkpoint | None, head: Head
) -> Finding | None:
    """What is wrong with ``anchor`` as a checkpoint of the table ending at ``head``;
    ``None`` when it vouches for it, or when a never-anchored log is empty.

    Costs nothing beyond one HMAC unless the anchor lags the table (then one lookup)."""
    if anchor is None:
        return None if head.seq == 0 else Finding("none", None, head)
    if not anchor.authentic(key):
        return Finding("invalid", anchor, head)
    if anchor.seq > head.seq:
        return Finding("truncated", anchor, head)
    if anchor.seq == head.seq:
        return None if anchor.hash == head.hash else Finding("replaced", anchor, head, head.hash)
    found = await hash_at(session, anchor.seq) if anchor.seq > 0 else anchor.hash
    kind: FindingKind = "behind" if found == anchor.hash else "replaced"
    return Finding(kind, anchor, head, found)
