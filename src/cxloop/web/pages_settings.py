"""The settings page: the business's time zone and currency (``settings.manage``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from cxloop.business import (
    COMMON_CURRENCIES,
    COMMON_ZONES,
    checked,
    load_business_settings,
    save_business_settings,
)
from cxloop.errors import ConfigError
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
MANAGE = require(Capability.SETTINGS_MANAGE)


def _page(
    request: Request,
    time_zone: str,
    currency: str,
    *,
    error: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "settings.html",
        {
            "title": "Settings",
            "time_zone": time_zone,
            "currency": currency,
            "zones": COMMON_ZONES,
            "currencies": COMMON_CURRENCIES,
            "error": error,
            "saved": saved,
        },
        status_code=status_code,
    )


@router.get("/settings")
def settings_page(
    request: Request, store: StoreDep, who: Annotated[Principal, Depends(MANAGE)], saved: bool = False
) -> Response:
    current = load_business_settings(store)
    return _page(request, current.time_zone, current.currency, saved=saved)


@router.post("/settings")
def save_settings(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(MANAGE)],
    time_zone: Annotated[str, Form(max_length=64)],
    currency: Annotated[str, Form(max_length=8)],
) -> Response:
    try:
        wanted = checked(time_zone, currency)
    except ConfigError as exc:
        return _page(request, time_zone, currency, error=str(exc), status_code=422)
    save_business_settings(store, wanted, user_id=who.user.id, now=clock())
    request.app.state.business_settings.forget()
    return RedirectResponse("/settings?saved=true", status_code=303)
