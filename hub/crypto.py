"""Symmetric encryption of secrets at rest with keys derived from the hub's master key."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12  # AES-GCM's standard nonce; a random one per value


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, so that one derived key never serves two uses."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master_key
    )


def encrypt(key: bytes | AESGCM, plaintext: bytes, associated: bytes = b"") -> str:
    """``base64url(nonce | AES-GCM ciphertext and tag)``. ``key`` may be a prepared
    :class:`AESGCM` (callers that seal many values keep one per key)."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    nonce = os.urandom(NONCE_BYTES)
    return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, plaintext, associated)).decode()


def decrypt(key: bytes | AESGCM, token: str, associated: bytes = b"") -> bytes:
    """Open what :func:`encrypt` made; raises ``InvalidTag`` if it was altered."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    raw = base64.urlsafe_b64decode(token.encode())
    return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated)
