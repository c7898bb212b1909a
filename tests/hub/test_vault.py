"""The sealed-value format: column binding, tampering, unknown keys, blind indexes.

A :class:`Vault` of the test's own stands in for the process's, so nothing here depends
on which database the suite opened last.
"""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.models._sealed import (
    SealedValueError,
    UnknownDataKeyError,
    Vault,
    VaultNotLoadedError,
    looks_sealed,
    normalise_email,
)

MASTER = b"m" * 32
KID = "0123456789abcdef"
SEALED = re.compile(r"^0123456789abcdef\.[A-Za-z0-9_-]+={0,2}$")


@pytest.fixture
def vault() -> Vault:
    v = Vault()
    v.install(MASTER, {KID: AESGCM.generate_key(bit_length=256)}, KID)
    return v


def test_a_sealed_value_names_its_key_and_opens(vault: Vault) -> None:
    token = vault.seal("ada@example.org", "customer.email")
    assert SEALED.match(token)
    assert "ada" not in token
    assert vault.key_id(token) == KID
    assert vault.open(token, "customer.email") == "ada@example.org"
    # A fresh nonce each time: equal values are not equal ciphertexts.
    assert vault.seal("ada@example.org", "customer.email") != token


def test_a_ciphertext_copied_into_another_column_does_not_open(vault: Vault) -> None:
    email = vault.seal("+14155552671", "customer.email")
    with pytest.raises(SealedValueError, match=r"customer\.phone value .* does not open"):
        vault.open(email, "customer.phone")


@pytest.mark.parametrize("position", [17, 30, -2])
def test_tampering_is_detected(vault: Vault, position: int) -> None:
    token = vault.seal("ada@example.org", "customer.email")
    flipped = "B" if token[position] != "B" else "C"
    altered = token[:position] + flipped + token[position + 1 :]
    with pytest.raises(SealedValueError, match="altered"):
        vault.open(altered, "customer.email")


def test_a_truncated_value_is_refused(vault: Vault) -> None:
    short = f"{KID}." + base64.urlsafe_b64encode(b"x" * 20).decode()
    with pytest.raises(SealedValueError, match="truncated"):
        vault.open(short, "customer.email")


def test_an_unknown_key_is_named_and_asks_for_a_reload(vault: Vault) -> None:
    other = Vault()
    other.install(
        MASTER, {"fedcba9876543210": AESGCM.generate_key(bit_length=256)}, "fedcba9876543210"
    )
    token = other.seal("ada@example.org", "customer.email")
    assert not vault.stale
    with pytest.raises(UnknownDataKeyError, match=r"data key 'fedcba9876543210'.*not loaded"):
        vault.open(token, "customer.email")
    assert vault.stale  # the runtime's refresh loop reloads at its next tick


def test_plaintext_left_from_before_encryption_points_to_migrate(vault: Vault) -> None:
    with pytest.raises(SealedValueError, match="hub migrate"):
        vault.open("ada.lovelace@example.org", "customer.email")
    assert not vault.stale


def test_nothing_is_sealed_before_keys_are_loaded() -> None:
    with pytest.raises(VaultNotLoadedError, match="hub init"):
        Vault().seal("x", "customer.email")
    with pytest.raises(VaultNotLoadedError):
        Vault().blind_index("email", "x")


@pytest.mark.parametrize(
    "variant",
    ["Ada.Lovelace@Example.COM", "  ada.lovelace@example.com ", "ADA.LOVELACE@EXAMPLE.COM\t"],
)
def test_email_blind_index_ignores_case_and_surrounding_space(vault: Vault, variant: str) -> None:
    reference = vault.blind_index("email", normalise_email("ada.lovelace@example.com"))
    assert vault.blind_index("email", normalise_email(variant)) == reference
    assert re.fullmatch(r"[0-9a-f]{64}", reference)


def test_blind_index_differs_by_kind_value_and_master_key(vault: Vault) -> None:
    value = "+14155552671"
    assert vault.blind_index("email", value) != vault.blind_index("phone", value)
    assert vault.blind_index("phone", value) != vault.blind_index("phone", "+14155552672")
    other = Vault()
    other.install(b"n" * 32, {KID: AESGCM.generate_key(bit_length=256)}, KID)
    assert other.blind_index("phone", value) != vault.blind_index("phone", value)
    # Data keys rotate, the index key does not: a new data key leaves indexes unchanged.
    rotated = Vault()
    rotated.install(MASTER, {"1" * 16: AESGCM.generate_key(bit_length=256)}, "1" * 16)
    assert rotated.blind_index("phone", value) == vault.blind_index("phone", value)


@pytest.mark.parametrize(
    ("value", "sealed"),
    [
        ("ada@example.org", False),
        ("+14155552671", False),
        ("0123456789abcdef.ada@example.org", False),
        ("0123456789ABCDEF.QUJD", False),
        ("0123456789abcdef.QUJDRA==", True),
    ],
)
def test_legacy_plaintext_is_told_from_ciphertext(value: str, sealed: bool) -> None:
    assert looks_sealed(value) is sealed
