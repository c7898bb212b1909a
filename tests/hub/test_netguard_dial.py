"""The SSRF guard of the subgraph client's connections (:func:`hub.netguard.guarded_dial`):
only checked addresses are connected to, address literals included, the address connected
to is the one checked, plain http only to loopback; and the client built on it follows no
redirects and reads no more than its limit. Against a real server (aiohttp's) on
127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

import connectors.subgraph
from connectors._http1 import Http1Client
from connectors.subgraph import SubgraphClient, SubgraphError
from hub.netguard import NetPolicy, Resolver, guarded_dial


@dataclass
class Peer:
    """A local HTTP server: what it answers, and every request it received."""

    port: int
    hosts: list[str] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    answer: web.StreamResponse | None = None

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/graphql"


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    found = Peer(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        found.hosts.append(request.host)
        found.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        if found.answer is not None:
            return found.answer
        return web.json_response({"data": {"ok": True}})

    app = web.Application()
    app.router.add_route("*", "/graphql", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    try:
        yield found
    finally:
        await runner.cleanup()


def resolver_of(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return table.get(host, [])

    return resolve


async def post(url: str, policy: NetPolicy, resolver: Resolver | None = None) -> int:
    dial = guarded_dial(url, policy) if resolver is None else guarded_dial(url, policy, resolver)
    http = Http1Client(url, dial, limit_bytes=1000)
    try:
        return (await http.post(b"{}", {"Content-Type": "application/json"})).status
    finally:
        await http.aclose()


async def test_a_loopback_literal_is_refused_by_default_and_nothing_connects(peer: Peer) -> None:
    with pytest.raises(OSError, match="resolves to a loopback address, which is not allowed"):
        await post(peer.url(), NetPolicy())
    assert peer.hosts == []


async def test_a_name_resolving_to_the_metadata_service_is_refused(peer: Peer) -> None:
    resolver = resolver_of({"meta.example.test": ["169.254.169.254"]})
    with pytest.raises(OSError, match="link-local"):
        await post(peer.url("meta.example.test"), NetPolicy(allow_loopback=True), resolver)


async def test_a_name_with_one_private_address_among_public_ones_is_refused(peer: Peer) -> None:
    resolver = resolver_of({"mixed.example.test": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(OSError, match="private or reserved"):
        await post(peer.url("mixed.example.test", "https"), NetPolicy(), resolver)


async def test_the_checked_address_is_the_one_connected_to(peer: Peer) -> None:
    # The name resolves (once, through the guard) to the local server; the request keeps
    # the name in its Host header.
    resolver = resolver_of({"loyalty.example.test": ["127.0.0.1"]})
    url = peer.url("loyalty.example.test")
    assert await post(url, NetPolicy(allow_loopback=True), resolver) == 200
    assert peer.hosts == [f"loyalty.example.test:{peer.port}"]


async def test_plain_http_to_a_public_address_is_refused_at_the_socket() -> None:
    resolver = resolver_of({"public.example.test": ["93.184.216.34"]})
    with pytest.raises(OSError, match="public address over http"):
        await post("http://public.example.test:9/graphql", NetPolicy(allow_loopback=True), resolver)


async def test_an_allowed_network_is_connected_to(peer: Peer) -> None:
    # 127.0.0.0/8 allowed explicitly (as an operator would allow 10.1.2.0/24).
    policy = NetPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert await post(peer.url(scheme="http"), policy) == 200


def client(peer: Peer) -> SubgraphClient:
    url = peer.url()
    return SubgraphClient(url, timeout=2.0, dial=guarded_dial(url, NetPolicy(allow_loopback=True)))


async def test_the_subgraph_client_follows_no_redirect(peer: Peer) -> None:
    peer.answer = web.Response(status=302, headers={"Location": "http://169.254.169.254/"})
    subgraph = client(peer)
    try:
        with pytest.raises(SubgraphError, match="answered HTTP 302"):
            await subgraph.query("{ ok }")
    finally:
        await subgraph.aclose()
    assert len(peer.hosts) == 1


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_subgraph_client_reads_no_more_than_its_limit(
    peer: Peer, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(connectors.subgraph, "MAX_BODY", 1000)
    body = b'{"data": {"ok": "' + b"x" * 5000 + b'"}}'
    # With a length over the limit, and without a length (chunked).
    peer.answer = _chunked(body) if chunked else web.Response(body=body)
    subgraph = client(peer)
    try:
        with pytest.raises(SubgraphError, match="over 1000 bytes"):
            await subgraph.query("{ ok }")
    finally:
        await subgraph.aclose()


def _chunked(body: bytes) -> web.StreamResponse:
    response = web.Response(body=body)
    response.enable_chunked_encoding()
    return response


async def test_the_subgraph_client_answers_and_keeps_its_connection(peer: Peer) -> None:
    subgraph = client(peer)
    try:
        assert await subgraph.query("{ ok }") == {"ok": True}
        assert await subgraph.query("{ ok }") == {"ok": True}
    finally:
        await subgraph.aclose()
    assert len(peer.peers) == 2 and peer.peers[0] == peer.peers[1]  # one connection


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("served", ["loyalty.example.test", "other.example.test"])
async def test_https_verifies_the_certificate_for_the_name_over_the_checked_address(
    tmp_path: Path, served: str
) -> None:
    # The server on 127.0.0.1 presents a certificate for `served`; the client asks for
    # loyalty.example.test (resolved through the guard) and trusts that certificate.
    cert, key = _certificate(tmp_path, served)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    hosts: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hosts.extend(line for line in head.split(b"\r\n") if line.startswith(b"Host:"))
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_tls)
    port = listening.sockets[0].getsockname()[1]
    url = f"https://loyalty.example.test:{port}/graphql"
    trust = ssl.create_default_context(cafile=str(cert))
    policy = NetPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    resolver = resolver_of({"loyalty.example.test": ["127.0.0.1"]})
    http = Http1Client(url, guarded_dial(url, policy, resolver, tls=trust), limit_bytes=100)
    try:
        if served == "loyalty.example.test":
            answer = await http.post(b"{}", {"Content-Type": "application/json"})
            assert (answer.status, answer.body) == (200, b"{}")
            assert hosts == [f"Host: loyalty.example.test:{port}".encode()]
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                await http.post(b"{}", {"Content-Type": "application/json"})
            assert hosts == []
    finally:
        await http.aclose()
        listening.close()
