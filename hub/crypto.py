"""Symmetric encryption of secrets at rest with keys derived from the hub's master key."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, so that one derived key never serves two uses."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master_key
    )


def encrypt(key: bytes, plaintext: bytes, associated: bytes = b"") -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext, associated)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(key: bytes, token: str, associated: bytes = b"") -> bytes:
    raw = base64.urlsafe_b64decode(token.encode())
    return AESGCM(key).decrypt(raw[:12], raw[12:], associated)
