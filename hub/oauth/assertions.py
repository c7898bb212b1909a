"""JWT client assertions: the ``private_key_jwt`` method (RFC 7523 §2.2, §3; RFC 7521 §4.2).

The assertion is checked against the client's registered JWKS only (no ``jku``/``x5u``),
with a pinned algorithm list (RFC 8725 §3.1: never ``none`` or HMAC), ``aud`` the issuer
identifier (RFC 7523 §3 point 3 as updated by draft-ietf-oauth-rfc7523bis: one value, a
string or a one-member array; never an endpoint URL unless a legacy setting asks), a short
lifetime, and a ``jti`` accepted once: the replay store is a table, so every replica
shares it.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from joserfc import jws, jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from hub.db import Database
from hub.models import UsedAssertion
from hub.models._types import utcnow
from hub.oauth.client_keys import ASSERTION_ALGORITHMS, client_key_set

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 300  # seconds between iat (or now) and exp
_LEEWAY = 30
_MAX_JTI = 255


def _is_text(value: object) -> TypeGuard[str]:
    """A non-empty string that can be stored and compared: JSON's ``\\ud800`` escape yields
    a lone surrogate (no UTF-8 encoding: a 500 where an id reached the database, before
    any key was looked at) and PostgreSQL text cannot hold a NUL."""
    return (
        isinstance(value, str)
        and bool(value)
        and "\x00" not in value
        and not any("\ud800" <= ch <= "\udfff" for ch in value)
    )


class InvalidAssertionError(Exception):
    """The assertion is refused (``invalid_client``); the message is safe for the client."""


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: datetime


def assertion_subject(assertion: str) -> str:
    """The client id the assertion claims (``iss`` = ``sub``), read before any key is chosen.

    Nothing here is trusted yet: it only names whose registered keys to verify with.
    """
    try:
        signed = jws.extract_compact(assertion.encode())
        header = signed.headers()
        claims = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError):
        raise InvalidAssertionError("the client assertion is not a compact JWS") from None
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        allowed = ", ".join(ASSERTION_ALGORITHMS)
        raise InvalidAssertionError(f"the client assertion's alg must be one of {allowed}")
    if not isinstance(claims, dict):
        raise InvalidAssertionError("the client assertion's payload is not a JSON object")
    iss, sub = claims.get("iss"), claims.get("sub")
    if not _is_text(iss) or iss != sub:
        raise InvalidAssertionError("the client assertion needs iss = sub = the client id")
    return iss


def _signed_claims(assertion: str, keys: KeySet) -> dict[str, Any]:
    header = jws.extract_compact(assertion.encode()).headers()
    alg, kid = header["alg"], header.get("kid")
    candidates = [k for k in keys.keys if k.alg == alg and (kid is None or k.kid == kid)]
    for key in candidates:
        try:
            with warnings.catch_warnings():
                # joserfc flags "EdDSA" as superseded by "Ed25519" (RFC 9864); still allowed.
                warnings.simplefilter("ignore", SecurityWarning)
                claims: dict[str, Any] = jwt.decode(assertion, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError):
            continue
        return claims
    raise InvalidAssertionError("the client assertion's signature does not match a registered key")


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAssertionError(f"the client assertion's {name} is not a number")
    return float(value)


def verify_assertion(
    assertion: str, jwks: dict[str, Any], *, client_id: str, audiences: tuple[str, ...]
) -> VerifiedAssertion:
    """RFC 7523 §3: signature, iss/sub, aud, exp (capped), nbf/iat, jti present.

    ``aud`` must be exactly one of ``audiences`` (the first is named in the error), as a
    string or an array of that one value; an array of several values is refused even if
    one of them matches, so an assertion meant for several servers is never accepted.
    """
    claims = _signed_claims(assertion, client_key_set(jwks))
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidAssertionError("the client assertion needs iss = sub = the client id")
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str) or aud not in audiences:
        raise InvalidAssertionError(f"the client assertion's aud must be {audiences[0]}")
    now = time.time()
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None:
        raise InvalidAssertionError("the client assertion needs an exp")
    if exp <= now - _LEEWAY:
        raise InvalidAssertionError("the client assertion has expired")
    if exp - max(now, iat or now) > MAX_LIFETIME + _LEEWAY or (
        iat is not None and exp - iat > MAX_LIFETIME
    ):
        raise InvalidAssertionError(f"the client assertion may live at most {MAX_LIFETIME} s")
    if (iat is not None and iat > now + _LEEWAY) or (nbf is not None and nbf > now + _LEEWAY):
        raise InvalidAssertionError("the client assertion is not valid yet")
    jti = claims.get("jti")
    if not _is_text(jti) or len(jti) > _MAX_JTI:
        raise InvalidAssertionError("the client assertion needs a jti (at most 255 characters)")
    return VerifiedAssertion(client_id, jti, datetime.fromtimestamp(exp + _LEEWAY, UTC))


async def record_assertion(database: Database, assertion: VerifiedAssertion) -> None:
    """Accept a ``jti`` once per client until it expires (RFC 7523 §3 point 7).

    The unique constraint does the check, so two replicas racing on one assertion cannot
    both win. The client's expired entries are pruned on the way.
    """
    try:
        async with database.transaction() as session:
            await session.execute(
                delete(UsedAssertion).where(
                    col(UsedAssertion.client_id) == assertion.client_id,
                    col(UsedAssertion.expires_at) < utcnow(),
                )
            )
            session.add(
                UsedAssertion(
                    client_id=assertion.client_id,
                    jti=assertion.jti,
                    expires_at=assertion.expires_at,
                )
            )
    except IntegrityError:
        raise InvalidAssertionError("the client assertion was already used (jti)") from None
