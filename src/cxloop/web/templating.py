"""Jinja2 for every page: autoescaping always on, and the context every layout needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from cxloop import __version__
from cxloop.web.roles import Capability
from cxloop.web.vendor import plotly_version

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class NavItem:
    """An entry of the main navigation, shown to those whose role holds ``capability``."""

    label: str
    href: str
    capability: Capability | None = None


def add_nav(app: FastAPI, label: str, href: str, capability: Capability | None = None) -> None:
    """Add an entry to the layout's main navigation (None: every signed-in user sees it)."""
    app.state.nav = [*getattr(app.state, "nav", []), NavItem(label, href, capability)]


def make_templates() -> Jinja2Templates:
    # autoescape=True for every template, whatever its file name: untrusted text (customer
    # comments, review titles) always renders as text.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["Capability"] = Capability
    env.globals["version"] = __version__
    env.globals["plotly_version"] = plotly_version()
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page. The layout reads ``principal`` (who is signed in, or None) and ``csrf_token``
    (for the sign-out form) from the request, so routes pass only their own data."""
    templates: Jinja2Templates = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    nav = [
        item
        for item in getattr(request.app.state, "nav", [])
        if principal is not None and (item.capability is None or principal.can(item.capability))
    ]
    base = {
        "principal": principal,
        "nav": nav,
        "csrf_token": principal.csrf_token if principal is not None else None,
        "title": None,
    }
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code, headers=headers
    )
