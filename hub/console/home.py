"""The console's landing page: the dashboard for those who may see it, else the first
section the user's roles open."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from hub.console.auth import Ctx, page
from hub.console.roles import Permission


@page(Permission.DASHBOARD)
async def home(ctx: Ctx) -> Response:
    return ctx.page("home.html")


def landing(ctx: Ctx) -> Response:
    return RedirectResponse("/console/", status_code=303)
