"""The web console at ``/console`` (issue 14): server-rendered pages for staff, signed in
through the hub's own authorization code + PKCE flow (the console is a client of the hub).

Layout: :mod:`~hub.console.session` (the encrypted session cookie),
:mod:`~hub.console.signin` (the OAuth flow), :mod:`~hub.console.auth` (every endpoint's
sign-in, role and CSRF checks), :mod:`~hub.console.roles` (who may do what),
:mod:`~hub.console.render` (templates and security headers), then one module per section.
Templates are in ``templates/``; every script, style and font is under ``static/`` (vendored
libraries in ``static/vendor/`` with their licenses). It calls hub functions only; the
GraphQL endpoint the explorer runs queries on is handed in by ``app.py``.
"""

from __future__ import annotations

from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from hub.console import (
    audit,
    connectors,
    explorer,
    home,
    organizations,
    policies,
    review,
    signin,
)
from hub.console.render import STATIC, SecurityHeaders

__all__ = ["console_app"]


def console_app(graphql: ASGIApp) -> ASGIApp:
    """The console's ASGI app, to mount at ``/console``; ``graphql`` is the API endpoint
    the explorer runs its (read-only) queries on."""
    routes = [
        Route("/", home.home),
        Route("/login", signin.login),
        Route("/callback", signin.callback),
        Route("/logout", signin.logout, methods=["POST"]),
        *policies.routes,
        *explorer.routes(graphql),
        *organizations.routes,
        *review.routes,
        *connectors.routes,
        *audit.routes,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return SecurityHeaders(Router(routes=routes))
