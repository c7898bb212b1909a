"""``hub users``: staff users who sign in to the console (authorization code grant)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlmodel import col

from hub import audit
from hub.cli_errors import fail
from hub.db import Database, make_engine
from hub.models import STAFF_ROLES, Organization
from hub.settings import SettingsError, load_settings
from hub.staff import StaffUserError, create_staff_user

users_app = typer.Typer(help="Staff users (console sign-in).", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _password(from_stdin: bool) -> str:
    """From stdin (one line) or an interactive prompt: never a command-line value, which
    would land in shell history and the process list."""
    if from_stdin:
        try:
            return sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise _fail("--password-stdin: the password is not UTF-8 text") from None
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@users_app.command("create")
def users_create(
    org: Annotated[str, typer.Option(help="Slug of an operator or department organization")],
    role: Annotated[list[str], typer.Option(help=f"One of {', '.join(STAFF_ROLES)} (repeatable)")],
    email: Annotated[str, typer.Option(help="Sign-in email (stored lower-case)")],
    name: Annotated[str, typer.Option(help="Display name")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Create a staff user; prints it as JSON (never the password)."""
    try:
        settings = load_settings()
    except SettingsError as error:
        raise _fail(str(error)) from None
    password = _password(password_stdin)

    async def create() -> dict[str, Any]:
        database = Database(make_engine(settings.database_url))
        try:
            async with database.transaction() as session:
                found = await session.execute(
                    select(Organization).where(col(Organization.slug) == org)
                )
                organization = found.scalar_one_or_none()
                if organization is None:
                    raise _fail(f"--org: no organization with slug {org!r}")
                try:
                    user = await create_staff_user(
                        session,
                        organization=organization,
                        email=email,
                        name=name,
                        password=password,
                        roles=role,
                    )
                except StaffUserError as error:
                    raise _fail(str(error)) from None
                await audit.append(
                    session,
                    audit.shell_entry(
                        "staff_user.create",
                        f"staff_user:{user.id}",
                        {"organization": organization.slug, "roles": user.roles},
                    ),
                )
                return {
                    "id": str(user.id),
                    "email": user.email,
                    "name": user.name,
                    "org": organization.slug,
                    "roles": user.roles,
                    "active": user.active,
                }
        finally:
            await database.dispose()

    print(json.dumps(asyncio.run(create()), indent=2))
