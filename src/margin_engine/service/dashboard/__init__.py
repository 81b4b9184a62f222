"""The web dashboard (issue 13): static pages served at ``/dashboard`` by the service, and the
read-only endpoints they need (:mod:`.api`).

The pages are plain HTML, ES modules and CSS under ``static/`` (no build step, nothing fetched
from another host); they talk to the same REST and WebSocket API as any client, with the key the
user types (kept in the tab's ``sessionStorage``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from . import api

STATIC = Path(__file__).parent / "static"
MOUNT = "/dashboard"
HEADERS = {
    # the pages load and talk to this origin only (the WebSocket included), nothing inline
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Pages(StaticFiles):
    """The static files with :data:`HEADERS`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Add the dashboard's endpoints, mount its pages at ``/dashboard/`` and send ``/`` there."""
    app.include_router(api.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{MOUNT}/")

    app.mount(MOUNT, _Pages(directory=STATIC, html=True), name="dashboard")


__all__ = ["HEADERS", "MOUNT", "STATIC", "install"]
