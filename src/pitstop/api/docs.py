"""The interactive API docs at ``/docs``: Swagger UI served from files inside the package.

FastAPI's own docs page loads Swagger UI from a CDN and starts it with an inline script. Neither
works here: operators' networks are often air-gapped, and every page runs under a
Content-Security-Policy that refuses inline scripts (``headers.py``). So the bundle is vendored
under ``api/static/vendor`` and started by ``api/static/docs.js``. ReDoc is not offered: it
exists only as a CDN bundle, and Swagger UI shows the same schema.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def page(*, title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{escape(title)} · API docs</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{ASSETS}/vendor/swagger-ui.css">
</head>
<body data-openapi="{escape(openapi_url)}">
  <div id="swagger-ui"></div>
  <script src="{ASSETS}/vendor/swagger-ui-bundle.js"></script>
  <script src="{ASSETS}/docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets (the app is made with ``docs_url=None``)."""
    html = page(title=app.title, openapi_url=app.openapi_url or "/openapi.json")
    app.mount(
        ASSETS,
        StaticFiles(directory=str(files("pitstop.api").joinpath("static"))),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html)
