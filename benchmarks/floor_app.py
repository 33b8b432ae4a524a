"""The floor of the survey load benchmark: the answer flow's three requests on a bare Starlette app.

``GET /s/{token}`` returns a page of the answer page's size with a form token, ``POST /s/{token}``
and ``POST /s/{token}/more`` read the form and answer 303, as cxloop's answer page does, but with
no database, no template, no checks and no middleware. Served by the same uvicorn (same HTTP parser
and event loop, same worker count) and loaded by the same clients, it measures what the machine,
the client and the ASGI stack allow before any of cxloop's work: the ceiling for answers/s here.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE_BYTES = 6_000  # about the size of cxloop's NPS answer page


async def page(request: Request) -> Response:
    token = request.path_params["token"]
    form = f'<form method="post" action="/s/{token}"><input name="form_token" value="f{token[:8]}">'
    return HTMLResponse(form + " " * (PAGE_BYTES - len(form)) + "</form>")


async def score(request: Request) -> Response:
    await request.form()
    return RedirectResponse(f"/s/{request.path_params['token']}/more", status_code=303)


async def more(request: Request) -> Response:
    await request.form()
    return RedirectResponse(f"/s/{request.path_params['token']}/thanks", status_code=303)


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/s/{token}", page, methods=["GET"]),
        Route("/s/{token}", score, methods=["POST"]),
        Route("/s/{token}/more", more, methods=["POST"]),
    ]
)
