"""Settings from ``HUB_*`` environment variables.

A bad value stops start-up with :class:`SettingsError`, whose message names the variable
and what is wrong with it, instead of a pydantic traceback.
"""

from __future__ import annotations

import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./hub.db"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


PositiveInt = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    """Every knob of the hub. Read once at start-up; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    issuer: str = "http://127.0.0.1:8000"
    audience: str | None = None
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path("./hub-secret.key")

    access_token_ttl: PositiveInt = 900
    # Staff sessions (authorization code grant): a refresh-token family lives this long.
    refresh_token_ttl: PositiveInt = 8 * 3600
    graphiql: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # Freeze the start-up heap and collect young objects less often (hub.heap): for a
    # server process; off where one process starts many apps (the test suite).
    gc_tuning: bool = True
    expose_sql_count: bool = False
    client_cache_ttl: float = Field(default=5.0, ge=0)
    # Verified access tokens remembered by hash (hub.oauth.verified_tokens): at most this
    # many seconds and never past exp, at most this many tokens; 0 seconds turns it off.
    # Revocation and disabled clients are still checked on every request.
    access_token_cache_ttl: float = Field(default=60.0, ge=0)
    access_token_cache_size: PositiveInt = 10_000
    db_pool_size: PositiveInt = 20
    # How often each replica re-reads shared OAuth state (DESIGN §6): revoked token ids
    # and the signing key ring; a revocation or key rotation reaches every replica within.
    revocation_refresh_interval: float = Field(default=2.0, gt=0)
    key_refresh_interval: float = Field(default=5.0, gt=0)
    # How often each replica checks for a newly published sharing-policy version.
    policy_refresh_interval: float = Field(default=2.0, gt=0)

    # Token endpoint rate limits (hub.oauth.ratelimit): requests per window of
    # token_rate_window seconds; counted in Redis when redis_url is set, else in memory.
    token_rate_per_client: PositiveInt = 600
    token_rate_per_address: PositiveInt = 1200
    token_rate_window: PositiveInt = 60
    redis_url: str | None = None
    rate_limit_prefix: str = "hub:ratelimit:"
    # Failed client authentications per window (hub.oauth.ratelimit.FailureLimiter): a
    # small budget per (client, address), a larger one per client that does not block
    # addresses where the client authenticated within token_known_address_ttl seconds.
    token_failures_per_client_address: PositiveInt = 10
    token_failures_per_client: PositiveInt = 100
    token_failure_backoff_max: PositiveInt = 3600
    token_known_address_ttl: PositiveInt = 7 * 86_400
    # private_key_jwt: also accept the token endpoint URL as the assertion's aud (legacy
    # clients; draft-ietf-oauth-rfc7523bis wants the issuer identifier only).
    assertion_accept_token_endpoint_aud: bool = False

    # GraphQL rate limit (hub.cost_budget): each request spends its operation's cost
    # (schema.limits.operation_cost) from its client's budget per graphql_rate_window
    # seconds; counted with the token limits (in Redis when redis_url is set).
    graphql_cost_per_client: PositiveInt = 6_000_000
    graphql_rate_window: PositiveInt = 60

    # Operation limits (DESIGN §7; CHECKLIST "resource consumption").
    max_depth: PositiveInt = 10
    max_aliases: PositiveInt = 30
    max_root_fields: PositiveInt = 20
    max_tokens: PositiveInt = 2000
    max_directives_per_field: PositiveInt = 4
    # The static cost of an operation (schema.limits.operation_cost): 1 per field, what a
    # paged field selects times its page size.
    max_cost: PositiveInt = 300_000
    max_document_bytes: PositiveInt = 20_000
    max_body_bytes: PositiveInt = 100_000
    # Nesting of the request's JSON, checked before parsing (schema.input_guard).
    max_json_depth: PositiveInt = 64
    max_page_size: PositiveInt = 100
    default_page_size: PositiveInt = 20
    # Queries the compiled path covers skip field-by-field resolution (schema.compiled,
    # DESIGN §11); off answers every operation on the resolver path.
    compiled_reads: bool = True
    # Compiled reads answered by one SQL statement per root field where the plan allows
    # (PostgreSQL; schema.compiled.sql), else from the access module's records.
    compiled_sql: bool = True

    # Partner read disclosures (hub.disclosures, docs/audit.md): recorded in the audit log
    # by a background writer every audit_flush_interval seconds or audit_batch_size reads;
    # what is pending when a process dies (at most one interval's reads) is lost.
    audit_reads: bool = True
    audit_flush_interval: float = Field(default=0.5, gt=0, le=60)
    audit_batch_size: PositiveInt = 200
    # Seconds outbox events are kept (hub.outbox.prune), never past the slowest reader.
    outbox_retention: PositiveInt = 7 * 86_400
    # Seconds an inbound webhook's id is remembered (hub.sync.inbound.prune): a retry
    # arriving later is stored again, so keep it past every sender's retry schedule
    # (Standard Webhooks senders retry for days, re-signing each attempt).
    webhook_event_retention: PositiveInt = 7 * 86_400
    # Seconds a sync run's record is kept (hub.sync.runs.prune): each connector's last
    # run, and runs a dead letter, checkpoint or remembered webhook id names, stay.
    sync_run_retention: PositiveInt = 30 * 86_400
    # Inbound webhooks (hub.sync.inbound_limits): messages, and refused messages, per
    # source address per webhook_rate_window seconds; counted with the token limits.
    webhook_rate_per_address: PositiveInt = 1200
    webhook_failures_per_address: PositiveInt = 30
    webhook_rate_window: PositiveInt = 60

    # Background work in the server (hub.workers, docs/sync-admin.md): the sync scheduler
    # (connectors with a schedule, checked every sync_worker_tick seconds) and the
    # outbound delivery worker run in each replica's lifespan; off, run `hub sync worker`
    # and `hub deliveries worker` beside the servers. Leases keep either safe on many.
    sync_worker: bool = False
    sync_worker_tick: float = Field(default=5.0, gt=0, le=3600)

    # Prometheus metrics at GET /metrics (hub.metrics); a bearer token is required there
    # when metrics_token is set.
    metrics: bool = True
    metrics_token: SecretStr | None = None

    # Whose contribution to a customer field wins (hub.provenance): JSON, e.g.
    # {"*": ["operator", "department", "partner"], "lifecycle_stage": ["operator", "partner"]}.
    source_precedence: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split('://', 1)[0]}://)"
            )
        try:
            port = make_url(value).port
        except ValueError:
            port = 0
        if port is not None and not 0 < port < 65536:
            raise ValueError("has a port that is not a number from 1 to 65535")
        return value

    @field_validator("max_cost")
    @classmethod
    def _within_the_budget(cls, value: int, info: ValidationInfo) -> int:
        # An operation costing more than a client's whole budget could never run: 429
        # with a Retry-After, after every wait. (graphql_cost_per_client is validated
        # before; absent from info.data when it was itself refused.)
        budget = info.data.get("graphql_cost_per_client")
        if budget is not None and value > budget:
            raise ValueError(
                f"is more than HUB_GRAPHQL_COST_PER_CLIENT ({budget}): an operation "
                "costing between the two could never run; raise the budget or lower the limit"
            )
        return value

    @field_validator("issuer")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL with a host")
        if parts.query or parts.fragment or "#" in value or "?" in value:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("source_precedence")
    @classmethod
    def _precedence(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from hub.provenance import validate_config

        validate_config(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but short (or empty) would guard the scrape with a guessable token.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset it)")
        return value

    @property
    def token_audience(self) -> str:
        """The ``aud`` the hub puts in and requires of its access tokens."""
        return self.audience or self.issuer

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def master_key(self) -> bytes:
        """The hub's own secret: ``HUB_SECRET_KEY`` or the key file ``hub init`` wrote."""
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value().encode()
        elif self.secret_key_file.exists():
            try:
                raw = self.secret_key_file.read_bytes().strip()
            except OSError as error:
                raise SettingsError(
                    f"cannot read the key file {self.secret_key_file} ({error.strerror}): "
                    "fix its permissions, or set HUB_SECRET_KEY_FILE or HUB_SECRET_KEY"
                ) from None
        else:
            raise SettingsError(
                f"HUB_SECRET_KEY is not set and the key file {self.secret_key_file} does not "
                "exist: run `hub init` or set HUB_SECRET_KEY"
            )
        if len(raw) < 32:
            raise SettingsError("HUB_SECRET_KEY must be at least 32 characters")
        return raw


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, raising :class:`SettingsError` on bad input."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field, *inner = item["loc"]
            name = f"HUB_{str(field).upper()}"
            if inner:  # inside a JSON value, e.g. HUB_SOURCE_PRECEDENCE at *.0
                name += " at " + ".".join(str(part) for part in inner)
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise SettingsError(_one_line(problems)) from None
    except SourceError as error:
        # A complex value (JSON) that does not parse fails before validation.
        found = re.search(r'field "(\w+)"', str(error))
        name = f"HUB_{found.group(1).upper()}" if found else "a HUB_* variable"
        detail = f" ({error.__cause__})" if error.__cause__ is not None else ""
        raise SettingsError(_one_line([f"{name}: not valid JSON{detail}"])) from None


def _one_line(problems: list[str]) -> str:
    if len(problems) == 1:
        return f"invalid setting {problems[0]}; fix or unset it"
    return f"invalid settings {'; '.join(problems)}; fix or unset them"


def write_secret_key_file(path: Path) -> bool:
    """Create a random key file readable only by its owner; False if it already exists."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(48) + "\n")
    path.chmod(0o600)
    return True
