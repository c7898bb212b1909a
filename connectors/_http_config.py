"""The configuration of an ``http`` connector (:mod:`connectors.http`), checked with
errors naming the key at fault (``config.pagination.cursor: required (text)``)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from connectors.config import ConfigError, optional_text, required_text

PAGINATION = ("next_link", "cursor", "page", "none")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
_KEY_TYPES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}
_ALGORITHMS = {"RSA": "RS256", "OKP": "EdDSA"}
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")


@dataclass(frozen=True)
class Pagination:
    type: str = "none"
    next: str = "header"  # next_link: a dotted path in the body, or the Link header
    cursor: str = ""  # cursor: the dotted path of the next cursor in the body
    param: str = ""  # cursor, page: the query parameter carrying it
    start: int = 1  # page: the first page's number
    size_param: str | None = None
    size: int | None = None  # page: a shorter page is the last

    @classmethod
    def parse(cls, data: Any) -> Pagination:
        where = "config.pagination"
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping of settings")
        unknown = sorted(set(data) - {"type", "next", "cursor", "param", "start", "size_param"})
        unknown = [key for key in unknown if key != "size"]
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not a pagination setting")
        kind = data.get("type", "none")
        if kind not in PAGINATION:
            raise ConfigError(f"{where}.type: one of {', '.join(PAGINATION)}, not {kind!r}")
        if kind == "next_link":
            return cls(kind, next=optional_text(data, "next", where) or "header")
        if kind == "cursor":
            return cls(
                kind,
                cursor=required_text(data, "cursor", where),
                param=required_text(data, "param", where),
            )
        if kind == "page":
            start, size = data.get("start", 1), data.get("size")
            if not _whole(start, 0):
                raise ConfigError(f"{where}.start: a whole number, 0 or more")
            if size is not None and not _whole(size, 1):
                raise ConfigError(f"{where}.size: a whole number, 1 or more")
            size_param = optional_text(data, "size_param", where)
            if size_param is not None and size is None:
                raise ConfigError(f"{where}.size: required with size_param")
            return cls(
                kind,
                param=optional_text(data, "param", where) or "page",
                start=start,
                size_param=size_param,
                size=size,
            )
        return cls(kind)


@dataclass(frozen=True)
class Auth:
    type: str = "none"  # none, header, oauth2
    header: str = "Authorization"
    value: str = field(default="", repr=False)
    token_url: str = ""
    method: str = "client_secret_basic"
    client_id: str = ""
    secret: str = field(default="", repr=False)
    private_key: RSAKey | ECKey | OKPKey | None = field(default=None, repr=False)
    alg: str = ""
    scope: str | None = None
    audience: str | None = None

    @classmethod
    def parse(cls, data: Any, credentials: Mapping[str, str]) -> Auth:
        where = "config.auth"
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping of settings")
        keys = {"type", "header", "token_url", "method", "client_id", "scope", "audience", "alg"}
        unknown = sorted(set(data) - keys)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not an auth setting")
        kind = data.get("type")
        if kind == "header":
            name = optional_text(data, "header", where) or "Authorization"
            if not _HEADER_NAME.fullmatch(name):
                raise ConfigError(f"{where}.header: not an HTTP header name")
            token = credentials.get("token", "")
            if not token.strip() or "\n" in token or "\r" in token:
                raise ConfigError("credentials.token: required (the header's value, one line)")
            return cls("header", header=name, value=token.strip())
        if kind != "oauth2":
            raise ConfigError(f"{where}.type: header or oauth2, not {kind!r}")
        token_url = _http_url(required_text(data, "token_url", where), f"{where}.token_url")
        method = optional_text(data, "method", where) or "client_secret_basic"
        if method not in AUTH_METHODS:
            raise ConfigError(f"{where}.method: one of {', '.join(AUTH_METHODS)}")
        client_id = credentials.get("client_id") or optional_text(data, "client_id", where)
        if not client_id:
            raise ConfigError(f"{where}.client_id: required (here or in the credentials)")
        auth = cls(
            "oauth2",
            token_url=token_url,
            method=method,
            client_id=client_id,
            scope=optional_text(data, "scope", where),
            audience=optional_text(data, "audience", where),
        )
        if method != "private_key_jwt":
            secret = credentials.get("client_secret", "")
            if not secret:
                raise ConfigError(f"credentials.client_secret: required by {method}")
            return replace(auth, secret=secret)
        key = _private_key(credentials.get("private_key", ""))
        alg = optional_text(data, "alg", where) or _algorithm(key)
        return replace(auth, private_key=key, alg=alg)


def _private_key(text: str) -> RSAKey | ECKey | OKPKey:
    """A private key from PEM or JWK text; its type stated, never guessed (joserfc)."""
    where = "credentials.private_key"
    if not text.strip():
        raise ConfigError(f"{where}: required by private_key_jwt (PEM or JWK)")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"{where}: not a private key (PEM or JWK)") from None
        kinds = [data.get("kty")] if isinstance(data, dict) else []
    else:
        data, kinds = text, list(_KEY_TYPES)
    for kind in kinds:
        if kind not in _KEY_TYPES:
            break
        try:
            key = _KEY_TYPES[kind].import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        if not key.is_private:
            raise ConfigError(f"{where}: a public key; the private key is needed")
        return key
    raise ConfigError(f"{where}: not a private key (RSA, EC or OKP; PEM or JWK)")


def _algorithm(key: RSAKey | ECKey | OKPKey) -> str:
    if isinstance(key, ECKey):
        return _EC_ALGORITHMS.get(key.curve_name, "ES256")
    return _ALGORITHMS[key.key_type]


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    backoff: float = 1.0
    max_delay: float = 60.0

    @classmethod
    def parse(cls, data: Any) -> Retry:
        where = "config.retry"
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping of settings")
        unknown = sorted(set(data) - {"attempts", "backoff", "max_delay"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not a retry setting")
        retry = cls(
            attempts=data.get("attempts", cls.attempts),
            backoff=data.get("backoff", cls.backoff),
            max_delay=data.get("max_delay", cls.max_delay),
        )
        if not _whole(retry.attempts, 0) or retry.attempts > 20:
            raise ConfigError(f"{where}.attempts: a whole number from 0 to 20")
        for name in ("backoff", "max_delay"):
            value = getattr(retry, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}.{name}: seconds, 0 or more")
        return retry

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter: between half and all of ``backoff * 2**n``."""
        ceiling = min(self.max_delay, self.backoff * 2 ** (attempt - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class HttpConfig:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    records: str | None = None
    pagination: Pagination = field(default_factory=Pagination)
    auth: Auth = field(default_factory=Auth)
    retry: Retry = field(default_factory=Retry)
    timeout: float = 30.0

    @classmethod
    def parse(cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None) -> HttpConfig:
        keys = {"url", "params", "headers", "records", "pagination", "auth", "retry", "timeout"}
        unknown = sorted(set(config) - keys)
        if unknown:
            raise ConfigError(f"config.{unknown[0]}: not a setting of an http connector")
        timeout = config.get("timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("config.timeout: seconds, more than 0")
        headers = _text_map(config.get("headers"), "config.headers")
        for name in headers:
            if not _HEADER_NAME.fullmatch(name) or any(c in headers[name] for c in "\r\n"):
                raise ConfigError(f"config.headers.{name}: not a valid HTTP header")
        return cls(
            url=_http_url(required_text(config, "url"), "config.url"),
            params=_text_map(config.get("params"), "config.params"),
            headers=headers,
            records=optional_text(config, "records"),
            pagination=Pagination.parse(config.get("pagination")),
            auth=Auth.parse(config.get("auth"), credentials or {}),
            retry=Retry.parse(config.get("retry")),
            timeout=float(timeout),
        )


def _whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _text_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise ConfigError(f"{where}: must map names to text values")
    return {str(k): str(v) for k, v in value.items()}


def _http_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(f"{where}: no user name or password in the URL (use credentials)")
    return url


__all__ = ["AUTH_METHODS", "PAGINATION", "Auth", "HttpConfig", "Pagination", "Retry"]
