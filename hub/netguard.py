"""Outbound URLs the hub may call, and an HTTP transport that connects only to checked
addresses (OWASP API7, server-side request forgery).

A subscriber's URL is checked when it is registered and again on every connection:

- the scheme is ``https`` (``http`` only to a loopback address, and only when
  :attr:`NetPolicy.allow_loopback` is set: a test receiver on 127.0.0.1);
- no user name or password in it, a host name or address literal, a port in range;
- every address the host resolves to is public (:func:`address_refusal`): loopback,
  private (RFC 1918), shared (RFC 6598), link-local (which holds the cloud metadata
  service, 169.254.169.254), unique-local IPv6 (which holds AWS's fd00:ec2::254),
  multicast, reserved and unspecified addresses are refused, unless a network in
  :attr:`NetPolicy.allowed_networks` holds the address (an explicit operator choice),
  or the address is loopback and :attr:`NetPolicy.allow_loopback` is set. A host with
  one refused address among several is refused: the next lookup could pick that one.

Checking a name and then letting the HTTP client resolve it again would leave the
connection to whatever the second lookup answers (DNS rebinding). :class:`GuardedTransport`
therefore resolves once, checks, and connects to the checked address itself: it is an
``httpx`` transport whose ``httpcore`` network backend (:class:`GuardedBackend`) replaces
``connect_tcp``. The request keeps the name: ``httpcore`` sends it in the ``Host`` header
and uses it for TLS (SNI and certificate verification), so a certificate for the name is
still required. Environment proxies are ignored (``trust_env=False``), since a proxy
would make the connection the guard checked a connection to the proxy.

The remote fields of a partner's page (:mod:`hub.federation`) go through a smaller HTTP/1.1
client instead (:mod:`connectors._http1`, a third of httpx's CPU a call):
:func:`guarded_dial` is the same guard for it (resolve once, check every address, address
literals included, connect to a checked one).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import anyio
import httpcore
import httpx

from hub.errors import BadInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to address texts; the default asks the system resolver."""

MAX_URL_LENGTH = 2000


class UnsafeURLError(BadInputError):
    """An outbound URL the hub refuses to call; the message says why."""


@dataclass(frozen=True)
class NetPolicy:
    """Which destinations outbound calls may reach. The default refuses every
    non-public address and plain ``http``."""

    allow_loopback: bool = False
    """Allow loopback addresses, and ``http`` to them (tests, local development)."""
    allowed_networks: tuple[IPNetwork, ...] = ()
    """Non-public networks explicitly allowed (e.g. a department's tool on 10.1.2.0/24)."""

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives ``host``, in its order."""
    try:
        answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:  # socket.gaierror
        raise UnsafeURLError(f"the host {host!r} does not resolve ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``address`` carries to an IPv4 host, if it does: mapped
    (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d, RFC 6052: a gateway translates it, a
    cloud NAT gateway into the private network), 6to4 (2002:aabb:ccdd::) and the
    deprecated IPv4-compatible form (::a.b.c.d; not :: nor ::1, which mean their own)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, policy: NetPolicy) -> str | None:
    """Why ``address`` may not be connected to under ``policy`` (``None``: it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        # Judged by the IPv4 address it carries: ::ffff:127.0.0.1 is 127.0.0.1, and
        # Python calls NAT64, 6to4 and ::a.b.c.d global whatever they carry, so
        # 64:ff9b::a00:5 (10.0.0.5 behind a NAT64 gateway) passed as public.
        address = _carried(address) or address
    if policy.allows(address):
        return None
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if not address.is_global:
        # RFC 1918, RFC 6598, unique-local IPv6, documentation and reserved ranges.
        return "a private or reserved address"
    return None


def parse_url(url: str, policy: NetPolicy) -> SplitResult:
    """The parts of a well-formed outbound URL (no lookup yet); refuses the rest."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise UnsafeURLError("the URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeURLError(f"the URL is malformed ({error})") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeURLError("the URL must start with https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("the URL must not hold a user name or password")
    if not parts.hostname:
        raise UnsafeURLError("the URL has no host")
    if port == 0:
        raise UnsafeURLError("the URL's port must be between 1 and 65535")
    if parts.scheme == "http" and not policy.allow_loopback:
        raise UnsafeURLError("the URL must start with https://")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def checked_addresses(
    host: str, port: int, policy: NetPolicy, resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses of ``host`` to connect to, all checked; refuses the host if any of
    them is refused (the message names the host and the reason, not the address)."""
    literal = _literal(host)
    texts = [str(literal)] if literal is not None else await resolver(host, port)
    if not texts:
        raise UnsafeURLError(f"the host {host!r} does not resolve")
    addresses: list[str] = []
    for text in texts:
        address = _literal(text.split("%")[0])  # drop an IPv6 zone id
        if address is None:
            raise UnsafeURLError(f"the host {host!r} resolves to something not an address")
        refusal = address_refusal(address, policy)
        if refusal is not None:
            raise UnsafeURLError(f"the host {host!r} resolves to {refusal}, which is not allowed")
        addresses.append(str(address))
    return addresses


async def check_url(url: str, policy: NetPolicy, resolver: Resolver = system_resolver) -> list[str]:
    """Refuse ``url`` unless it is well formed and every address of its host is allowed
    (plain ``http`` only to loopback, when loopback is allowed). Returns the addresses."""
    parts = parse_url(url, policy)
    host = typing.cast(str, parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await checked_addresses(host, port, policy, resolver)
    if parts.scheme == "http" and not all(_is_loopback(a) for a in addresses):
        raise UnsafeURLError("the URL must start with https:// (http only to loopback)")
    return addresses


def _is_loopback(text: str) -> bool:
    address = _literal(text)
    return address is not None and address.is_loopback


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An ``httpcore`` network backend that resolves a host once, checks every address
    (:func:`checked_addresses`) and connects to a checked one (the next on failure)."""

    def __init__(
        self,
        policy: NetPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(host, port, self.policy, self.resolver)
        except UnsafeURLError as error:
            # httpx reports a ConnectError; the message says what was refused.
            raise httpcore.ConnectError(str(error)) from None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure or httpcore.ConnectError(f"no address to connect to for {host!r}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls never use a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` connecting through :class:`GuardedBackend`.

    Example::

        transport = GuardedTransport(NetPolicy())
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as http:
            await http.post("https://hooks.example.com/in", content=b"{}")
    """

    def __init__(
        self,
        policy: NetPolicy,
        resolver: Resolver = system_resolver,
        *,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, keepalive_expiry=30.0)
        super().__init__(trust_env=False, limits=limits)
        # httpx builds its pool without a network backend argument; this one is the
        # same pool with the guarded backend (the documented httpcore extension point).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver),
        )


# the subgraph client -------------------------------------------------------------------
# The remote fields of a partner's page are fetched inside the request (hub.federation),
# where httpx's layers cost about 0.6 ms of CPU a call and aiohttp's about 0.5 in the
# server (docs/federation.md): the subgraph client is a small HTTP/1.1 client
# (connectors._http1) that opens its connections through this dial.


Dial = Callable[
    [Callable[[], asyncio.Protocol]], Awaitable[tuple[asyncio.BaseTransport, asyncio.Protocol]]
]
"""What :class:`connectors._http1.Http1Client` opens its connections with."""


def guarded_dial(
    url: str,
    policy: NetPolicy,
    resolver: Resolver = system_resolver,
    *,
    tls: ssl.SSLContext | None = None,
) -> Dial:
    """The connections of a :class:`connectors._http1.Http1Client` to ``url``: the host
    resolved once and every address checked (:func:`checked_addresses`), address literals
    included; a plain ``http`` URL connects to loopback only; the connection is made to
    the checked address, with TLS for ``https`` (the name kept for SNI and the
    certificate; ``tls``: the context, the system's trust store by default). A refusal is
    an ``OSError`` (``EACCES``) saying what was refused.

    Example::

        dial = guarded_dial(url, NetPolicy())
        client = Http1Client(url, dial, limit_bytes=2**24)
    """
    parts = urlsplit(url)
    host = typing.cast(str, parts.hostname)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    context = (tls or ssl.create_default_context()) if https else None

    async def dial(
        factory: Callable[[], asyncio.Protocol],
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        try:
            addresses = await checked_addresses(host, port, policy, resolver)
        except UnsafeURLError as error:
            raise OSError(errno.EACCES, str(error)) from None
        if not https and not all(_is_loopback(a) for a in addresses):
            raise OSError(
                errno.EACCES, "the connection to a public address over http is not allowed"
            )
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for address in addresses:
            try:
                return await loop.create_connection(
                    factory,
                    address,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
            except OSError as error:
                failure = error
        raise failure or OSError(errno.EHOSTUNREACH, f"no address to connect to for {host!r}")

    return dial
