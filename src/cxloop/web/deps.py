"""What a route may ask for with ``Depends``: the store, the settings, the clock, the templates.

All of it lives on ``app.state``, put there by :func:`cxloop.web.app.create_app`; nothing is a
module-level global, so two apps (two stores) can live in one process, as the tests do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.templating import Jinja2Templates

from cxloop.business import BusinessSettings, RecentSettings
from cxloop.store.store import Store
from cxloop.web.settings import WebSettings

Clock = Callable[[], dt.datetime]


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]


def client_ip(request: Request) -> str | None:
    """The client's address: the peer's, or the one a trusted proxy reports (see ``trusted_proxies``)."""
    return request.client.host if request.client else None


def is_https(request: Request, settings: WebSettings) -> bool:
    """Whether cookies must be Secure: always when configured, else when the request came over HTTPS
    (``X-Forwarded-Proto`` counts only from a trusted proxy)."""
    return settings.secure_cookies or request.url.scheme == "https"


def business(request: Request) -> BusinessSettings:
    """The business's time zone and currency, as read at most a few seconds ago."""
    recent: RecentSettings = request.app.state.business_settings
    return recent.get()
