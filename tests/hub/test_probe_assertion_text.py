"""A client assertion whose iss/sub or jti is not storable text (a lone UTF-16 surrogate,
which JSON's \\ud800 escape yields, or a NUL) is invalid_client, never a 500. Found by an
outside-in probe: an unsigned assertion claiming iss = sub = "\\ud800" answered
server_error before any key was looked at (the claimed id went to the database)."""

from __future__ import annotations

import json

import httpx
import pytest
from joserfc import jws

from hub.db import Database
from hub.oauth.assertions import ASSERTION_TYPE
from tests.hub.oauth_helpers import b64json, make_key_client, post_form

GRANT = {"grant_type": "client_credentials"}
NOT_TEXT = ["\ud800", "a\udfffb", "a\x00b"]


@pytest.mark.parametrize("claimed", NOT_TEXT, ids=["lone-high", "lone-low", "nul"])
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
async def test_an_unsigned_claim_of_a_non_text_client_id_is_invalid_client(
    client: httpx.AsyncClient, claimed: str, path: str
) -> None:
    assertion = f"{b64json({'alg': 'ES256'})}.{b64json({'iss': claimed, 'sub': claimed})}.AAAA"
    form = {
        **GRANT,
        "token": "x",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    response = await post_form(client, path, form)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("jti", NOT_TEXT, ids=["lone-high", "lone-low", "nul"])
async def test_a_signed_assertion_with_a_non_text_jti_is_invalid_client(
    client: httpx.AsyncClient, db: Database, jti: str
) -> None:
    key_client = await make_key_client(db)
    # Signed by hand: the claims as JSON with \u escapes, as any client library may send.
    payload = json.dumps(key_client.claims(jti=jti)).encode()
    header = {"alg": key_client.alg, "kid": key_client.key.kid}
    assertion = jws.serialize_compact(header, payload, key_client.key)
    form = {**GRANT, **key_client.form(assertion)}
    response = await post_form(client, "/oauth/token", form)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "jti" in response.json()["error_description"]
    # The client is not harmed: its next, well-formed assertion works.
    fine = await post_form(client, "/oauth/token", {**GRANT, **key_client.form()})
    assert fine.status_code == 200, fine.text
