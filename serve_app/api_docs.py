"""``/docs`` (Swagger UI) served from this process, without a CDN.

FastAPI's default pages load Swagger UI and ReDoc from a public CDN with no integrity hash: the
browser of whoever opens ``/docs`` would run whatever that CDN serves, next to the tokens
pasted into the Authorize dialog, and the page is blank offline. The assets here come from the
installed ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1), under
``/docs/assets/``; a Content-Security-Policy lets the page load scripts, styles, images and
the OpenAPI document from this origin only, so a change that points it elsewhere again shows
up as a blocked request instead of working silently. There is no ``/redoc``: ReDoc's bundle
fetches its logo from its vendor's CDN whatever it is told.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# Swagger UI starts from an inline script.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assets_directory() -> Path:
    """The Swagger UI files shipped in the ``fastapi-offline`` wheel."""
    return Path(str(files("fastapi_offline") / "static"))


def install_offline_docs(app: FastAPI) -> None:
    """Add the page and its assets to ``app`` (created with ``docs_url=None`` and
    ``redoc_url=None`` so FastAPI's CDN pages are not there too)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=assets_directory()), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        page = get_swagger_ui_oauth2_redirect_html()
        page.headers.update(DOCS_HEADERS)
        return page
