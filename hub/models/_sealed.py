"""Sensitive column values: the process's data keys, the encrypted column type and the
keyed blind indexes (key management, loading and rotation live in :mod:`hub.vault`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from hub.crypto import NONCE_BYTES, decrypt, derive_key, encrypt

_INDEX_PURPOSE = "hub blind index v1"
_AUDIT_PURPOSE = "hub audit value hash v1"
ANCHOR_PURPOSE = "hub audit anchor v1"
"""What the key that signs the audit chain's head is derived for (:mod:`hub.audit_anchor`)."""


_TAG = 16
# ``<kid>.<urlsafe base64>``: kids are 16 hex digits (secrets.token_hex(8)). An email or an
# E.164 phone never has this shape, which is how legacy plaintext is told from ciphertext.
_SEALED_SHAPE = re.compile(r"[0-9a-f]{16}\.[A-Za-z0-9_-]+={0,2}")


class VaultNotLoadedError(RuntimeError):
    """Sensitive data was read or written before the database's data keys were loaded."""


class UnknownDataKeyError(VaultNotLoadedError):
    """A value is sealed under a data key this process has not loaded: a key created
    after the last refresh (the vault is marked stale so the runtime reloads at once),
    or a key retired while a value still used it."""


class SealedValueError(ValueError):
    """A stored value does not open under its key: altered, truncated, or copied from
    another column (the associated data binds each value to its column)."""


def looks_sealed(value: str) -> bool:
    """Whether ``value`` has the shape of a sealed value (says nothing about its key)."""
    return _SEALED_SHAPE.fullmatch(value) is not None


@dataclass
class Vault:
    """The data keys of the open database, the active one, and the derived index keys."""

    keys: dict[str, AESGCM] = field(default_factory=dict)
    active: str | None = None
    index_key: bytes | None = None
    audit_key: bytes | None = None
    anchor_key: bytes | None = None
    # Set when a value named a key not loaded here; the runtime's refresh loop reloads
    # the keys at its next tick instead of waiting for the key refresh interval.
    stale: bool = False

    def install(self, master_key: bytes, keys: dict[str, bytes], active: str) -> None:
        # Keys of other databases opened by this process stay (kids are random, so they
        # never collide); only the active key and the derived keys follow the last load.
        self.keys.update({kid: AESGCM(raw) for kid, raw in keys.items()})
        self.active = active
        self.index_key = derive_key(master_key, _INDEX_PURPOSE)
        self.audit_key = derive_key(master_key, _AUDIT_PURPOSE)
        self.anchor_key = derive_key(master_key, ANCHOR_PURPOSE)
        self.stale = False

    def seal(self, plaintext: str, purpose: str) -> str:
        if self.active is None:
            raise VaultNotLoadedError("no data key loaded: run `hub init` or `hub migrate`")
        sealed = encrypt(self.keys[self.active], plaintext.encode(), purpose.encode())
        return f"{self.active}.{sealed}"

    def open(self, token: str, purpose: str) -> str:
        kid, _, body = token.partition(".")
        key = self.keys.get(kid)
        if key is None:
            if not looks_sealed(token):
                raise SealedValueError(
                    f"{purpose} holds a value that is not sealed (plaintext from before "
                    "encryption at rest?): run `hub migrate` to seal legacy values"
                )
            self.stale = True
            raise UnknownDataKeyError(
                f"{purpose} value is sealed under data key {kid!r}, which this process has "
                "not loaded: the key is newer than the last key refresh (retry shortly) or "
                "was retired while still in use"
            )
        try:
            if len(base64.urlsafe_b64decode(body.encode())) < NONCE_BYTES + _TAG:
                raise SealedValueError(f"{purpose} value under data key {kid!r} is truncated")
            return decrypt(key, body, purpose.encode()).decode()
        except (InvalidTag, binascii.Error, UnicodeDecodeError) as error:
            raise SealedValueError(
                f"{purpose} value under data key {kid!r} does not open: it was altered, "
                "or copied from another column"
            ) from error

    def key_id(self, token: str) -> str:
        return token.partition(".")[0]

    def blind_index(self, kind: str, normalised: str) -> str:
        """The keyed index of one normalised value (``kind`` keeps email and phone apart)."""
        if self.index_key is None:
            raise VaultNotLoadedError("no data key loaded: run `hub init` or `hub migrate`")
        message = f"{kind}:{normalised}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()

    def value_hash(self, value: str) -> str:
        """A keyed hash standing for a sensitive value in the audit log: equal values
        compare equal, and the value cannot be recovered or guessed offline."""
        if self.audit_key is None:
            raise VaultNotLoadedError("no data key loaded: run `hub init` or `hub migrate`")
        return "hmac-sha256:" + hmac.new(self.audit_key, value.encode(), hashlib.sha256).hexdigest()


vault = Vault()
"""The process-wide vault; :func:`load_data_keys` fills it for the open database."""


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted with the active data key (``purpose`` is the
    associated data). Values are compared only through their blind index, never in SQL."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else vault.seal(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else vault.open(value, self.purpose)


def normalise_email(value: str) -> str:
    """The matching form of an address: trimmed and case-folded as a whole (providers
    differ on local-part rules, so nothing else is assumed)."""
    return value.strip().casefold()


def email_index(value: str | None) -> str | None:
    return None if value is None else vault.blind_index("email", normalise_email(value))


def phone_index(value: str | None) -> str | None:
    """``value`` is already E.164 (validation normalises every phone it accepts)."""
    return None if value is None else vault.blind_index("phone", value.strip())
