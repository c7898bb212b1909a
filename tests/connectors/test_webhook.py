"""The webhook source's verification, on messages signed by the ``standardwebhooks``
library: a rotation's two secrets, records found in the body, limits, configuration."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from connectors import REGISTRY, ConfigError
from connectors.webhook import WebhookRejectedError, WebhookSource


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def headers(body: bytes, key: str, message_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "Webhook-Id": message_id,  # header names in any case
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": Webhook(key).sign(message_id, now, body),
    }


def test_a_rotation_accepts_both_secrets() -> None:
    old, new = secret(), secret()
    source = WebhookSource.from_config({}, {"secret": new, "previous_secret": old})
    body = b'{"id": 1}'
    for key in (old, new):
        event = source.receive(body, headers(body, key))
        assert event.id == "msg_1"
        assert [(r.data, r.position, r.cursor) for r in event.records] == [
            ({"id": 1}, "webhook msg_1", "msg_1")
        ]
    with pytest.raises(WebhookRejectedError, match="does not match"):
        source.receive(body, headers(body, secret()))
    # A sender in the middle of its own rotation sends two signatures: one matching is enough.
    both = headers(body, secret())
    both["Webhook-Signature"] += " " + headers(body, new)["Webhook-Signature"]
    assert source.receive(body, both).id == "msg_1"


def test_records_at_a_path_and_bodies_refused() -> None:
    key = secret()
    source = WebhookSource.from_config({"records": "data.items"}, {"secret": key})
    body = json.dumps({"data": {"items": [{"a": 1}, {"a": 2}]}}).encode()
    assert [r.position for r in source.receive(body, headers(body, key)).records] == [
        "webhook msg_1 item 1",
        "webhook msg_1 item 2",
    ]
    refused: list[tuple[bytes, str]] = [
        (b'{"data": {}}', "'data.items' in the body must be a JSON object or a list"),
        (b'{"data": {"items": {"x": "\\ud800"}}}', "lone surrogate"),
        (b'{"data": {"items": {"x": "\\u0000"}}}', "NUL character"),
        (b'{"x": ' + b"1" * 5000 + b"}", "not JSON"),  # past Python's 4300 digits
        (b"\xff\xfe", "not JSON"),
    ]
    for bad, message in refused:
        with pytest.raises(WebhookRejectedError, match=message):
            source.receive(bad, headers(bad, key))
    deep = json.dumps({"data": {"items": [{"x": _nested(40)}]}}).encode()
    with pytest.raises(WebhookRejectedError, match="deeper than 32 levels"):
        source.receive(deep, headers(deep, key))


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_an_id_too_long_and_a_body_too_large() -> None:
    key = secret()
    source = WebhookSource.from_config({"max_bytes": 64}, {"secret": key})
    with pytest.raises(WebhookRejectedError, match="webhook-id must be 1 to 200"):
        source.receive(b"{}", headers(b"{}", key, "m" * 201))
    big = b'{"x": "' + b"y" * 100 + b'"}'
    with pytest.raises(WebhookRejectedError, match="larger than 64 bytes") as error:
        source.receive(big, headers(big, key))
    assert error.value.code == "body_too_large"


async def test_a_run_reads_nothing() -> None:
    source = REGISTRY["webhook"]({}, {"secret": secret()})
    assert [record async for record in source.read(None)] == []


@pytest.mark.parametrize(
    ("config", "credentials", "message"),
    [
        ({}, None, "credentials.secret: required"),
        ({}, {"secret": "whsec_c2hvcnQ="}, "credentials.secret: a Standard Webhooks secret"),
        ({}, {"secret": "whsec_!!!"}, "credentials.secret: a Standard Webhooks secret"),
        ({}, {"secret": secret(), "token": "x"}, "credentials.token: not a credential"),
        ({"max_bytes": 0}, {"secret": secret()}, "config.max_bytes"),
        ({"max_bytes": 10**9}, {"secret": secret()}, "config.max_bytes"),
        ({"path": "x"}, {"secret": secret()}, "config.path: not a setting of a webhook"),
    ],
)
def test_configuration_errors_name_the_key(
    config: dict[str, Any], credentials: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        WebhookSource.from_config(config, credentials)
