"""Where the hub listens: a port checked before a first run touches anything, and the URL
announced once serving starts (``hub demo``, ``hub serve``).

``hub demo`` replaces ``./hub.db`` and ``demo-credentials.json``; finding the port busy only
when uvicorn binds it would have destroyed both for nothing. :func:`reserve` binds the
port first and keeps it: the demo seeds, then serves on that very socket
(:func:`serve_on`), so no other process can take the port in between.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

GRAPHQL_PATH = "/graphql"
# The app factory uvicorn imports and calls (``hub serve``, ``hub demo``): the hub names the
# app layer by this string only, so no hub module imports ``app`` (imports flow app -> hub).
APP_FACTORY = "app:create_app"
# The addresses meaning "every interface": not one a browser can open.
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


class PortInUseError(Exception):
    """The address to listen on is taken or cannot be bound; the message says what to do."""


def _family(host: str) -> socket.AddressFamily:
    # As uvicorn decides: a colon means an IPv6 address.
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reserve(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` and listen on it now; return the socket.

    ``SO_REUSEADDR`` as uvicorn sets it: connections of a previous run still in TIME_WAIT
    do not make the port busy, a process listening on it does. Listening at once is what
    holds the port (two sockets with ``SO_REUSEADDR`` may both bind it until one listens);
    connections made before serving starts wait in the backlog. Raises
    :class:`PortInUseError` naming the address.
    """
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as error:
        sock.close()
        where = _address(host, port)
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"{where} is already in use; stop what listens there or choose another "
                "port with --port"
            ) from None
        if isinstance(error, socket.gaierror):
            raise PortInUseError(
                f"cannot listen on {where}: unknown host {host!r}; use an address of this "
                "machine with --host"
            ) from None
        reason = error.strerror or str(error)
        raise PortInUseError(
            f"cannot listen on {where} ({reason}); choose another --host or --port"
        ) from None
    return sock


def check_free(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` unless ``host:port`` can be bound right now."""
    reserve(host, port).close()


def url(host: str, port: int) -> str:
    """The base URL of a server bound to ``host:port`` (for a wildcard, which a browser
    cannot open, the loopback address, as the default issuer has it)."""
    return f"http://{_address('127.0.0.1' if host in _WILDCARDS else host, port)}"


def announcement(host: str, port: int) -> str:
    """The line printed when serving starts."""
    everywhere = "; listening on every interface" if host in _WILDCARDS else ""
    return f"Serving Partner Hub on {url(host, port)} (GraphQL at {GRAPHQL_PATH}{everywhere})"


def serve_on(listener: socket.socket, factory: str, **options: Any) -> None:
    """Serve the ASGI app that ``factory`` (an import string such as :data:`APP_FACTORY`)
    builds, with uvicorn on the socket :func:`reserve` returned, until interrupted;
    ``options`` go to ``uvicorn.Config``. The factory reads its settings from the
    environment, so the caller puts its overrides there (``HUB_*``)."""
    import uvicorn

    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(factory, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[listener])
