"""The console's session: an encrypted, authenticated cookie (AES-GCM under a key derived
from the master key) holding the staff user's access and refresh tokens and the CSRF token.

Nothing is stored server-side, so any replica serves any request; the cookie is
``HttpOnly`` (scripts never see the tokens), ``SameSite=Lax`` and ``Secure`` when the hub is
served over https. A cookie that was altered, made under another master key or is of an
older format simply does not open: the user signs in again.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from starlette.requests import HTTPConnection
from starlette.responses import Response

from hub.crypto import decrypt, derive_key, encrypt

COOKIE = "hub_console"
SIGNIN_COOKIE = "hub_console_signin"
PATH = "/console"
SIGNIN_LIFETIME = 600
_PURPOSE = "hub.console.session"
_VERSION = 1


@dataclass(frozen=True)
class Session:
    """A signed-in staff user's session."""

    access_token: str
    refresh_token: str
    expires_at: float  # of the access token (epoch seconds)
    csrf: str
    email: str
    issued_at: float

    @classmethod
    def new(cls, tokens: dict[str, Any], email: str) -> Session:
        now = time.time()
        return cls(
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens.get("refresh_token", "")),
            expires_at=now + float(tokens.get("expires_in", 0)),
            csrf=secrets.token_urlsafe(32),
            email=email,
            issued_at=now,
        )

    def refreshed(self, tokens: dict[str, Any]) -> Session:
        """The same session (CSRF token kept) with rotated tokens."""
        return Session(
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens.get("refresh_token", self.refresh_token)),
            expires_at=time.time() + float(tokens.get("expires_in", 0)),
            csrf=self.csrf,
            email=self.email,
            issued_at=self.issued_at,
        )


@dataclass(frozen=True)
class PendingSignIn:
    """What the callback needs of the authorization request it answers (RFC 7636 §4.1)."""

    verifier: str
    state: str
    next: str


def _key(master_key: bytes) -> bytes:
    return derive_key(master_key, _PURPOSE)


def seal(master_key: bytes, kind: str, value: object) -> str:
    payload = json.dumps({"v": _VERSION, "kind": kind, "value": asdict(value)})  # type: ignore[call-overload]
    return encrypt(_key(master_key), payload.encode(), kind.encode())


def _open(master_key: bytes, kind: str, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        raw = decrypt(_key(master_key), token, kind.encode())
        payload = json.loads(raw)
    except (InvalidTag, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        return None
    value = payload.get("value")
    return value if isinstance(value, dict) else None


def read_session(conn: HTTPConnection, master_key: bytes) -> Session | None:
    value = _open(master_key, "session", conn.cookies.get(COOKIE))
    if value is None:
        return None
    try:
        return Session(**value)
    except TypeError:
        return None


def read_pending(conn: HTTPConnection, master_key: bytes) -> PendingSignIn | None:
    value = _open(master_key, "signin", conn.cookies.get(SIGNIN_COOKIE))
    if value is None:
        return None
    try:
        return PendingSignIn(**value)
    except TypeError:
        return None


def secure(conn: HTTPConnection, issuer: str) -> bool:
    """``Secure`` cookies when the hub is served over https (directly or per its issuer)."""
    return conn.url.scheme == "https" or issuer.startswith("https://")


def set_cookie(
    response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, httponly=True, secure=secure, samesite="lax"
    )


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, secure=secure, samesite="lax")
