"""Rendering a page: the templates (web/templates, autoescaped), and what every page is given:
the signed-in user, the CSRF token its forms carry, and the app's own small configuration."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web.csrf import request_csrf_token
from web.keys import CONFIG, USER

# aiohttp-jinja2 keeps its own request data under a string key, which aiohttp warns about on
# every page: nothing of ours to fix.
warnings.filterwarnings("ignore", category=web.NotAppKeyWarning, module="aiohttp_jinja2")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"


def setup_templates(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,  # a misspelt name fails its test, not silently renders ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static"] = static_url


def _page_context(request: web.Request) -> dict[str, Any]:
    return {
        "user": request.get(USER),
        "csrf_token": request_csrf_token(request),
        "public_url": request.app[CONFIG].public_url,
        "path": request.path,
    }


@functools.cache  # every page asks for the same few assets: one stat each per process
def static_url(name: str) -> str:
    """/static/<name>?v=<mtime>: browsers keep assets until they change (a new release)."""
    try:
        version = int((STATIC / name).stat().st_mtime)
    except OSError:
        version = 0
    return f"/static/{name}?v={version}"


def render(request: web.Request, template: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    # The page's own context is added here, not by a middleware: error pages made before the
    # inner middlewares ran get it too.
    return aiohttp_jinja2.render_template(template, request, {**_page_context(request), **(context or {})},
                                          status=status)


def redirect(location: str) -> web.HTTPSeeOther:
    """After a form post: see the result with a GET, so reloading does not post again."""
    return web.HTTPSeeOther(location)
