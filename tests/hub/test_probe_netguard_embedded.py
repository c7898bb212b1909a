"""IPv6 addresses that carry an IPv4 one to an IPv4 host are judged by the IPv4 address
they carry: NAT64 (64:ff9b::/96, RFC 6052: an IPv6-only host's gateway translates it,
e.g. a cloud NAT gateway into the private network), 6to4 (2002::/16) and the deprecated
IPv4-compatible form (::a.b.c.d). Python calls all three global whatever they carry, so
``https://[64:ff9b::a00:5]/`` (10.0.0.5) passed the outbound guard."""

from __future__ import annotations

import ipaddress

import pytest

from hub.netguard import NetPolicy, UnsafeURLError, check_url


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} is a literal: nothing to resolve")


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("64:ff9b::a00:5", "private"),  # 10.0.0.5
        ("64:ff9b::a9fe:a9fe", "link-local"),  # 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("2002:c0a8:101::", "private"),  # 6to4 of 192.168.1.1
        ("::127.0.0.1", "loopback"),
        ("::10.1.2.3", "private"),
    ],
)
async def test_an_embedded_ipv4_address_is_judged(host: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError, match=reason):
        await check_url(f"https://[{host}]/hook", NetPolicy(), no_dns)


async def test_a_name_resolving_to_one_is_judged_too() -> None:
    async def dns64(host: str, port: int) -> list[str]:
        return ["64:ff9b::a00:5"]

    with pytest.raises(UnsafeURLError, match="private"):
        await check_url("https://hooks.example.test/hook", NetPolicy(), dns64)


async def test_public_and_allowed_embedded_addresses_pass() -> None:
    # DNS64 synthesises 64:ff9b::<public IPv4> for an IPv4-only host: still reachable.
    assert await check_url("https://[64:ff9b::808:808]/", NetPolicy(), no_dns) == [
        "64:ff9b::808:808"
    ]
    allowed = NetPolicy(allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert await check_url("https://[64:ff9b::a00:5]/", allowed, no_dns)
    # ::1 and :: keep their own meaning (not 0.0.0.1 and 0.0.0.0 carried).
    assert await check_url("https://[::1]/", NetPolicy(allow_loopback=True), no_dns)
    with pytest.raises(UnsafeURLError, match="unspecified"):
        await check_url("https://[::]/", NetPolicy(), no_dns)
