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

from . import api

STATIC = Path(__file__).parent / "static"
MOUNT = "/dashboard"


def install(app: FastAPI) -> None:
    """Add the dashboard's endpoints, mount its pages at ``/dashboard/`` and send ``/`` there."""
    app.include_router(api.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{MOUNT}/")

    app.mount(MOUNT, StaticFiles(directory=STATIC, html=True), name="dashboard")


__all__ = ["MOUNT", "STATIC", "install"]
