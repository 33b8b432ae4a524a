"""The customers pages: search the customers, and one customer's page with their whole timeline.

Thin shells over :mod:`cxloop.customers` (the same functions as ``/api/v1/customers``). Customer
data is customer-level: both pages need ``data.read``. Every text a customer wrote (comments,
ticket bodies, reviews) is rendered by the autoescaping templates, as text.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from cxloop.customers import SORTS, customer_detail, search_customers
from cxloop.web.api_value import value_cache
from cxloop.web.auth import require
from cxloop.web.dashboard import query_string
from cxloop.web.deps import ClockDep, StoreDep, business
from cxloop.web.errors import Problem
from cxloop.web.pages_dashboard import formatter
from cxloop.web.pages_value import customer_value
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
ROWS = require(Capability.DATA_READ)
PAGE_SIZE = 50
TIMELINE_SIZE = 100


@router.get("/customers")
def customers_page(
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(ROWS)],
    q: Annotated[str, Query(max_length=200, description="Text in the id, name or email")] = "",
    sort: Annotated[str, Query(description="A column; - first for descending")] = "customer_id",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    try:
        found = search_customers(store, q=q or None, sort=sort, limit=PAGE_SIZE, offset=offset)
    except ValueError as exc:
        raise Problem(422, detail=f"query: {exc}") from None
    params = {"q": q, "sort": sort}
    following = found.next_offset
    return render(
        request,
        "customers.html",
        {
            "title": "Customers",
            "page": found,
            "q": q,
            "sort": sort,
            "sorts": SORTS,
            "next_link": "/customers" + query_string({**params, "offset": following}) if following else None,
            "prev_link": "/customers" + query_string({**params, "offset": max(offset - PAGE_SIZE, 0)})
            if offset > 0
            else None,
            "fmt": formatter(request),
            "local": business(request).local,
        },
    )


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request,
    customer_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(ROWS)],
    clock: ClockDep,
    before: Annotated[dt.datetime | None, Query(description="Older events than this moment")] = None,
) -> Response:
    detail = customer_detail(store, customer_id, limit=TIMELINE_SIZE, before=before)
    if detail is None:
        raise Problem(404, detail=f"no customer {customer_id!r}")
    older = None
    if detail.more and detail.timeline:
        older = f"/customers/{detail.customer['customer_id']}" + query_string(
            {"before": detail.timeline[-1]["at"].isoformat()}
        )
    return render(
        request,
        "customer.html",
        {
            "title": detail.customer.get("name") or detail.customer["customer_id"],
            "detail": detail,
            "c": detail.customer,
            "figures": detail.figures,
            "older_link": older,
            "paged": before is not None,
            "fmt": formatter(request),
            "local": business(request).local,
            "value": customer_value(store, value_cache(request), detail.customer["customer_id"], clock()),
        },
    )
