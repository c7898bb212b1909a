"""Inbound webhooks: another system posts its records to the hub as they change,
signed per the Standard Webhooks specification (https://www.standardwebhooks.com/).

This module is the verification and the reading of one request, framework-free; the
hub serves it at ``POST /connectors/{name}/events`` and stores the records through the
sync runtime like any other source's.

A request carries ``webhook-id`` (the message's id, the same on each retry: the hub
stores a message once), ``webhook-timestamp`` (seconds since the epoch) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, several
space-separated during a rotation). The ``standardwebhooks`` library checks them: a
timestamp more than 5 minutes from now is refused (a captured request cannot be
replayed later), and signatures are compared in constant time.

Configuration (``config`` of a ``webhook`` connector)::

    records: data          # where the record is in the body (dotted path; default the
                           # body itself): an object, or a list of objects
    max_bytes: 262144      # the largest body accepted (default 256 KiB, at most 5 MiB)

Credentials: ``{secret: whsec_...}``, and ``previous_secret`` while a rotation overlaps.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from connectors.base import Record, unstorable
from connectors.config import ConfigError, optional_text
from connectors.mapping import lookup

DEFAULT_MAX_BYTES = 256 * 1024
MAX_BYTES = 5 * 1024 * 1024
"""No connector accepts a larger body, whatever its configuration."""
MAX_ID = 200
REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE_MINUTES = 5  # the standardwebhooks library's, stated for messages


class WebhookRejectedError(Exception):
    """The request is not one to store; ``code`` is for the sender's program, the
    message for the person reading it. Neither names anything of the hub's inside."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WebhookEvent:
    """A verified message: its ``webhook-id`` and the records it holds."""

    id: str
    records: tuple[Record, ...]


@dataclass(frozen=True)
class WebhookConfig:
    records: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> WebhookConfig:
        unknown = sorted(set(config) - {"records", "max_bytes"})
        if unknown:
            raise ConfigError(f"config.{unknown[0]}: not a setting of a webhook connector")
        size = config.get("max_bytes", DEFAULT_MAX_BYTES)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BYTES:
            raise ConfigError(f"config.max_bytes: a whole number of bytes from 1 to {MAX_BYTES}")
        return cls(optional_text(config, "records"), size)


def _secret(text: str | None, key: str) -> Webhook | None:
    if text is None:
        return None
    raw = text.removeprefix("whsec_")
    try:
        if len(base64.b64decode(raw + "==", validate=False)) < 16:
            raise ValueError
        return Webhook(text)
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"credentials.{key}: a Standard Webhooks secret (whsec_ and base64 of 16 bytes or more)"
        ) from None


class WebhookSource:
    """A ``webhook`` connector. Its records arrive by HTTP (:meth:`receive`), so
    :meth:`read` (a scheduled or manual run) reads nothing.

    Example::

        source = WebhookSource.from_config({"records": "data"}, {"secret": "whsec_..."})
        event = source.receive(body, request_headers)  # or WebhookRejectedError
    """

    def __init__(self, config: WebhookConfig, secrets: tuple[Webhook, ...]) -> None:
        self.config = config
        self.secrets = secrets

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None = None
    ) -> WebhookSource:
        credentials = credentials or {}
        unknown = sorted(set(credentials) - {"secret", "previous_secret"})
        if unknown:
            raise ConfigError(f"credentials.{unknown[0]}: not a credential of a webhook connector")
        current = _secret(credentials.get("secret"), "secret")
        if current is None:
            raise ConfigError("credentials.secret: required (the whsec_... signing secret)")
        previous = _secret(credentials.get("previous_secret"), "previous_secret")
        secrets = (current,) if previous is None else (current, previous)
        return cls(WebhookConfig.parse(config), secrets)

    async def read(self, cursor: str | None) -> AsyncIterator[Record]:
        del cursor
        return
        yield  # an async generator that yields nothing

    def receive(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify one request and read its records; :class:`WebhookRejectedError` says
        what is wrong with it."""
        if len(body) > self.config.max_bytes:
            raise WebhookRejectedError(
                "body_too_large", f"the body is larger than {self.config.max_bytes} bytes"
            )
        lowered = {k.lower(): v for k, v in headers.items()}
        message_id = lowered.get("webhook-id", "")
        if not all(
            lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
        ):
            raise WebhookRejectedError(
                "missing_headers",
                "the webhook-id, webhook-timestamp and webhook-signature headers are required",
            )
        if len(message_id) > MAX_ID or not message_id.isprintable():
            raise WebhookRejectedError(
                "invalid_id", f"webhook-id must be 1 to {MAX_ID} printable characters"
            )
        self._verify(body, lowered)
        return WebhookEvent(message_id, self._records(message_id, _parse(body)))

    def _verify(self, body: bytes, headers: dict[str, str]) -> None:
        for secret in self.secrets:
            try:
                secret.verify(body, headers, json_parse=False)
                return
            except WebhookVerificationError as error:
                reason = str(error).lower()
                if "timestamp" in reason or "headers" in reason:  # the same for any secret
                    raise WebhookRejectedError(
                        "invalid_timestamp",
                        "webhook-timestamp must be the sending time in seconds since the "
                        f"epoch, within {TOLERANCE_MINUTES} minutes of now",
                    ) from None
        raise WebhookRejectedError(
            "invalid_signature", "webhook-signature does not match the body with this secret"
        )

    def _records(self, message_id: str, body: Any) -> tuple[Record, ...]:
        path = self.config.records
        found = body if path is None else lookup(body, path) if isinstance(body, dict) else None
        if isinstance(found, Mapping):
            return (Record(found, f"webhook {message_id}", message_id),)
        if not isinstance(found, list):
            where = "the body" if path is None else f"{path!r} in the body"
            raise WebhookRejectedError(
                "invalid_body", f"{where} must be a JSON object or a list of objects"
            )
        records = []
        for n, item in enumerate(found, start=1):
            position = f"webhook {message_id} item {n}"
            if isinstance(item, Mapping):
                records.append(Record(item, position, message_id))
            else:
                raw = {"raw": json.dumps(item, ensure_ascii=False)[:2000]}
                records.append(Record(raw, position, message_id, f"{position} is not an object"))
        return tuple(records)


def _parse(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, an integer too long
        raise WebhookRejectedError("invalid_body", "the body is not JSON") from None
    problem = unstorable(data)
    if problem is not None:
        raise WebhookRejectedError("invalid_body", f"the body {problem}")
    return data


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES",
    "WebhookConfig",
    "WebhookEvent",
    "WebhookRejectedError",
    "WebhookSource",
]
