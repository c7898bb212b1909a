"""The outbound webhook sink against a real receiver on 127.0.0.1 that verifies the
Standard Webhooks signature with the ``standardwebhooks`` library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from connectors.base import ChangeEvent
from connectors.outbound import DeliveryError, EndpointGoneError, WebhookSink, retry_after
from tests.hub.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "c2VjcmV0LW51bWJlci10d28tZm9yLXRoZS10ZXN0cw=="
EVENT = ChangeEvent("msg_1", "Customer.update", {"id": "c-1", "record": {"city": "Lyon"}})


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    found = WebhookReceiver(secrets=[SECRET])
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_signed_per_standard_webhooks(
    receiver: WebhookReceiver, http: httpx.AsyncClient
) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await WebhookSink(receiver.url, [SECRET], http).send(EVENT, occurred_at=at)
    received = receiver.accepted["msg_1"]
    assert received.body == {
        "type": "Customer.update",
        "timestamp": "2026-01-02T03:04:05+00:00",
        "data": {"id": "c-1", "record": {"city": "Lyon"}},
    }
    headers = received.headers
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert headers["webhook-signature"].startswith("v1,")


async def test_two_secrets_sign_during_a_rotation(
    receiver: WebhookReceiver, http: httpx.AsyncClient
) -> None:
    sink = WebhookSink(receiver.url, [OTHER, SECRET], http)
    receiver.secrets = [SECRET]
    await sink.send(EVENT)
    receiver.secrets = [OTHER]
    await sink.send(ChangeEvent("msg_2", "Customer.update", {}))
    assert set(receiver.accepted) == {"msg_1", "msg_2"}
    assert len(receiver.accepted["msg_2"].headers["webhook-signature"].split(" ")) == 2


async def test_a_signature_does_not_verify_under_another_secret_or_body() -> None:
    at = datetime.now(UTC)
    body = b'{"a":1}'
    signature = Webhook(SECRET).sign("msg_1", at, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(SECRET).verify(body, headers) == {"a": 1}
    for secret, data in ((OTHER, body), (SECRET, b'{"a":2}')):
        with pytest.raises(Exception, match="signature"):
            Webhook(secret).verify(data, headers)


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (410, EndpointGoneError, "410"),
        (500, DeliveryError, "HTTP 500"),
        (302, DeliveryError, "redirects are not followed"),
        (404, DeliveryError, "HTTP 404"),
    ],
)
async def test_failures_raise(
    receiver: WebhookReceiver,
    http: httpx.AsyncClient,
    status: int,
    error: type[DeliveryError],
    message: str,
) -> None:
    receiver.status = status
    receiver.extra_headers = {"location": "https://elsewhere.example/"}
    with pytest.raises(error, match=message) as raised:
        await WebhookSink(receiver.url, [SECRET], http).send(EVENT)
    assert raised.value.status == status and raised.value.reached
    assert sum(receiver.attempts.values()) == 1  # one request, nothing followed


async def test_a_receiver_that_is_down(receiver: WebhookReceiver, http: httpx.AsyncClient) -> None:
    await receiver.stop()
    with pytest.raises(DeliveryError, match="could not connect") as raised:
        await WebhookSink(receiver.url, [SECRET], http).send(EVENT)
    assert raised.value.status is None and not raised.value.reached


async def test_retry_after_is_read(receiver: WebhookReceiver, http: httpx.AsyncClient) -> None:
    receiver.status = 429
    receiver.extra_headers = {"retry-after": "120"}
    with pytest.raises(DeliveryError) as raised:
        await WebhookSink(receiver.url, [SECRET], http).send(EVENT)
    assert raised.value.retry_after == 120.0


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after("30") == 30.0
    assert retry_after(later, now=now) == 90.0
    assert retry_after("999999999") == 24 * 3600.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_sink_needs_a_secret(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookSink("https://x.example/", [], http)
