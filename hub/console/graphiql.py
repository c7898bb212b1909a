"""GraphiQL pages from vendored assets (``static/vendor``: React, GraphiQL), never a CDN.

:func:`graphiql_page` is what ``/graphql`` answers a browser when ``HUB_GRAPHIQL`` is on
(the demo): the caller pastes a bearer token into GraphiQL's headers. The console's
explorer (:mod:`hub.console.explorer`) is the same GraphiQL on the signed-in session.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse

from hub.console.render import SECURITY_HEADERS, html


def graphiql_page() -> HTMLResponse:
    response = html("graphiql.html", {})
    response.headers.update(SECURITY_HEADERS)
    return response
