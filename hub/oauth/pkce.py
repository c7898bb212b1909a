"""PKCE (RFC 7636), S256 only (RFC 9700 §2.1.1): ``plain`` and a missing challenge are
refused for every client, public or confidential."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHODS = ("S256",)
# RFC 7636 §4.1: 43-128 unreserved characters; an S256 challenge is 43 base64url chars.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def challenge_problem(challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's PKCE parameters are refused (§4.3), or None."""
    if not challenge:
        return "code_challenge is required (PKCE, RFC 7636)"
    # §4.3: without code_challenge_method the method is "plain", which the hub refuses.
    if method not in METHODS:
        return "code_challenge_method must be S256"
    if not _CHALLENGE.fullmatch(challenge):
        return "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
    return None


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verifier_matches(verifier: str | None, challenge: str | None) -> bool:
    """RFC 7636 §4.6; a code without a challenge is never redeemable (downgrade check)."""
    if challenge is None or verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
