"""Masks: what a partner sees instead of a field's true value (DESIGN §4).

Each mask is a pure function of the value; ``None`` stays ``None`` (nothing to hide).
:func:`pseudonym` is a keyed HMAC-SHA256 whose key is derived from (secret, partner org),
so a partner sees the same pseudonym for the same value every time, and two partners'
pseudonyms for one value cannot be linked without the secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from policies.model import MaskSpec

__all__ = [
    "DEFAULT_BUCKET_EDGES",
    "REDACTED",
    "apply_mask",
    "bucket",
    "initials",
    "last4",
    "partial_email",
    "pseudonym",
    "redact",
    "year_only",
]

REDACTED = "[redacted]"
DEFAULT_BUCKET_EDGES: tuple[int, ...] = (0, 100, 1000, 5000, 10000, 50000, 100000)


def redact(value: Any) -> str | None:
    """Replace any value by :data:`REDACTED`."""
    return None if value is None else REDACTED


def partial_email(value: str | None) -> str | None:
    """``alice@example.com`` -> ``a***@example.com`` (no "@": first character + ``***``)."""
    if value is None:
        return None
    local, at, domain = value.rpartition("@")
    if not at:
        return f"{value[:1]}***"
    return f"{local[:1]}***@{domain}"


def last4(value: str | None) -> str | None:
    """``+1 555 010 1234`` -> ``****1234``: the last four letters or digits; a value of
    four or fewer shows none of them."""
    if value is None:
        return None
    chars = [c for c in value if c.isalnum()]
    return "****" + "".join(chars[-4:]) if len(chars) > 4 else "****"


def initials(value: str | None) -> str | None:
    """``Ada Lovelace`` -> ``A. L.``."""
    if value is None:
        return None
    return " ".join(f"{word[0].upper()}." for word in value.split())


def year_only(value: dt.date | str | None) -> int | None:
    """A date or datetime (or ISO string) -> its year."""
    if value is None:
        return None
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).year
    return value.year


def bucket(value: float | None, edges: Sequence[int] = DEFAULT_BUCKET_EDGES) -> str | None:
    """A number -> the label of its range: with edges ``(0, 1000, 5000)``, ``1234`` ->
    ``"1000-4999"``, ``-3`` -> ``"<0"``, ``7000`` -> ``"5000+"``."""
    if value is None:
        return None
    if value < edges[0]:
        return f"<{edges[0]}"
    for low, high in itertools.pairwise(edges):
        if low <= value < high:
            return f"{low}-{high - 1}"
    return f"{edges[-1]}+"


def pseudonym(value: Any, *, secret: bytes, partner: str) -> str | None:
    """A stable, partner-specific pseudonym: HMAC-SHA256 over the typed value with a key
    derived from (``secret``, ``partner``), first 80 bits in lowercase base32."""
    if value is None:
        return None
    key = hmac.new(secret, b"pseudonym\x00" + partner.encode(), hashlib.sha256).digest()
    message = f"{type(value).__name__}\x00{value}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "redact": redact,
    "partial_email": partial_email,
    "last4": last4,
    "initials": initials,
    "year_only": year_only,
}


def apply_mask(spec: MaskSpec, value: Any, *, secret: bytes, partner: str) -> Any:
    """Apply the mask ``spec`` to ``value`` for ``partner`` (the caller's org slug)."""
    if spec.name == "bucket":
        return bucket(value, spec.edges or DEFAULT_BUCKET_EDGES)
    if spec.name == "pseudonym":
        return pseudonym(value, secret=secret, partner=partner)
    try:
        mask = _SIMPLE[spec.name]
    except KeyError:
        raise ValueError(f"unknown mask {spec.name!r}") from None
    return mask(value)
