"""Settings from HUB_* variables: a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HUB_* variable from the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HUB_DATABASE_URL", "mysql://root@localhost/hub"),
        ("HUB_DATABASE_URL", "postgresql://postgres@localhost/hub"),
        ("HUB_DATABASE_URL", "sqlite:///hub.db"),
        ("HUB_ISSUER", "hub.example.com"),
        ("HUB_ISSUER", "ftp://hub.example.com"),
        ("HUB_ISSUER", "https://hub.example.com/?tenant=a"),
        ("HUB_ISSUER", "https://hub.example.com/#top"),
        ("HUB_ISSUER", "https://"),
        ("HUB_MAX_DEPTH", "0"),
        ("HUB_MAX_DEPTH", "-3"),
        ("HUB_MAX_DEPTH", "deep"),
        ("HUB_MAX_ALIASES", "0"),
        ("HUB_MAX_BODY_BYTES", "0"),
        ("HUB_ACCESS_TOKEN_TTL", "0"),
        ("HUB_CLIENT_CACHE_TTL", "-1"),
        ("HUB_LOG_LEVEL", "LOUD"),
        ("HUB_GRAPHIQL", "perhaps"),
    ],
)
def test_bad_value_raises_settings_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    message = str(raised.value)
    assert variable in message
    assert "Traceback" not in message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("HUB_MAX_DEPTH", "0")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert "HUB_DATABASE_URL" in str(raised.value)
    assert "HUB_MAX_DEPTH" in str(raised.value)


def test_a_cost_limit_past_the_client_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operation costing more than a client's whole budget could never run (429 after
    every wait): the two settings are refused together at start-up."""
    monkeypatch.setenv("HUB_GRAPHQL_COST_PER_CLIENT", "1000")
    monkeypatch.setenv("HUB_MAX_COST", "1001")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert "HUB_MAX_COST" in str(raised.value)
    assert "HUB_GRAPHQL_COST_PER_CLIENT (1000)" in str(raised.value)
    monkeypatch.setenv("HUB_MAX_COST", "1000")
    assert load_settings().max_cost == 1000


def test_database_url_error_does_not_echo_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", "mysql://admin:hunter2-secret@db.internal/hub")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert "hunter2-secret" not in str(raised.value)


def test_good_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql+asyncpg://hub@db/hub")
    monkeypatch.setenv("HUB_ISSUER", "https://hub.example.com/")
    monkeypatch.setenv("HUB_MAX_DEPTH", "7")
    monkeypatch.setenv("HUB_LOG_LEVEL", "debug")

    settings = load_settings()

    assert settings.database_url == "postgresql+asyncpg://hub@db/hub"
    assert settings.issuer == "https://hub.example.com"  # trailing slash dropped
    assert settings.token_audience == "https://hub.example.com"
    assert settings.max_depth == 7
    assert settings.log_level == "DEBUG"
    assert not settings.is_sqlite


def test_audience_defaults_to_the_issuer_and_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ISSUER", "https://hub.example.com")
    assert load_settings().token_audience == "https://hub.example.com"
    monkeypatch.setenv("HUB_AUDIENCE", "https://api.example.com")
    assert load_settings().token_audience == "https://api.example.com"


@pytest.mark.parametrize("value", ["too-short", " " * 10])
def test_short_secret_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HUB_SECRET_KEY", value)
    settings = load_settings()

    with pytest.raises(SettingsError, match="HUB_SECRET_KEY"):
        _ = settings.master_key


def test_missing_secret_key_and_key_file_names_the_variable(tmp_path: Path) -> None:
    settings = load_settings(secret_key_file=tmp_path / "absent.key")

    with pytest.raises(SettingsError, match="HUB_SECRET_KEY"):
        _ = settings.master_key


def test_secret_key_is_not_shown_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-" + "k" * 40
    monkeypatch.setenv("HUB_SECRET_KEY", secret)
    settings = load_settings()

    assert settings.master_key == secret.encode()
    assert secret not in repr(settings)
    assert secret not in str(settings)
