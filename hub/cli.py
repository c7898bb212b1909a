"""The ``hub`` command line: init, migrate, serve, demo, clients, keys."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit, listen, logs
from hub.cli_audit import audit_app
from hub.cli_deliveries import deliveries_app
from hub.cli_errors import fail, redacted, run
from hub.cli_policy import policy_app
from hub.cli_subgraphs import subgraphs_app
from hub.cli_sync import import_file, sync_app
from hub.cli_users import users_app
from hub.db import Database, make_engine
from hub.migrate import DatabaseBehindError, ensure_current, upgrade
from hub.models import Organization, OrgKind, SigningKey
from hub.oauth.client_keys import ClientKeysError, validate_client_jwks
from hub.oauth.clients import (
    DEFAULT_ROTATION_OVERLAP,
    RedirectUriError,
    UnknownClientError,
    create_client,
    create_code_client,
    create_key_client,
    disable_client,
    rotate_secret,
)
from hub.oauth.keys import generate_signing_key, rotate_signing_keys
from hub.oauth.scopes import (
    ScopeNotGrantableError,
    UnknownScopeError,
    check_grantable,
    parse_scopes,
)
from hub.settings import Settings, SettingsError, load_settings, write_secret_key_file
from hub.sharing import install_defaults
from hub.vault import (
    DataKeyRotationError,
    ResealProgress,
    activation_delay,
    ensure_data_key,
    load_data_keys,
    rotate_data_key,
    seal_legacy,
)

app = typer.Typer(
    help="Partner Hub: policy-enforced GraphQL over shared customer data.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback (HUB_DEBUG=1) must not print local variables: they hold secrets.
    pretty_exceptions_show_locals=False,
)
clients_app = typer.Typer(help="OAuth clients.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
keys_app = typer.Typer(
    help="The hub's token signing keys and data encryption keys.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(sync_app, name="sync")
app.command("import")(import_file)
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(subgraphs_app, name="subgraphs")
# soft_wrap: a path or URL in a message stays on its line when stderr is a pipe.
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
_PORT = Annotated[int, typer.Option(min=1, max=65535, help="TCP port")]


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error")
    ] = False,
) -> None:
    if debug:
        os.environ["HUB_DEBUG"] = "1"  # read by hub.cli_errors.run when a command fails


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        raise _fail(str(error)) from None


def _ensure_secret(settings: Settings) -> None:
    if settings.secret_key is not None:
        return
    path = settings.secret_key_file
    try:
        created = write_secret_key_file(path)
    except OSError as error:
        raise _fail(
            f"cannot create the secret key file {path} ({error.strerror}): "
            "set HUB_SECRET_KEY_FILE to a writable path, or HUB_SECRET_KEY"
        ) from None
    if created:
        err.print(f"created the hub's secret key file {path}")


async def _prepare(settings: Settings, operator: tuple[str, str] | None) -> None:
    """Migrate, create a signing key if none, and the operator organization if asked."""
    await upgrade(settings.database_url)
    database = Database(make_engine(settings.database_url))
    try:
        async with database.transaction() as session:
            keys = (await session.execute(select(func.count()).select_from(SigningKey))).scalar()
            if not keys:
                await generate_signing_key(session, settings.master_key)
                err.print("created a token signing key (ES256)")
            if await load_data_keys(session, settings.master_key) is None:
                await ensure_data_key(session, settings.master_key)
                err.print("created a data encryption key (AES-256-GCM) for sensitive fields")
            if operator is not None:
                slug, name = operator
                found = await session.execute(
                    select(Organization).where(col(Organization.slug) == slug)
                )
                if found.scalar_one_or_none() is None:
                    session.add(Organization(slug=slug, name=name, kind=OrgKind.OPERATOR))
                    err.print(f"created the operator organization {slug}")
            if await install_defaults(session):
                err.print("installed the default sharing policy as version 1")
        await _seal_legacy(settings, database)
    finally:
        await database.dispose()


@app.command()
def init(
    operator_slug: Annotated[
        str, typer.Option(help="Slug of the operator organization")
    ] = "operator",
    operator_name: Annotated[
        str, typer.Option(help="Name of the operator organization")
    ] = "Operator",
) -> None:
    """Create the secret key file, apply migrations, create a signing key and the operator."""
    settings = _settings()
    _ensure_secret(settings)
    asyncio.run(_prepare(settings, (operator_slug, operator_name)))
    err.print(f"[green]ready[/green]: {redacted(settings.database_url)}", highlight=False)


@app.command()
def migrate() -> None:
    """Apply pending database migrations, then seal email/phone stored in clear by a hub
    older than encryption at rest."""
    settings = _settings()

    async def run() -> None:
        await upgrade(settings.database_url)
        database = Database(make_engine(settings.database_url))
        try:
            await _seal_legacy(settings, database)
        finally:
            await database.dispose()

    asyncio.run(run())
    err.print(f"[green]migrated[/green] {redacted(settings.database_url)}", highlight=False)


def _public_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


def _issuer_for(host: str, port: int) -> dict[str, Any]:
    """Without HUB_ISSUER, the issuer is where this process listens."""
    if "HUB_ISSUER" in os.environ:
        return {}
    return {"issuer": f"http://{_public_host(host)}:{port}"}


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: _PORT = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Serve the hub (SQLite is migrated automatically; PostgreSQL must be current)."""
    import uvicorn

    settings = _settings(**_issuer_for(host, port))
    try:
        settings.master_key  # noqa: B018 — fail now with a clear message
        asyncio.run(_check_ready(settings))
    except (SettingsError, DatabaseBehindError) as error:
        raise _fail(str(error)) from None
    os.environ.setdefault("HUB_ISSUER", settings.issuer)
    try:
        listen.check_free(host, port)
    except listen.PortInUseError as error:
        raise _fail(str(error)) from None
    logs.announce(
        listen.announcement(host, port), as_json=settings.log_json, url=listen.url(host, port)
    )
    uvicorn.run(
        listen.APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


async def _check_ready(settings: Settings) -> None:
    """The database is current (SQLite is migrated) and initialised, so the server's
    start-up cannot fail on it."""
    await ensure_current(settings.database_url, auto_upgrade=settings.is_sqlite)
    database = Database(make_engine(settings.database_url))
    try:
        async with database.session() as session:
            keys = (await session.execute(select(func.count()).select_from(SigningKey))).scalar()
    finally:
        await database.dispose()
    if not keys:
        raise _fail(
            f"the database at {redacted(settings.database_url)} has no token signing key: "
            "run `hub init` first"
        )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: _PORT = 8000,
    customers: Annotated[int, typer.Option(min=1, help="Customers to create")] = 1000,
    credentials_out: Annotated[Path, typer.Option(help="Where to write client credentials")] = Path(
        "./demo-credentials.json"
    ),
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve afterwards")
    ] = True,
) -> None:
    """Seed a fresh demo database with realistic data and serve it with GraphiQL on."""
    from hub.console.demo import create_demo_admin
    from hub.delivery.demo import register_demo_subscription
    from hub.demo import seed_demo
    from hub.sync.demo import register_demo_connector

    # Before anything is deleted or written: a busy port leaves the last demo intact.
    try:
        listener = listen.reserve(host, port) if serve_after else None
    except listen.PortInUseError as error:
        raise _fail(str(error)) from None
    # The server is built in uvicorn by the app factory (`app:create_app`: hub never
    # imports app), which reads its settings from the environment; the demo's choices go
    # there, so seeding and serving read the same settings. A HUB_ISSUER or
    # HUB_DATABASE_URL the user set wins, as with `hub serve`.
    os.environ["HUB_GRAPHIQL"] = "true"
    # One process: the server runs the support-desk connector and delivers the
    # distributor's webhooks to this machine itself (hub.workers).
    os.environ.setdefault("HUB_SYNC_WORKER", "true")
    os.environ.setdefault("HUB_DELIVERY_ALLOW_LOOPBACK", "true")
    os.environ.setdefault("HUB_ISSUER", f"http://{_public_host(host)}:{port}")
    if "HUB_DATABASE_URL" not in os.environ:
        db_file = Path("./hub.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        os.environ["HUB_DATABASE_URL"] = f"sqlite+aiosqlite:///{db_file}"
    settings = _settings()
    _ensure_secret(settings)
    desk_folder = Path("./demo-support-desk").resolve()
    hook_port, hook_secret = (port + 1 if port < 65535 else port - 1), list[str]()
    console_login = list[str]()

    async def seed() -> list[Any]:
        await _prepare(settings, None)
        database = Database(make_engine(settings.database_url))
        try:
            async with database.transaction() as session:
                existing = (
                    await session.execute(select(func.count()).select_from(Organization))
                ).scalar()
                if existing:
                    raise _fail(
                        "the database set by HUB_DATABASE_URL already has organizations; "
                        "the demo needs an empty database"
                    )
                with err.status("seeding demo data") as status:
                    seeded = await seed_demo(
                        session, customers=customers, progress=lambda m: status.update(m)
                    )
                await register_demo_connector(session, desk_folder)
                hook = await register_demo_subscription(session, f"http://127.0.0.1:{hook_port}/")
                hook_secret.append(hook.secret)
                console_login.extend(await create_demo_admin(session, settings.issuer))
            # Planner statistics for the freshly loaded tables: without them PostgreSQL
            # guesses row counts wildly and scans whole tables (autovacuum may be off).
            async with database.engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
            return seeded
        finally:
            await database.dispose()

    credentials = asyncio.run(seed())
    rows = [c.as_json() for c in credentials]
    credentials_out.write_text(json.dumps(rows, indent=2) + "\n")
    credentials_out.chmod(0o600)
    err.print(
        f"seeded {customers} customers; credentials for {len(rows)} clients in "
        f'{credentials_out} (the operator\'s admin client has "role": "admin")'
    )
    _print_walkthrough(settings.issuer, rows)
    print(f"# The support desk's ticket export ({desk_folder}) as feedback (docs/sync.md):")
    print("# the server runs it every minute (HUB_SYNC_WORKER); now, from the shell:")
    print("hub sync run support-desk\n", flush=True)
    print("# acme-distribution's webhooks, sent by the server; in another terminal")
    print("# (docs/deliveries.md; GraphQL admin: docs/sync-admin.md):")
    print(f"hub deliveries receive --port {hook_port} --secret {hook_secret[0]}\n", flush=True)
    print(f"# The console: {settings.issuer}/console (docs/console.md); sign in as")
    print(f"# {console_login[0]} with this password, made for this demo run and shown once:")
    print(f"# {console_login[1]}\n", flush=True)
    if listener is not None:
        print(listen.announcement(host, port), file=sys.stderr, flush=True)
        # log_config=None: uvicorn keeps the logging create_app set up (JSON lines).
        listen.serve_on(
            listener,
            listen.APP_FACTORY,
            log_level="warning",
            access_log=False,
            log_config=None,
        )


def _print_walkthrough(issuer: str, rows: list[dict[str, Any]]) -> None:
    partner = next((r for r in rows if r["kind"] == "distributor"), rows[0])
    auth = shlex.quote(f"{partner['client_id']}:{partner['client_secret']}")
    query = json.dumps(
        {"query": "{ customers(first: 3) { totalCount edges { node { id name company city } } } }"}
    )
    print(f"\n# A token for the distributor {partner['org']}:")
    print(
        f"TOKEN=$(curl -s -u {auth} -d grant_type=client_credentials {issuer}/oauth/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    print("# Its customers:")
    print(
        f'curl -s {issuer}/graphql -H "Authorization: Bearer $TOKEN" '
        f"-H 'Content-Type: application/json' -d {shlex.quote(query)}\n"
    )
    print(f"# GraphiQL: {issuer}/graphql (add the Authorization header)\n", flush=True)


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise _fail(f"--jwks: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise _fail(f"--jwks: {path} is not UTF-8 text: give the client's JWKS (JSON)") from None
    except json.JSONDecodeError as error:
        raise _fail(f"--jwks: {path} is not JSON ({error})") from None
    try:
        return validate_client_jwks(document)
    except ClientKeysError as error:
        raise _fail(f"--jwks: {error}") from None


def _run_db(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on the configured database."""

    async def run() -> T:
        database = Database(make_engine(settings.database_url))
        try:
            async with database.transaction() as session:
                return await work(session)
        except UnknownClientError as error:
            raise _fail(str(error)) from None
        finally:
            await database.dispose()

    return asyncio.run(run())


@clients_app.command("create")
def clients_create(
    org: Annotated[str, typer.Option(help="Slug of the client's organization")],
    scopes: Annotated[str, typer.Option(help='Space-separated scopes, e.g. "customers:read"')],
    name: Annotated[str | None, typer.Option(help="A label for the client")] = None,
    jwks: Annotated[
        Path | None,
        typer.Option(help="The client's public JWKS file: it authenticates with private_key_jwt"),
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(help="client_credentials (default) or authorization_code (staff sign-in)"),
    ] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="A redirect URI of an authorization_code client (repeatable)"),
    ] = None,
    public: Annotated[
        bool, typer.Option(help="authorization_code client without a secret (auth method none)")
    ] = False,
) -> None:
    """Register a client; prints its id and (once) its secret as JSON."""
    settings = _settings()
    grants = set(grant or ["client_credentials"])
    if not grants <= {"client_credentials", "authorization_code"} or len(grants) != 1:
        raise _fail("--grant: choose one of client_credentials, authorization_code")
    code_client = grants == {"authorization_code"}
    if not code_client and (redirect_uri or public):
        raise _fail("--redirect-uri and --public need --grant authorization_code")
    if code_client and jwks is not None:
        raise _fail("--jwks is for client_credentials clients")
    try:
        scope_list = parse_scopes(scopes)
    except UnknownScopeError as error:
        raise _fail(f"--scopes: {error}") from None
    public_keys = None if jwks is None else _read_jwks(jwks)

    async def create(session: AsyncSession) -> dict[str, Any]:
        found = await session.execute(select(Organization).where(col(Organization.slug) == org))
        organization = found.scalar_one_or_none()
        if organization is None:
            raise _fail(f"--org: no organization with slug {org!r}")
        label = name or f"{org} client"
        try:
            check_grantable(organization.kind, scope_list)
        except ScopeNotGrantableError as error:
            raise _fail(f"--scopes: {error}") from None
        if code_client:
            try:
                client, secret = await create_code_client(
                    session,
                    organization=organization,
                    name=label,
                    scopes=scope_list,
                    redirect_uris=redirect_uri or [],
                    public=public,
                )
            except RedirectUriError as error:
                raise _fail(f"--redirect-uri: {error}") from None
            auth = "none" if secret is None else "client_secret_basic"
            method: dict[str, Any] = {
                "token_endpoint_auth_method": auth,
                "redirect_uris": client.redirect_uris,
            }
            if secret is not None:
                method["client_secret"] = secret
        elif public_keys is not None:
            client = await create_key_client(
                session, organization=organization, name=label, scopes=scope_list, jwks=public_keys
            )
            method = {"token_endpoint_auth_method": "private_key_jwt"}
        else:
            client, secret = await create_client(
                session, organization=organization, name=label, scopes=scope_list
            )
            method = {"client_secret": secret}
        await _audit(
            session,
            "client.register",
            f"client:{client.client_id}",
            {
                "organization": org,
                "scopes": client.scopes,
                "auth": method.get("token_endpoint_auth_method", "client_secret_basic"),
            },
        )
        return {"client_id": client.client_id, **method, "org": org, "scopes": client.scopes}

    print(json.dumps(_run_db(settings, create), indent=2))


@clients_app.command("rotate")
def clients_rotate(
    client_id: Annotated[str, typer.Argument(help="The client's id")],
    overlap: Annotated[
        int, typer.Option(min=0, help="Seconds the previous secret keeps working")
    ] = DEFAULT_ROTATION_OVERLAP,
) -> None:
    """Issue a new secret (printed once as JSON); the old one works until the overlap ends."""
    settings = _settings()

    async def rotate(session: AsyncSession) -> dict[str, Any]:
        client, secret = await rotate_secret(session, client_id, overlap=overlap)
        until = client.previous_secret_expires_at
        await _audit(
            session,
            "client.rotate_secret",
            f"client:{client.client_id}",
            {"previous_valid_until": until},
        )
        return {
            "client_id": client.client_id,
            "client_secret": secret,
            "previous_secret_valid_until": None if until is None else until.isoformat(),
        }

    print(json.dumps(_run_db(settings, rotate), indent=2))


@clients_app.command("disable")
def clients_disable(client_id: Annotated[str, typer.Argument(help="The client's id")]) -> None:
    """Disable a client: no new tokens; its tokens stop within HUB_CLIENT_CACHE_TTL."""
    settings = _settings()

    async def disable(session: AsyncSession) -> str:
        done = (await disable_client(session, client_id)).client_id
        await _audit(session, "client.disable", f"client:{done}", {})
        return done

    err.print(f"disabled {_run_db(settings, disable)}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new current signing key; retire keys no unexpired token can still need."""
    settings = _settings()
    lifetime = settings.access_token_ttl

    async def rotate(session: AsyncSession) -> dict[str, Any]:
        done = await rotate_signing_keys(session, settings.master_key, max_token_lifetime=lifetime)
        await _audit(
            session,
            "keys.rotate",
            f"signing_key:{done.new_kid}",
            {"published": done.published, "retired": done.retired},
        )
        return {"current": done.new_kid, "published": done.published, "retired": done.retired}

    print(json.dumps(_run_db(settings, rotate), indent=2))


def _show_progress(step: ResealProgress) -> None:
    err.print(f"{step.done}/{step.total} values sealed ({step.column})")


async def _seal_legacy(settings: Settings, database: Database) -> None:
    """Seal email/phone values left in clear by a database older than encryption at rest."""
    delay = activation_delay(settings.key_refresh_interval)
    done = await seal_legacy(
        database, settings.master_key, activation_delay=delay, progress=_show_progress
    )
    if done.resealed:
        err.print(f"sealed {done.resealed} sensitive values stored in clear")
    if done.unreadable:
        err.print(
            f"[yellow]warning:[/yellow] {done.unreadable} sensitive values are under data keys "
            "this database does not hold, or do not open; they were left as they are"
        )


@keys_app.command("rotate-data")
def keys_rotate_data(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows re-encrypted per transaction")] = 500,
    max_batches: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after this many batches; rerun to continue"),
    ] = None,
    retire: Annotated[
        bool,
        typer.Option(help="After a complete pass, delete the old data keys no value uses"),
    ] = False,
) -> None:
    """Re-encrypt sensitive fields under a new data key, in batches, while the hub serves.

    The new key is used once every replica has loaded it (twice HUB_KEY_REFRESH_INTERVAL);
    old keys stay so reads never fail. Rerunning an interrupted rotation continues it.
    """
    settings = _settings()

    async def run() -> dict[str, Any]:
        database = Database(make_engine(settings.database_url))
        try:
            done = await rotate_data_key(
                database,
                settings.master_key,
                refresh_interval=settings.key_refresh_interval,
                batch_size=batch_size,
                max_batches=max_batches,
                retire=retire,
                progress=_show_progress,
                say=err.print,
            )
            report = {
                "active": done.kid,
                "created": done.created,
                "resealed": done.resealed,
                "unreadable": done.unreadable,
                "remaining": done.remaining,
                "complete": done.complete,
                "retired": done.retired,
            }
            async with database.transaction() as session:
                await _audit(session, "keys.rotate_data", f"data_key:{done.kid}", report)
            return report
        except DataKeyRotationError as error:
            raise _fail(str(error)) from None
        finally:
            await database.dispose()

    report = asyncio.run(run())
    if report["remaining"]:
        err.print(
            f"{report['remaining']} values are not under the new key yet: "
            "rerun `hub keys rotate-data` to continue"
        )
    print(json.dumps(report, indent=2))


async def _audit(session: AsyncSession, action: str, target: str, details: dict[str, Any]) -> None:
    """Audit an administrative change made from the shell, in its transaction."""
    await audit.append(session, audit.shell_entry(action, target, details))


def main() -> None:
    """The ``hub`` entry point: every failure ends as one line on stderr (hub.cli_errors)."""
    run(app)
