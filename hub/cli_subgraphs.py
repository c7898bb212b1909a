"""``hub subgraphs``: remote GraphQL subgraphs composed into the hub (docs/federation.md).

``add NAME URL`` registers one (``--header 'Name: value'``, or OAuth client credentials
against its own authorization server) and fetches its SDL at once (``--no-refresh`` to
skip); ``refresh NAME`` fetches it again: accepted when it composes, refused with the
composition problems otherwise (the accepted SDL keeps serving); ``list`` shows each with
its status and fields; ``remove NAME`` unregisters one. Running hubs follow within
``HUB_POLICY_REFRESH_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from hub.cli_errors import fail, redacted
from hub.db import Database, make_engine
from hub.errors import HubError
from hub.federation import admin, store
from hub.federation.settings import FederationSettings, load_federation_settings
from hub.migrate import current_revision, head_revision
from hub.settings import Settings, SettingsError, load_settings
from hub.vault import load_data_keys

subgraphs_app = typer.Typer(
    help="Remote GraphQL subgraphs composed into the hub: add, refresh, list.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, soft_wrap=True, highlight=False)
T = TypeVar("T")


def _settings() -> tuple[Settings, FederationSettings]:
    try:
        return load_settings(), load_federation_settings()
    except SettingsError as error:
        raise fail(str(error)) from None


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction; a hub error ends as one line, exit 2."""

    async def run() -> T:
        url = settings.database_url
        current = await current_revision(url)
        if current != head_revision():
            state = "not initialised" if current is None else f"at migration {current}"
            raise fail(f"the database at {redacted(url)} is {state}: run `hub migrate` first")
        database = Database(make_engine(url))
        try:
            async with database.transaction() as session:
                await load_data_keys(session, settings.master_key)  # sealed secrets
                return await work(session)
        except HubError as error:
            raise fail(str(error)) from None
        finally:
            await database.dispose()

    return asyncio.run(run())


def _report(result: store.Refresh) -> None:
    if result.accepted:
        out.print(f"{result.name}: accepted; fields: {', '.join(result.fields) or 'none'}")
        return
    err.print(f"{result.name}: {result.status}; the accepted SDL (if any) keeps serving:")
    for problem in result.problems:
        err.print(f"  - {problem}")
    raise typer.Exit(code=1)


async def _refresh(
    session: AsyncSession, name: str, federation: FederationSettings
) -> store.Refresh:
    return await admin.refresh(session, name, federation.net_policy())


def _header(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, rest = value.partition(":")
    if not sep or not name.strip() or not rest.strip():
        raise fail("--header: 'Name: value', e.g. 'Authorization: Bearer ...'")
    return name.strip(), rest.strip()


@subgraphs_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="A short name: lowercase, digits, '-'.")],
    url: Annotated[str, typer.Argument(help="Its GraphQL endpoint (https).")],
    header: Annotated[
        str | None,
        typer.Option(
            help="A header the hub sends it: 'Name: value' (sealed at rest).",
            envvar="HUB_SUBGRAPH_HEADER",
        ),
    ] = None,
    oauth_token_url: Annotated[
        str | None, typer.Option(help="OAuth 2.0: its authorization server's token URL.")
    ] = None,
    oauth_client_id: Annotated[str | None, typer.Option(help="OAuth 2.0: the client id.")] = None,
    oauth_client_secret: Annotated[
        str | None,
        typer.Option(
            help="OAuth 2.0: the client secret (sealed at rest).",
            envvar="HUB_SUBGRAPH_CLIENT_SECRET",
        ),
    ] = None,
    oauth_scope: Annotated[str | None, typer.Option(help="OAuth 2.0: scopes to ask.")] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds the hub waits for an answer.")
    ] = 5.0,
    refresh: Annotated[bool, typer.Option(help="Fetch its SDL now.")] = True,
) -> None:
    """Register a subgraph and (unless --no-refresh) compose it."""
    settings, federation = _settings()
    oauth = None
    if oauth_token_url or oauth_client_id or oauth_client_secret:
        oauth = {
            "token_url": oauth_token_url or "",
            "client_id": oauth_client_id or "",
            "client_secret": oauth_client_secret or "",
            **({"scope": oauth_scope} if oauth_scope else {}),
        }

    async def work(session: AsyncSession) -> store.Refresh | None:
        await store.add_subgraph(
            session,
            name=name,
            url=url,
            policy=federation.net_policy(),
            header=_header(header),
            oauth=oauth,
            timeout_seconds=timeout,
        )
        return await _refresh(session, name, federation) if refresh else None

    result = _in_transaction(settings, work)
    if result is None:
        out.print(f"{name}: registered; `hub subgraphs refresh {name}` composes it")
        return
    _report(result)


@subgraphs_app.command("refresh")
def refresh_command(name: Annotated[str, typer.Argument(help="The subgraph's name.")]) -> None:
    """Fetch its SDL again: accepted if it composes, refused (exit 1) otherwise."""
    settings, federation = _settings()
    _report(_in_transaction(settings, lambda s: _refresh(s, name, federation)))


@subgraphs_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="The subgraph's name.")]) -> None:
    """Unregister it: its fields leave the graph (refused while the policy names one)."""
    settings, _ = _settings()
    _in_transaction(settings, lambda s: admin.remove(s, name))
    out.print(f"{name}: removed")


@subgraphs_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Every subgraph: URL, authentication, status, its fields, the last problem."""
    settings, _ = _settings()

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        return [store.describe(row) for row in await store.list_subgraphs(session)]

    rows = _in_transaction(settings, work)
    if as_json:
        out.print(json.dumps(rows, indent=2), soft_wrap=True)
        return
    if not rows:
        err.print("no subgraphs: `hub subgraphs add NAME URL` registers one")
        return
    table = Table()
    for title in ("name", "url", "auth", "status", "fields", "last problem"):
        table.add_column(title, overflow="fold")
    for row in rows:
        fields = row["fields"]
        table.add_row(
            str(row["name"]),
            str(row["url"]),
            str(row["auth"]),
            str(row["status"]),
            ", ".join(str(f) for f in fields) if isinstance(fields, list) else "",
            str(row["last_error"] or ""),
        )
    out.print(table)
