"""The blind indexes an import looks its customers up by are remembered from batch to
batch (hub.sync.feedback._Indexes): the vault's own, made once per value and index key."""

from __future__ import annotations

import pytest

from hub.db import Database
from hub.sync.feedback import _Indexes
from hub.vault import email_index, phone_index, vault


async def test_an_index_is_the_vault_s_made_once_per_value_and_key(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    del db  # a database's data keys loaded in the vault
    made: list[str] = []

    def counted(value: str) -> str | None:
        made.append(value)
        return email_index(value)

    indexes = _Indexes()
    first = indexes.of(counted, " Ann@Example.com")
    assert first == email_index(" Ann@Example.com") == email_index("ann@example.com")
    assert indexes.of(counted, " Ann@Example.com") == first
    assert made == [" Ann@Example.com"]
    # Emails and phones are kept apart, and no index is "".
    assert indexes.of(phone_index, "+14155552671") == phone_index("+14155552671")
    assert indexes.of(lambda _: None, "x") == ""
    # Another key (another database's vault): made again, under it.
    monkeypatch.setattr(vault, "index_key", b"k" * 32)
    again = indexes.of(counted, " Ann@Example.com")
    assert again != first and again == email_index(" Ann@Example.com")
    assert made == [" Ann@Example.com"] * 2


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Indexes, "LIMIT", 3)
    indexes = _Indexes()
    for n in range(10):
        assert indexes.of(str.upper, f"v{n}") == f"V{n}"
        assert len(indexes.found) <= 3
