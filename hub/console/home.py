"""The console's landing page: the dashboard (:mod:`hub.console.stats`, drawn by
:mod:`hub.console.charts`)."""

from __future__ import annotations

from starlette.responses import Response

import hub.console.stats as stats
from hub.console.auth import Ctx, page
from hub.console.roles import Permission


@page(Permission.DASHBOARD)
async def home(ctx: Ctx) -> Response:
    async with ctx.runtime.database.session() as session:
        charts = await stats.dashboard(session)
    return ctx.page("home.html", charts=charts)
