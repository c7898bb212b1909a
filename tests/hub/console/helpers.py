"""Helpers for console tests: an app whose issuer is a loopback URL (the console's redirect
URI must be https or loopback http), staff users, and signing in through the real flow."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app import create_app
from hub.db import Database
from hub.models import Organization, OrgKind
from hub.settings import Settings
from hub.staff import create_staff_user
from tests.conftest import make_org, make_settings

ISSUER = "http://127.0.0.1:8765"
PASSWORD = "correct horse battery staple"


def console_settings(database_url: str) -> Settings:
    return make_settings(database_url).model_copy(update={"issuer": ISSUER})


@asynccontextmanager
async def console_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


async def operator(db: Database) -> Organization:
    """The operator organization (one per hub), created on first use."""
    from sqlmodel import col, select

    async with db.session() as session:
        found = (
            await session.execute(
                select(Organization).where(col(Organization.kind) == OrgKind.OPERATOR.value)
            )
        ).scalar_one_or_none()
    return found or await make_org(db, "operator", slug="operator")


@dataclass
class StaffLogin:
    email: str
    roles: tuple[str, ...]


async def make_staff(db: Database, *roles: str) -> StaffLogin:
    org = await operator(db)
    email = f"{'-'.join(roles) or 'nobody'}.{uuid.uuid4().hex[:6]}@example.test"
    async with db.transaction() as session:
        await create_staff_user(
            session, organization=org, email=email, name="Staff", password=PASSWORD, roles=roles
        )
    return StaffLogin(email, roles)


def _hidden_fields(page: str) -> dict[str, str]:
    pattern = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'
    return {name: html.unescape(value) for name, value in re.findall(pattern, page)}


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """The whole flow a browser follows; returns the callback's response (303 to the page)."""
    start = await http.get("/console/login")
    assert start.status_code == 303, start.text
    form_page = await http.get(_path(start.headers["location"]))
    assert form_page.status_code == 200, form_page.text
    fields = {**_hidden_fields(form_page.text), "email": email, "password": password}
    answer = await http.post("/oauth/authorize", data=fields)
    assert answer.status_code == 303, answer.text
    return await http.get(_path(answer.headers["location"]))


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, "no CSRF token on the page"
    return found.group(1)
