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
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.crypto import decrypt, derive_key, encrypt
from hub.models import DataKey
from hub.models._sealed import (
    EncryptedText,
    Vault,
    VaultNotLoadedError,
    email_index,
    normalise_email,
    phone_index,
    vault,
)

__all__ = [
    "EncryptedText",
    "Vault",
    "VaultNotLoadedError",
    "create_data_key",
    "email_index",
    "ensure_data_key",
    "load_data_keys",
    "normalise_email",
    "phone_index",
    "vault",
]

_WRAP_PURPOSE = "hub data keys v1"


def _wrapping_key(master_key: bytes) -> bytes:
    return derive_key(master_key, _WRAP_PURPOSE)


async def create_data_key(session: AsyncSession, master_key: bytes) -> DataKey:
    """A new random data key; once loaded it is the active one (the newest)."""
    kid = secrets.token_hex(8)
    raw = AESGCM.generate_key(bit_length=256)
    row = DataKey(kid=kid, wrapped=encrypt(_wrapping_key(master_key), raw, kid.encode()))
    session.add(row)
    await session.flush()
    return row


async def load_data_keys(session: AsyncSession, master_key: bytes) -> str | None:
    """Load every data key of the database into :data:`vault`; returns the active kid,
    or ``None`` when the database has none yet."""
    rows = (
        (await session.execute(select(DataKey).order_by(col(DataKey.created_at), col(DataKey.kid))))
        .scalars()
        .all()
    )
    if not rows:
        return None
    wrapping = _wrapping_key(master_key)
    keys = {row.kid: decrypt(wrapping, row.wrapped, row.kid.encode()) for row in rows}
    vault.install(master_key, keys, rows[-1].kid)
    return rows[-1].kid


async def ensure_data_key(session: AsyncSession, master_key: bytes) -> str:
    """Load the data keys, creating the first one if the database has none."""
    active = await load_data_keys(session, master_key)
    if active is None:
        await create_data_key(session, master_key)
        active = await load_data_keys(session, master_key)
    assert active is not None
    return active
