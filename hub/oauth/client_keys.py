"""A private_key_jwt client's registered public keys (RFC 7523 §2.2, RFC 7517 §5).

The client registers a JWKS document; the hub never fetches keys from a ``jku``, ``x5u`` or
``jwks_uri`` (SSRF, CHECKLIST "OAuth"). Only public signature keys of the allowed types are
kept: a private or symmetric key in the document is refused, since it means a secret was
handed to the wrong party.
"""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

# RFC 7518 §3.1 / RFC 8037 §3.1: the algorithms a client may sign its assertions with.
ASSERTION_ALGORITHMS = ("ES256", "RS256", "EdDSA")
_ALG_FOR_KEY = {("EC", "P-256"): "ES256", ("RSA", None): "RS256", ("OKP", "Ed25519"): "EdDSA"}
# RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2: members that only private or secret keys carry.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_MAX_KEYS = 10
_MIN_RSA_BITS = 2048


class ClientKeysError(ValueError):
    """The JWKS document is unusable; the message says what to fix."""


def _check_key(index: int, jwk: Any) -> dict[str, Any]:
    where = f"key {index + 1}"
    if not isinstance(jwk, dict):
        raise ClientKeysError(f"{where} is not a JSON object")
    kty = jwk.get("kty")
    if kty == "oct":
        raise ClientKeysError(f"{where} is a symmetric (oct) key: register public keys only")
    private = [name for name in _PRIVATE_MEMBERS if name in jwk]
    if private:
        raise ClientKeysError(
            f"{where} is a PRIVATE key (it has the member {private[0]!r}): register only the "
            "public half, keep the private key with the client, and consider it exposed"
        )
    curve = jwk.get("crv") if kty in ("EC", "OKP") else None
    expected_alg = _ALG_FOR_KEY.get((str(kty), curve))
    if expected_alg is None:
        raise ClientKeysError(
            f"{where}: kty {kty!r}{f' crv {curve!r}' if curve else ''} is not allowed; use EC "
            "P-256 (ES256), RSA (RS256) or OKP Ed25519 (EdDSA)"
        )
    alg = jwk.get("alg")
    if alg is not None and alg != expected_alg:
        raise ClientKeysError(f"{where}: alg {alg!r} does not fit its key type ({expected_alg})")
    if jwk.get("use", "sig") != "sig":
        raise ClientKeysError(f"{where}: use must be 'sig'")
    key: ECKey | RSAKey | OKPKey
    try:
        if kty == "EC":
            key = ECKey.import_key(jwk)
        elif kty == "RSA":
            key = RSAKey.import_key(jwk)
        else:
            key = OKPKey.import_key(jwk)
    except (JoseError, ValueError, TypeError) as error:
        raise ClientKeysError(f"{where} is malformed: {error}") from None
    if isinstance(key, RSAKey) and key.raw_value.key_size < _MIN_RSA_BITS:
        raise ClientKeysError(f"{where}: an RSA key needs at least {_MIN_RSA_BITS} bits")
    public = {**key.as_dict(private=False), "alg": expected_alg, "use": "sig"}
    public["kid"] = str(jwk.get("kid") or key.thumbprint())
    return public


def validate_client_jwks(document: Any) -> dict[str, Any]:
    """Check a JWKS document; returns the public keys to store (each with kid, alg, use)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ClientKeysError('a JWKS is a JSON object with a "keys" array (RFC 7517 §5)')
    keys = document["keys"]
    if not keys:
        raise ClientKeysError("the JWKS has no keys")
    if len(keys) > _MAX_KEYS:
        raise ClientKeysError(f"the JWKS has {len(keys)} keys; at most {_MAX_KEYS} are allowed")
    checked = [_check_key(index, jwk) for index, jwk in enumerate(keys)]
    kids = [key["kid"] for key in checked]
    if len(set(kids)) != len(kids):
        raise ClientKeysError("two keys share a kid")
    return {"keys": checked}


def client_key_set(jwks: dict[str, Any]) -> KeySet:
    """The stored JWKS as a key set for signature checks."""
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
