"""The OAuth endpoints read bounded bodies (OWASP API4): a client that is not even
authenticated must not make the server hold hundreds of megabytes of form (found by an
outside-in probe: a 300 MB body to /oauth/token peaked the server at 1.3 GB)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hub.db import Database
from hub.oauth._http import MAX_FORM_BYTES
from tests.conftest import make_caller

FORM = "application/x-www-form-urlencoded"
ENDPOINTS = ["/oauth/token", "/oauth/introspect", "/oauth/revoke"]


def _oversized() -> bytes:
    return b"grant_type=client_credentials&scope=" + b"a" * MAX_FORM_BYTES


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    # No Content-Length: the limit must hold while reading, not only on the header.
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_an_oversized_form_is_refused_with_413(
    client: httpx.AsyncClient, db: Database, path: str
) -> None:
    caller = await make_caller(db, "distributor")
    headers = {"Content-Type": FORM, "Authorization": caller.basic}
    declared = await client.post(path, content=_oversized(), headers=headers)
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"] == "invalid_request"
    assert len(declared.content) < 1000  # nothing of the body echoed back

    streamed = await client.post(path, content=_chunks(_oversized()), headers=headers)
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"] == "invalid_request"


async def test_a_form_at_the_limit_is_still_read(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "distributor")
    body = b"grant_type=client_credentials&pad=" + b"a" * 1000
    response = await client.post(
        "/oauth/token", content=body, headers={"Content-Type": FORM, "Authorization": caller.basic}
    )
    assert response.status_code == 200, response.text


async def test_an_oversized_sign_in_form_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/authorize", content=_oversized(), headers={"Content-Type": FORM}
    )
    assert response.status_code == 413, response.text
    assert "text/html" in response.headers["content-type"]
