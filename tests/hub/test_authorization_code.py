"""Authorization code grant with PKCE through the staff sign-in form (RFC 6749 §4.1,
RFC 7636, RFC 9700 §2.1.1 and §4.1.3)."""

from __future__ import annotations

import httpx

from hub.db import Database
from hub.models import AuthorizationCode
from hub.oauth.staff_sessions import issue_code
from tests.conftest import make_org
from tests.hub.staff_helpers import (
    REDIRECT,
    authorize_params,
    exchange,
    get_code,
    make_code_client,
    make_staff,
    me,
    pkce_pair,
    redirect_query,
    submit_login,
    unverified_claims,
)


async def test_full_flow_gives_a_staff_token(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db, roles=("analyst", "policy_editor"))
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)

    response = await exchange(client, registered, code, verifier)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "customers:read"
    assert body["refresh_token"]
    claims = unverified_claims(body["access_token"])
    assert claims["sub"] == str(staff.user.id)
    assert claims["client_id"] == registered.client_id
    assert claims["org"] == staff.org.slug
    assert claims["roles"] == ["analyst", "policy_editor"]
    assert (await me(client, body["access_token"])).status_code == 200


async def test_confidential_client_must_authenticate(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org, public=False)
    verifier, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    anonymous = await exchange(client, type(registered)(registered.client_id, None), code, verifier)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"


async def test_plain_pkce_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    verifier, _ = pkce_pair()
    params = authorize_params(registered.client_id, verifier, code_challenge_method="plain")
    query = redirect_query(await client.get("/oauth/authorize", params=params))
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]
    assert "code" not in query


async def test_missing_challenge_is_refused_even_for_confidential_clients(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org, public=False)
    params = authorize_params(registered.client_id, None)
    query = redirect_query(await client.get("/oauth/authorize", params=params))
    assert query["error"] == "invalid_request"


async def test_challenge_without_method_means_plain_and_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    params = authorize_params(registered.client_id, challenge, code_challenge_method="")
    query = redirect_query(await client.get("/oauth/authorize", params=params))
    assert query["error"] == "invalid_request"


async def test_wrong_verifier_is_invalid_grant(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    other_verifier, _ = pkce_pair()
    response = await exchange(client, registered, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    missing = await exchange(client, registered, code, None)
    assert missing.json()["error"] == "invalid_grant"


async def test_verifier_for_a_code_without_challenge_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    # The PKCE downgrade (RFC 9700 §2.1.1): such a code never comes from /oauth/authorize,
    # but if one existed, a verifier must not make it redeemable.
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    code = await issue_code(
        db,
        client_id=registered.client_id,
        user_id=staff.user.id,
        redirect_uri=REDIRECT,
        code_challenge=None,
        scope="customers:read",
    )
    verifier, _ = pkce_pair()
    response = await exchange(client, registered, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_reused_code_revokes_what_the_first_use_issued(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    first = (await exchange(client, registered, code, verifier)).json()
    assert (await me(client, first["access_token"])).status_code == 200

    again = await exchange(client, registered, code, verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # Every replica picks the deny list up on its next refresh; force it now.
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    await runtime.revocations.refresh(db)
    assert (await me(client, first["access_token"])).status_code == 401
    dead = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": registered.client_id,
        },
    )
    assert dead.json()["error"] == "invalid_grant"


async def test_mismatched_redirect_uri_shows_an_error_page(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    for wrong in (REDIRECT + "/", REDIRECT + "?x=1", REDIRECT.upper(), "https://evil.test/cb"):
        params = authorize_params(registered.client_id, challenge, redirect_uri=wrong)
        response = await client.get("/oauth/authorize", params=params)
        assert response.status_code == 400
        assert "location" not in response.headers
        assert "redirect_uri" in response.text


async def test_redirect_uri_differs_at_the_token_endpoint(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    response = await exchange(client, registered, code, verifier, REDIRECT + "/other")
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_client_shows_an_error_page(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    response = await client.get(
        "/oauth/authorize", params=authorize_params("hub_unknown", challenge)
    )
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_client_credentials_client_cannot_use_the_code_flow(
    client: httpx.AsyncClient, db: Database
) -> None:
    from tests.conftest import make_caller

    caller = await make_caller(db, "operator")
    _, challenge = pkce_pair()
    response = await client.get(
        "/oauth/authorize", params=authorize_params(caller.client_id, challenge)
    )
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_wrong_password_shows_the_form_again(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    params = authorize_params(registered.client_id, challenge)
    response = await submit_login(client, params, staff.email, "wrong password, sorry")
    assert response.status_code == 401
    assert "location" not in response.headers
    assert 'name="password"' in response.text
    assert "wrong" in response.text


async def test_forged_form_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    params = authorize_params(registered.client_id, challenge)
    data = {**params, "email": staff.email, "password": "x", "csrf": "1.abc"}
    response = await client.post("/oauth/authorize", data=data)
    assert response.status_code == 401
    assert "location" not in response.headers


async def test_disabled_user_cannot_sign_in(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    async with db.transaction() as session:
        user = await session.get(type(staff.user), staff.user.id)
        assert user is not None
        user.active = False
    _, challenge = pkce_pair()
    params = authorize_params(registered.client_id, challenge)
    response = await submit_login(client, params, staff.email)
    assert response.status_code == 401
    assert "location" not in response.headers


async def test_codes_are_stored_hashed(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    async with db.session() as session:
        assert await session.get(AuthorizationCode, code) is None


async def test_partner_org_cannot_have_staff(db: Database) -> None:
    import pytest

    from hub.staff import StaffUserError, create_staff_user

    org = await make_org(db, "distributor")
    async with db.transaction() as session:
        with pytest.raises(StaffUserError, match="only operator and department"):
            await create_staff_user(
                session,
                organization=org,
                email="a@b.c",
                name="A",
                password="x" * 12,
                roles=["member"],
            )


async def test_implicit_grant_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    staff = await make_staff(db)
    registered = await make_code_client(db, staff.org)
    _, challenge = pkce_pair()
    params = authorize_params(registered.client_id, challenge, response_type="token")
    query = redirect_query(await client.get("/oauth/authorize", params=params))
    assert query["error"] == "unsupported_response_type"
    assert "access_token" not in query
