"""Field encryption at rest and keyed blind indexes (DESIGN §3: sensitive fields).

Sensitive columns (:class:`EncryptedText`) hold ``<kid>.<base64(nonce | AES-GCM sealed)>``:
random 256-bit data keys, each stored wrapped under a key derived from the hub's master key
(table ``data_key``), so the key id in every value says which key opens it and a rotation
re-encrypts rows in batches while both keys stay loaded. The associated data binds each
value to its column: a ciphertext copied into another column does not open.

Exact matching (identity resolution) uses a *blind index*: an HMAC-SHA256 of the
normalised value under a key derived from the master key, stored beside the ciphertext.
Equal values give equal indexes; the index reveals nothing else without the master key.

The process holds one :data:`vault`; whoever opens a database (the app's runtime, the CLI,
the tests) loads its keys with :func:`load_data_keys` before reading or writing customers.

Rotation (:func:`rotate_data_key`, ``hub keys rotate-data``) and the sealing of plaintext
left by databases older than encryption at rest (:func:`seal_legacy`, run by ``hub
migrate``) share one batch engine, :func:`reseal`. A new key is used for writes only once
it is :func:`activation_delay` old, so every replica has loaded it before any row sealed
with it can reach them (docs/encryption.md explains the timing).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableClause
from sqlmodel import col

from hub.crypto import decrypt, derive_key, encrypt
from hub.db import Database
from hub.models import DataKey, metadata
from hub.models._sealed import (
    EncryptedText,
    SealedValueError,
    UnknownDataKeyError,
    Vault,
    VaultNotLoadedError,
    email_index,
    looks_sealed,
    normalise_email,
    phone_index,
    vault,
)
from hub.models._types import utcnow

__all__ = [
    "BLIND_INDEXES",
    "DataKeyRotationError",
    "EncryptedText",
    "ResealProgress",
    "ResealReport",
    "RotationReport",
    "SealedColumn",
    "SealedValueError",
    "UnknownDataKeyError",
    "Vault",
    "VaultNotLoadedError",
    "activation_delay",
    "create_data_key",
    "email_index",
    "ensure_data_key",
    "load_data_keys",
    "normalise_email",
    "phone_index",
    "reseal",
    "rotate_data_key",
    "seal_legacy",
    "sealed_columns",
    "vault",
]

logger = logging.getLogger(__name__)
_WRAP_PURPOSE = "hub data keys v1"
_Sleep = Callable[[float], Awaitable[None]]


def _wrapping_key(master_key: bytes) -> bytes:
    return derive_key(master_key, _WRAP_PURPOSE)


def activation_delay(refresh_interval: float) -> float:
    """How old a data key must be before anyone seals new values with it.

    Replicas reload the data keys every ``refresh_interval`` (``HUB_KEY_REFRESH_INTERVAL``);
    one interval lets every replica load a new key, a second one is the margin for a slow
    or failed reload and for clock skew between hosts (the key's age is measured against
    its ``created_at``, written by another host's clock).
    """
    return 2 * refresh_interval


async def create_data_key(session: AsyncSession, master_key: bytes) -> DataKey:
    """A new random data key; it becomes the active one once :func:`activation_delay` old
    (at once when it is the database's only key)."""
    kid = secrets.token_hex(8)
    raw = AESGCM.generate_key(bit_length=256)
    row = DataKey(kid=kid, wrapped=encrypt(_wrapping_key(master_key), raw, kid.encode()))
    session.add(row)
    await session.flush()
    return row


async def _key_rows(session: AsyncSession) -> list[DataKey]:
    statement = select(DataKey).order_by(col(DataKey.created_at), col(DataKey.kid))
    return list((await session.execute(statement)).scalars().all())


async def load_data_keys(
    session: AsyncSession, master_key: bytes, *, activation_delay: float = 0.0
) -> str | None:
    """Load every data key of the database into :data:`vault`; returns the active kid,
    or ``None`` when the database has none yet.

    The active key is the newest one at least ``activation_delay`` seconds old, or the
    oldest when none is that old (a new database's only key). A server passes
    :func:`activation_delay` of its refresh interval; ``0`` (one process alone on the
    database: tests, ``hub demo``) makes the newest key active.
    """
    rows = await _key_rows(session)
    if not rows:
        return None
    wrapping = _wrapping_key(master_key)
    keys = {row.kid: decrypt(wrapping, row.wrapped, row.kid.encode()) for row in rows}
    active = rows[-1].kid
    if activation_delay > 0:
        now = utcnow()
        aged = [r for r in rows if (now - r.created_at).total_seconds() >= activation_delay]
        active = aged[-1].kid if aged else rows[0].kid
    vault.install(master_key, keys, active)
    return active


async def ensure_data_key(
    session: AsyncSession, master_key: bytes, *, activation_delay: float = 0.0
) -> str:
    """Load the data keys, creating the first one if the database has none."""
    active = await load_data_keys(session, master_key, activation_delay=activation_delay)
    if active is None:
        await create_data_key(session, master_key)
        active = await load_data_keys(session, master_key, activation_delay=activation_delay)
    assert active is not None
    return active


# -- the sealed columns ---------------------------------------------------------------------


@dataclass(frozen=True)
class BlindIndex:
    """The column holding a sealed column's blind index, and how to compute it."""

    column: str
    compute: Callable[[str], str | None]


BLIND_INDEXES: dict[tuple[str, str], BlindIndex] = {
    ("customer", "email"): BlindIndex("email_index", email_index),
    ("customer", "phone"): BlindIndex("phone_index", phone_index),
}
"""(table, sealed column) -> its blind index; legacy sealing fills the index too."""


@dataclass(frozen=True)
class SealedColumn:
    """One :class:`EncryptedText` column, seen raw (no decryption on read)."""

    table: str
    column: str
    key: str
    purpose: str
    raw: TableClause
    index: BlindIndex | None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def sealed_columns() -> list[SealedColumn]:
    """Every :class:`EncryptedText` column of the hub's tables (found from the metadata,
    so a new sensitive column is rotated and sealed without being listed anywhere)."""
    found: list[SealedColumn] = []
    for tbl in metadata.sorted_tables:
        keys = list(tbl.primary_key.columns)
        for c in tbl.columns:
            if not isinstance(c.type, EncryptedText):
                continue
            if len(keys) != 1:
                raise RuntimeError(f"{tbl.name}.{c.name}: batches need a one-column primary key")
            index = BLIND_INDEXES.get((tbl.name, c.name))
            extra = [column(index.column, Text())] if index else []
            raw = table(
                tbl.name, column(keys[0].name, keys[0].type), column(c.name, Text()), *extra
            )
            found.append(SealedColumn(tbl.name, c.name, keys[0].name, c.type.purpose, raw, index))
    return found


def _prefix(value: ColumnElement[Any], kid: str) -> ColumnElement[bool]:
    # substr and = compare case-sensitively on both backends (LIKE does not on SQLite).
    return func.substr(value, 1, len(kid) + 1) == f"{kid}."


def _outside(sealed: SealedColumn, kids: Collection[str]) -> ColumnElement[bool]:
    value = sealed.raw.c[sealed.column]
    return and_(value.is_not(None), *(~_prefix(value, kid) for kid in kids))


async def _count_outside(session: AsyncSession, sealed: SealedColumn, kids: Collection[str]) -> int:
    statement = select(func.count()).select_from(sealed.raw).where(_outside(sealed, kids))
    return int((await session.execute(statement)).scalar_one())


async def _count_under(session: AsyncSession, sealed: SealedColumn, kid: str) -> int:
    statement = (
        select(func.count())
        .select_from(sealed.raw)
        .where(_prefix(sealed.raw.c[sealed.column], kid))
    )
    return int((await session.execute(statement)).scalar_one())


# -- the batch engine -----------------------------------------------------------------------


@dataclass(frozen=True)
class ResealProgress:
    """After each batch: values handled so far (of ``total`` counted at the start) and
    the column being worked on (``table.column``)."""

    done: int
    total: int
    column: str


@dataclass
class ResealReport:
    resealed: int = 0
    unreadable: int = 0
    """Values under a key the database does not hold, or that do not open: left as they
    are (they keep their key from being retired)."""
    complete: bool = True
    """False when ``max_batches`` stopped the pass early."""


def _plaintext(stored: str, purpose: str) -> str | None:
    if not looks_sealed(stored):
        return stored  # legacy plaintext: written before encryption at rest
    try:
        return vault.open(stored, purpose)
    except (UnknownDataKeyError, SealedValueError) as error:
        logger.warning("left a value as it is: %s", error)
        return None


async def _reseal_batch(
    session: AsyncSession, sealed: SealedColumn, keep: Collection[str], after: Any, size: int
) -> tuple[list[Any], int, int]:
    raw, key, value = sealed.raw, sealed.raw.c[sealed.key], sealed.raw.c[sealed.column]
    statement = select(key, value).where(_outside(sealed, keep)).order_by(key).limit(size)
    if after is not None:
        statement = statement.where(key > after)
    rows = (await session.execute(statement)).all()
    changes: list[dict[str, Any]] = []
    for row_id, stored in rows:
        plain = _plaintext(stored, sealed.purpose)
        if plain is None:
            continue
        change = {"b_id": row_id, "b_old": stored, "b_new": vault.seal(plain, sealed.purpose)}
        if sealed.index is not None:
            # The index key does not rotate, so recomputing it is idempotent; legacy rows
            # have none yet.
            change["b_index"] = sealed.index.compute(plain)
        changes.append(change)
    if changes:
        values: dict[str, Any] = {sealed.column: bindparam("b_new")}
        if sealed.index is not None:
            values[sealed.index.column] = bindparam("b_index")
        # Guarded by the old value: a concurrent write since the select wins untouched
        # (its value is sealed by its writer; a later pass picks it up if still old).
        statement_update = (
            update(raw).where(key == bindparam("b_id"), value == bindparam("b_old")).values(values)
        )
        await session.execute(statement_update, changes)
    return [row[0] for row in rows], len(changes), len(rows) - len(changes)


async def reseal(
    database: Database,
    keep: Collection[str],
    *,
    batch_size: int = 500,
    max_batches: int | None = None,
    progress: Callable[[ResealProgress], None] | None = None,
) -> ResealReport:
    """Seal under the vault's active key every sensitive value not already sealed under
    one of the ``keep`` kids: values under other keys are opened and sealed again, legacy
    plaintext is sealed and its blind index filled.

    Each batch of ``batch_size`` rows is its own short transaction, so readers and writers
    carry on meanwhile and an interrupted run loses at most one batch; a rerun resumes,
    since finished rows no longer match. ``max_batches`` stops early (report not complete).
    """
    if vault.active is None:
        raise VaultNotLoadedError("no data key loaded: run `hub init` or `hub migrate`")
    columns = sealed_columns()
    async with database.session() as session:
        totals = {c.name: await _count_outside(session, c, keep) for c in columns}
    total = sum(totals.values())
    report, batches = ResealReport(), 0
    for sealed in columns:
        after: Any = None
        while totals[sealed.name]:
            if max_batches is not None and batches >= max_batches:
                report.complete = False
                return report
            async with database.transaction() as session:
                ids, done, skipped = await _reseal_batch(session, sealed, keep, after, batch_size)
            batches += 1
            report.resealed += done
            report.unreadable += skipped
            if ids:
                after = ids[-1]
                if progress is not None:
                    seen = report.resealed + report.unreadable
                    progress(ResealProgress(seen, max(total, seen), sealed.name))
            if len(ids) < batch_size:
                break
    return report


async def seal_legacy(
    database: Database,
    master_key: bytes,
    *,
    activation_delay: float = 0.0,
    batch_size: int = 500,
    progress: Callable[[ResealProgress], None] | None = None,
) -> ResealReport:
    """Seal the plaintext sensitive values of a database migrated from before encryption
    at rest (migration 0005 kept them as they were), creating the first data key if
    needed. Values sealed under any of the database's keys are left alone."""
    async with database.transaction() as session:
        await ensure_data_key(session, master_key, activation_delay=activation_delay)
        kids = [row.kid for row in await _key_rows(session)]
    return await reseal(database, kids, batch_size=batch_size, progress=progress)


# -- rotation -------------------------------------------------------------------------------


class DataKeyRotationError(RuntimeError):
    """The rotation cannot go on safely; the message says why and what to do."""


@dataclass
class RotationReport:
    """What a rotation did: the key now active, whether this run created it, values
    re-sealed, values left unreadable, values still not under the key, whether the pass
    ran to the end, and the retired kids."""

    kid: str
    created: bool
    resealed: int = 0
    unreadable: int = 0
    remaining: int = 0
    complete: bool = False
    retired: list[str] = field(default_factory=list)


async def _rotation_target(
    database: Database, master_key: bytes, say: Callable[[str], None]
) -> tuple[DataKey, bool]:
    """The newest key when an earlier rotation to it is unfinished (values remain under
    older keys), else a new key."""
    async with database.transaction() as session:
        rows = await _key_rows(session)
        if len(rows) > 1:
            newest = rows[-1]
            left = 0
            for sealed in sealed_columns():
                for old in rows[:-1]:
                    left += await _count_under(session, sealed, old.kid)
            if left:
                say(f"continuing the rotation to data key {newest.kid} ({left} values left)")
                return newest, False
        created = await create_data_key(session, master_key)
    say(f"created data key {created.kid}")
    return created, True


async def _wait_until_aged(
    key: DataKey, seconds: float, why: str, say: Callable[[str], None], sleep: _Sleep
) -> None:
    age = (utcnow() - key.created_at).total_seconds()
    if age < seconds:
        say(f"waiting {seconds - age:.1f}s {why}")
        await sleep(seconds - age)


async def rotate_data_key(
    database: Database,
    master_key: bytes,
    *,
    refresh_interval: float,
    batch_size: int = 500,
    max_batches: int | None = None,
    retire: bool = False,
    progress: Callable[[ResealProgress], None] | None = None,
    say: Callable[[str], None] = logger.info,
    sleep: _Sleep = asyncio.sleep,
) -> RotationReport:
    """Re-encrypt every sensitive value under a new data key, without downtime.

    1. Create the key (or resume an unfinished rotation to the newest key).
    2. Wait until it is :func:`activation_delay` old: every replica has loaded it.
    3. Re-seal, in batches, every value not under it (legacy plaintext included).
    4. With ``retire``, after a complete pass: wait until every replica writes with the
       new key, re-seal what they wrote meanwhile, then delete the old keys that no
       value uses any more (counted in the deleting transaction).

    Old keys stay otherwise: values under them still open, so reads never stop.
    """
    target, created = await _rotation_target(database, master_key, say)
    delay = activation_delay(refresh_interval)
    await _wait_until_aged(target, delay, "for every replica to load the new key", say, sleep)
    async with database.session() as session:
        active = await load_data_keys(session, master_key, activation_delay=delay)
    if active != target.kid:
        raise DataKeyRotationError(
            f"data key {active} is active, not {target.kid}: another rotation ran meanwhile; "
            "rerun `hub keys rotate-data`"
        )
    report = RotationReport(kid=target.kid, created=created)
    done = await reseal(
        database, [target.kid], batch_size=batch_size, max_batches=max_batches, progress=progress
    )
    report.resealed, report.unreadable, report.complete = (
        done.resealed,
        done.unreadable,
        done.complete,
    )
    if retire and report.complete:
        # A replica switches at its first reload after activation (one interval), plus a
        # margin for writes sealed just before it switched and committed after.
        settle = delay + 2 * refresh_interval
        await _wait_until_aged(target, settle, "for every replica to write with it", say, sleep)
        stragglers = await reseal(database, [target.kid], batch_size=batch_size)
        report.resealed += stragglers.resealed
        report.retired = await _retire_unused(database, target)
    async with database.session() as session:
        for sealed in sealed_columns():
            report.remaining += await _count_outside(session, sealed, [target.kid])
    return report


async def _retire_unused(database: Database, target: DataKey) -> list[str]:
    retired: list[str] = []
    async with database.transaction() as session:
        for row in await _key_rows(session):
            if row.kid == target.kid or row.created_at >= target.created_at:
                continue
            used = 0
            for sealed in sealed_columns():
                used += await _count_under(session, sealed, row.kid)
            if used == 0:
                await session.execute(delete(DataKey).where(col(DataKey.kid) == row.kid))
                retired.append(row.kid)
    return retired
